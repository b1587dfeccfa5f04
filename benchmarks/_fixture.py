"""The training-benchmark fixture: one random-init GPT-2, one tokenizer, one set of traces.

Every contender of `train_throughput.py` trains on exactly what this module writes:

    FIXTURE/model/          save_pretrained GPT-2 (random init, seed 0, dropout 0) + its tokenizer
    FIXTURE/traces.jsonl    the ReasoningTrace lines (what `tunix-rt train --dataset` reads)
    FIXTURE/pairs.jsonl     {"prompt", "completion", "n_tokens", "n_prompt"} rendered by tunix-rt's own
                            render_prompt / render_completion (what the Hugging Face contenders read)
    FIXTURE/fixture.json    sizes: parameters, vocab, examples, non-pad tokens, mean length

The tokenizer is a byte-level BPE trained locally with the `tokenizers` library on the rendered
texts (nothing is downloaded) and saved as a PreTrainedTokenizerFast with `<pad>` and `<eos>`.
Examples longer than MAX_LENGTH tokens (prompt + completion + EOS) are left out of the fixture, so
no contender truncates and the original recipe's pad-to-128 loses nothing.

A fixture directory is reused when its fixture.json matches the requested size (building one takes
a few seconds; the model weights are identical for a given size because the seed is fixed).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MAX_LENGTH = 128  # the original recipe pads every row to this; also the fixture's length cap
FIXTURE_VERSION = 1
PAD, EOS = "<pad>", "<eos>"


@dataclass(frozen=True)
class FixtureSize:
    name: str
    n_traces: int
    hidden: int
    layers: int
    heads: int
    vocab_target: int
    positions: int = 256


# ~10M parameters with the ~2.4k-token vocabulary BPE reaches on 2,000 reasoning-mix traces.
FULL = FixtureSize("gpt2-10m", 2000, hidden=256, layers=12, heads=4, vocab_target=8192)
# The --scale variant: same data and tokenizer shape, ~50M parameters.
SCALE = FixtureSize("gpt2-50m", 2000, hidden=512, layers=16, heads=8, vocab_target=8192)
# Seconds-long runs for tests: ~100k parameters, 64 traces.
TINY = FixtureSize("gpt2-tiny", 64, hidden=64, layers=2, heads=2, vocab_target=512)
TINY_SCALE = FixtureSize("gpt2-tiny-scale", 64, hidden=128, layers=4, heads=4, vocab_target=512)


@dataclass
class Fixture:
    path: Path
    size: FixtureSize
    model_dir: Path
    traces: Path
    pairs: Path
    params: int
    vocab: int
    examples: int
    tokens: int  # non-pad tokens of one epoch: prompt + completion + EOS of every example
    completion_tokens: int
    dropped_too_long: int
    dataset_spec: str

    @property
    def mean_len(self) -> float:
        return self.tokens / max(self.examples, 1)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k != "size"}
        out["size"] = asdict(self.size)
        out["mean_len"] = round(self.mean_len, 2)
        out["version"] = FIXTURE_VERSION
        return out


def build_fixture(workdir: Path, size: FixtureSize, *, n_traces: int | None = None) -> Fixture:
    """Build (or reuse) the fixture for `size` under workdir; returns its description."""
    n = n_traces or size.n_traces
    path = Path(workdir) / f"fixture-{size.name}-n{n}"
    meta_file = path / "fixture.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if meta.get("version") == FIXTURE_VERSION and meta.get("size") == asdict(size):
            return _from_meta(path, size, meta)
    if path.exists():
        shutil.rmtree(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    fixture = _build(tmp, size, n, Path(workdir) / "cache")
    meta = fixture.to_dict()
    tmp.rename(path)
    meta.update(
        path=str(path),
        model_dir=str(path / "model"),
        traces=str(path / "traces.jsonl"),
        pairs=str(path / "pairs.jsonl"),
    )
    (path / "fixture.json").write_text(json.dumps(meta, indent=2))
    return _from_meta(path, size, meta)


def _from_meta(path: Path, size: FixtureSize, meta: dict[str, Any]) -> Fixture:
    return Fixture(
        path=path, size=size, model_dir=path / "model", traces=path / "traces.jsonl", pairs=path / "pairs.jsonl",
        params=meta["params"], vocab=meta["vocab"], examples=meta["examples"], tokens=meta["tokens"],
        completion_tokens=meta["completion_tokens"], dropped_too_long=meta["dropped_too_long"],
        dataset_spec=meta["dataset_spec"],
    )  # fmt: skip


def _train_tokenizer(texts: list[str], vocab_target: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_target,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS)


def _build(out: Path, size: FixtureSize, n: int, cache_dir: Path) -> Fixture:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tunix_rt.data.loader import load_traces
    from tunix_rt.data.resolver import resolve_dataset
    from tunix_rt.train.render import render_completion, render_prompt

    spec = f"reasoning-mix:{n}"
    resolved = resolve_dataset(spec, cache_dir=cache_dir)
    loaded = load_traces(resolved.path)
    raw_lines = [line for line in resolved.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(raw_lines) != len(loaded.traces):
        raise RuntimeError(f"{resolved.path}: {len(raw_lines)} lines but {len(loaded.traces)} traces")

    # The tokenizer has no chat template, so render_prompt gives the plain template; it is trained
    # on exactly the texts the contenders will see.
    prompts = [render_prompt(t.prompt, None, None) for t in loaded.traces]
    completions = [render_completion(t) for t in loaded.traces]
    tokenizer = _train_tokenizer(
        [p + c for p, c in zip(prompts, completions, strict=True)], size.vocab_target
    )
    if tokenizer.chat_template:
        raise RuntimeError("the fixture tokenizer must not carry a chat template")

    prompt_ids = tokenizer(prompts, add_special_tokens=False).input_ids
    completion_ids = tokenizer(completions, add_special_tokens=False).input_ids
    kept_lines, pairs, dropped = [], [], 0
    tokens = completion_tokens = 0
    for line, p, c, p_ids, c_ids in zip(
        raw_lines, prompts, completions, prompt_ids, completion_ids, strict=True
    ):
        n_tokens = len(p_ids) + len(c_ids) + 1  # + EOS, as tunix-rt's tokenizer step appends it
        if n_tokens > MAX_LENGTH:
            dropped += 1
            continue
        kept_lines.append(line)
        pairs.append({"prompt": p, "completion": c, "n_tokens": n_tokens, "n_prompt": len(p_ids)})
        tokens += n_tokens
        completion_tokens += n_tokens - len(p_ids)
    (out / "traces.jsonl").write_text("\n".join(kept_lines) + "\n", encoding="utf-8")
    (out / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=size.positions,
        n_embd=size.hidden,
        n_layer=size.layers,
        n_head=size.heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    model.save_pretrained(out / "model", safe_serialization=True)
    tokenizer.save_pretrained(out / "model")
    return Fixture(
        path=out, size=size, model_dir=out / "model", traces=out / "traces.jsonl", pairs=out / "pairs.jsonl",
        params=params, vocab=len(tokenizer), examples=len(pairs), tokens=tokens,
        completion_tokens=completion_tokens, dropped_too_long=dropped, dataset_spec=spec,
    )  # fmt: skip


EVAL_EXAMPLES = 256


def eval_loss(model: Any, tokenizer: Any, pairs_path: Path, n: int = EVAL_EXAMPLES, batch: int = 32) -> float:
    """Completion-token mean cross-entropy of a trained model on the fixture's first n pairs.

    The same code, data and precision (fp32, no autocast) for every contender, after training and
    outside its timed loop: the training loss of the last logged window depends on which examples
    the last batches held (length-bucketed and random batches differ), this does not.
    """
    pairs = [json.loads(line) for line in Path(pairs_path).read_text().splitlines() if line.strip()][:n]
    rows = []
    for p in pairs:
        p_ids = tokenizer(p["prompt"], add_special_tokens=False).input_ids
        c_ids = tokenizer(p["completion"], add_special_tokens=False).input_ids
        rows.append((p_ids + c_ids + [tokenizer.eos_token_id], len(p_ids)))
    return eval_loss_ids(model, rows, tokenizer.pad_token_id, batch)


def eval_loss_ids(model: Any, rows: list[tuple[list[int], int]], pad_id: int, batch: int = 8) -> float:
    """Mean cross-entropy over the tokens after each row's prompt: rows are (ids, prompt length)."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            for i, (ids, n_prompt) in enumerate(chunk):
                input_ids[i, : len(ids)] = torch.tensor(ids)
                attention[i, : len(ids)] = 1
                labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
            logits = model(
                input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device)
            ).logits
            total += F.cross_entropy(
                logits.float()[:, :-1].flatten(0, 1),
                labels[:, 1:].flatten().to(model.device),
                reduction="sum",
            ).item()
            count += int((labels[:, 1:] != -100).sum())
    model.train(was_training)
    return total / max(count, 1)
