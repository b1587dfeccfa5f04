"""What each rank holds under FSDP2, DDP and one process: parameter and optimizer-state bytes, peak
RSS, and the tokens each rank trains on per step (dealt by tokens, against the old length-sorted
slices). FSDP runs twice: as the recipe does it (`fsdp`: the model built on the meta device on every
rank, rank 0 alone building the full one and broadcasting it into the shards) and as it was before
(`fsdp-full`: every rank builds the full model, then shards it), to show the peak RSS per rank.

The model is the scratch Llama of configs/cpu-scratch.yaml (or larger, with --hidden/--layers);
the data are random token ids with a realistic spread of lengths (40..256 tokens), so nothing is
downloaded or tokenized. Each contender runs a few optimizer steps with the recipe's own parts
(DistContext.wrap, my_micro_batches, build_optimizer, the recipe's loss normalisation) on gloo.

    python benchmarks/distributed_memory.py                 # 2 ranks, the cpu-scratch Llama
    python benchmarks/distributed_memory.py --hidden 512 --layers 8 --nproc 2

Not a timed benchmark: it prints bytes and token counts, which do not depend on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3
SEED = 0
CONTENDERS = ("single", "ddp", "fsdp", "fsdp-full")


def _local_bytes(tensor: torch.Tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor  # a DTensor shard
    return local.numel() * local.element_size()


def _config(args: argparse.Namespace) -> Any:
    from transformers import LlamaConfig

    from tunix_rt.config import load_config

    cfg = load_config(ROOT / "configs/cpu-scratch.yaml", [])[0]
    hidden, layers = args.hidden or cfg.model.hidden_size, args.layers or cfg.model.num_layers
    return LlamaConfig(
        vocab_size=cfg.model.vocab_size, hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=cfg.model.num_heads,
        max_position_embeddings=cfg.training.max_seq_length, tie_word_embeddings=True,
    )  # fmt: skip


def _model(args: argparse.Namespace) -> torch.nn.Module:
    from transformers import LlamaForCausalLM

    torch.manual_seed(SEED)
    return LlamaForCausalLM(_config(args))


def _wrapped(args: argparse.Namespace, dist: Any) -> torch.nn.Module:
    """The model as the recipe wraps it: under `fsdp` built empty on every rank and filled from
    rank 0's full copy (train/sharded.py); `fsdp-full` is the old way, full on every rank first."""
    from tunix_rt.train.model import empty_model
    from tunix_rt.train.sharded import PendingWeights, materialise

    if not (dist.active and args.strategy == "fsdp"):
        return dist.wrap(_model(args), "fsdp" if args.strategy == "fsdp-full" else args.strategy)
    full = _model(args) if dist.is_main else None
    model = dist.wrap(empty_model(_config(args), "eager"), "fsdp")
    materialise(model, torch.device("cpu"), PendingWeights(full_model=full))
    del full
    return model


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batch(indices: np.ndarray, lengths: np.ndarray, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = int(lengths[indices].max())
    ids = torch.zeros((len(indices), width), dtype=torch.long)
    labels = torch.full((len(indices), width), -100, dtype=torch.long)
    for row, k in enumerate(indices):
        tokens = torch.randint(1, vocab, (int(lengths[k]),), generator=torch.Generator().manual_seed(int(k)))
        ids[row, : len(tokens)] = tokens
        labels[row, : len(tokens)] = tokens
    return ids, labels


def run_rank(args: argparse.Namespace) -> dict[str, Any]:
    """One process's part: wrap, train STEPS steps, measure what this rank holds."""
    from tunix_rt.train.batching import micro_batches
    from tunix_rt.train.distributed import DistContext
    from tunix_rt.train.optim import build_optimizer

    dist = DistContext.from_env()
    dist.init(SimpleNamespace(device="cpu", type="cpu"))
    model = _wrapped(args, dist)
    load_peak_mb = _peak_rss_mb()  # the peak up to here: loading and sharding, before any step
    optimizer = build_optimizer(model, "adamw", 1e-3, 0.01, torch.device("cpu"))
    vocab = dist.unwrap(model).config.vocab_size
    rng = np.random.default_rng(SEED)
    lengths = rng.integers(40, 257, size=args.batch * STEPS)
    tokens, old_tokens = [], []
    for step in range(STEPS):
        batch = np.arange(step * args.batch, (step + 1) * args.batch)
        loss_tokens = int(lengths[batch].sum())  # every token carries loss here
        mine = 0
        for micro, is_last in dist.my_micro_batches(batch, lengths, 1):
            with dist.sync_context(model, is_last):
                if len(micro) == 0:
                    loss = model(input_ids=torch.zeros((1, 1), dtype=torch.long)).logits.sum() * 0.0
                else:
                    ids, labels = _batch(micro, lengths, vocab)
                    logits = model(input_ids=ids, use_cache=False).logits
                    loss = F.cross_entropy(
                        logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="sum"
                    )
                (loss * dist.grad_scale / loss_tokens).backward()
            mine += int(lengths[micro].sum())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens.append(mine)
        # The old deal: length-sorted slices, rank r taking slice r.
        old = micro_batches(batch, lengths, dist.world_size)[dist.rank]
        old_tokens.append(int(lengths[old].sum()))
    state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.ndim > 0]
    result = {
        "strategy": args.strategy if dist.active else "single",
        "rank": dist.rank,
        "param_bytes": sum(_local_bytes(p) for p in model.parameters()),
        "optim_bytes": sum(_local_bytes(v) for v in state),
        "load_peak_rss_mb": load_peak_mb,
        "peak_rss_mb": _peak_rss_mb(),
        "tokens_per_step": float(np.mean(tokens)),
        "old_deal_tokens_per_step": float(np.mean(old_tokens)),
        "batch_tokens_per_step": float(
            np.mean([lengths[s * args.batch : (s + 1) * args.batch].sum() for s in range(STEPS)])
        ),
    }
    dist.shutdown()
    return result


def _launch(args: argparse.Namespace, strategy: str, out: Path) -> list[dict[str, Any]]:
    script = [
        str(Path(__file__).resolve()), "--child", "--strategy", strategy, "--out", str(out),
        "--batch", str(args.batch), "--hidden", str(args.hidden or 0), "--layers", str(args.layers or 0),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if strategy == "single":
        subprocess.run([sys.executable, *script], check=True, env=env)
    else:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={args.nproc}",
        ]
        subprocess.run([*launcher, *script], check=True, env=env)
    return [json.loads(line) for line in out.read_text().splitlines()]


def _table(rows: list[dict[str, Any]]) -> str:
    single = next(r for r in rows if r["strategy"] == "single")
    base = single["param_bytes"] + single["optim_bytes"]
    lines = [
        "| strategy | rank | parameter MB | optimizer-state MB | param+optim vs one process "
        "| peak RSS MB, loading | peak RSS MB, training "
        "| tokens per step | busiest / mean (dealt by tokens) | busiest / mean (old slices) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for strategy in CONTENDERS:
        ranks = [r for r in rows if r["strategy"] == strategy]
        mean = ranks[0]["batch_tokens_per_step"] / len(ranks)
        busiest = max(r["tokens_per_step"] for r in ranks) / mean
        old = max(r["old_deal_tokens_per_step"] for r in ranks) / mean
        for r in ranks:
            share = (r["param_bytes"] + r["optim_bytes"]) / base
            lines.append(
                f"| {strategy} | {r['rank']} | {r['param_bytes'] / 2**20:.2f} | {r['optim_bytes'] / 2**20:.2f} "
                f"| {share:.0%} | {r['load_peak_rss_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['tokens_per_step']:.0f} | {busiest:.3f} | {old:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="effective batch (examples per step)")
    parser.add_argument("--hidden", type=int, default=0, help="0: the cpu-scratch config's")
    parser.add_argument("--layers", type=int, default=0, help="0: the cpu-scratch config's")
    parser.add_argument("--strategy", default="single", choices=CONTENDERS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_rank(args)
        with open(args.out, "a", encoding="utf-8") as handle:  # one short line per rank
            handle.write(json.dumps(result) + "\n")
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in CONTENDERS:
            rows += sorted(_launch(args, strategy, Path(tmp) / f"{strategy}.jsonl"), key=lambda r: r["rank"])
    print(_table(rows))


if __name__ == "__main__":
    main()
