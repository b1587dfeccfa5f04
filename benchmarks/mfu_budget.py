"""Where one training step's time goes, against the step time an MFU target allows.

The issue asks for MFU >= 40% at ~10M parameters. This script turns that target into a time budget
and measures, on this machine, what the step spends and what it cannot avoid:

1. the budget: the step's model FLOPs (the same formula as tunix_rt.train.flops) over target x the
   measured bf16 matmul peak, in ms;
2. the measured step: tunix-rt's step (packed micro-batch, bf16 autocast, eager attention, fused
   activation, fused AdamW, grad clipping; the same calls as recipes/sft.py) on the benchmark fixture,
   ms per step and MFU, and a profile of it grouped by kind of work (matmuls, autocast casts,
   activation, normalisation, softmax and cross-entropy, optimizer, the rest);
3. the floor: the parts no implementation can skip, each timed alone at the step's own shapes:
   every weight matmul of the model (forward and both backward products, bf16 operands already in
   place), one fused AdamW update of the parameters, and the cross-entropy over the vocabulary.
   Attention, normalisation, activation and casts count as free, so the floor is a lower bound and
   the "best possible MFU" it implies is an upper bound.

    python benchmarks/mfu_budget.py                          # the ~10M GPT-2 benchmark fixture
    python benchmarks/mfu_budget.py --size scale             # the ~50M one
    python benchmarks/mfu_budget.py --shape 512x3            # ~10M, wider and shallower
    python benchmarks/mfu_budget.py --tiny --json out.json   # seconds-long smoke run (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fixture import FULL, MAX_LENGTH, SCALE, TINY, FixtureSize, build_fixture

BATCH_SIZE = 16
SEED = 42

# Profiler op name -> kind of work. Self CPU time only, so nothing is counted twice.
KINDS: dict[str, tuple[str, ...]] = {
    "weight and attention matmuls": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "autocast dtype casts": ("aten::copy_", "aten::_to_copy"),
    "activation": ("aten::gelu", "aten::gelu_backward", "aten::silu", "aten::silu_backward"),
    "normalisation": ("aten::native_layer_norm", "aten::native_layer_norm_backward", "aten::_fused_rms_norm"),
    "softmax and cross-entropy": (
        "aten::_softmax", "aten::_softmax_backward_data", "aten::_log_softmax",
        "aten::_log_softmax_backward_data", "aten::nll_loss_forward", "aten::nll_loss_backward",
    ),
    "optimizer and grad clipping": ("aten::_fused_adamw_", "aten::linalg_vector_norm", "aten::_foreach_norm"),
}  # fmt: skip
OTHER = "other aten ops (elementwise, views, copies)"
OUTSIDE = "outside aten ops (Python, autograd engine, collate)"


def kind_of(op_name: str) -> str:
    for kind, names in KINDS.items():
        if op_name in names:
            return kind
    return OTHER


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: oneDNN builds its kernel for a new shape on first use
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def weight_matmul_shapes(model: Any, tokens: int, labelled: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of every weight matmul of one step, with no work on padding or on unlabelled
    positions: M is the real token count for the layers and the labelled count for the LM head
    (only those positions need logits). The floor is then a lower bound on any implementation."""
    import torch
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings()
    shapes: list[tuple[int, int, int]] = []
    for module in model.modules():
        if module is head:
            shapes.append((labelled, head.weight.shape[1], head.weight.shape[0]))
        elif isinstance(module, Conv1D):  # GPT-2's linear layers keep the weight as [in, out]
            shapes.append((tokens, module.weight.shape[0], module.weight.shape[1]))
        elif isinstance(module, torch.nn.Linear):
            shapes.append((tokens, module.weight.shape[1], module.weight.shape[0]))
    return shapes


def time_weight_matmuls(shapes: list[tuple[int, int, int]], repeats: int) -> float:
    """Seconds for every weight matmul's forward and both backward products, bf16 operands ready."""
    import torch

    bf16 = torch.bfloat16
    ops = {}
    for m, k, n in set(shapes):
        ops[(m, k, n)] = (
            torch.randn(m, k, dtype=bf16),
            torch.randn(k, n, dtype=bf16),
            torch.randn(m, n, dtype=bf16),
        )

    def run() -> None:
        for shape in shapes:
            x, w, g = ops[shape]
            _ = x @ w  # forward
            _ = g @ w.t()  # grad of the input
            _ = x.t() @ g  # grad of the weight

    return best_time(run, repeats)


def time_optimizer(model: Any, repeats: int) -> float:
    import torch

    params = [
        p.detach().clone().requires_grad_(True) for p in {id(p): p for p in model.parameters()}.values()
    ]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)
    return best_time(optimizer.step, repeats)


def time_cross_entropy(tokens: int, vocab: int, repeats: int) -> float:
    import torch
    import torch.nn.functional as F

    logits = torch.randn(tokens, vocab, requires_grad=True)
    labels = torch.randint(0, vocab, (tokens,))

    def run() -> None:
        F.cross_entropy(logits, labels, reduction="sum").backward()

    return best_time(run, repeats)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--size", choices=("full", "scale"), default="full", help="the benchmark's ~10M or ~50M fixture"
    )
    p.add_argument(
        "--shape", help="HIDDENxLAYERS: a GPT-2 of that shape on the same data (heads = hidden/64)"
    )
    p.add_argument("--tiny", action="store_true", help="a ~100k-parameter fixture and a few steps (tests)")
    p.add_argument("--steps", type=int, default=40, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--target", type=float, default=0.40, help="the MFU whose time budget is printed")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--workdir", type=Path, help="fixture cache (default: a temporary directory)")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def fixture_size(args: argparse.Namespace) -> FixtureSize:
    size = TINY if args.tiny else {"full": FULL, "scale": SCALE}[args.size]
    if args.shape:
        try:
            hidden, layers = (int(v) for v in args.shape.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--shape {args.shape!r}: expected HIDDENxLAYERS, e.g. 512x3") from None
        if hidden % 64 or hidden <= 0 or layers <= 0:
            raise SystemExit(f"--shape {args.shape!r}: hidden must be a positive multiple of 64")
        size = replace(size, name=f"gpt2-{hidden}x{layers}", hidden=hidden, layers=layers, heads=hidden // 64)
    return size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tiny:
        args.steps, args.warmup = min(args.steps, 4), min(args.warmup, 2)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunix_rt.data.loader import load_traces
    from tunix_rt.device.preflight import measure_cpu_matmul_peak
    from tunix_rt.train.batching import collate, epoch_batches
    from tunix_rt.train.flops import FlopCounter
    from tunix_rt.train.model import count_parameters, finish_tokenizer, use_fused_activations
    from tunix_rt.train.tokenize import tokenize_traces

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        fixture = build_fixture(workdir, fixture_size(args))
        tokenizer = finish_tokenizer(AutoTokenizer.from_pretrained(fixture.model_dir))
        model = AutoModelForCausalLM.from_pretrained(
            fixture.model_dir, attn_implementation="eager", dtype=torch.float32
        )
        traces = load_traces(fixture.traces).traces
    use_fused_activations(model)
    model.train()
    data = tokenize_traces(traces, tokenizer, system_instruction=None, max_seq_length=MAX_LENGTH)
    batches = epoch_batches(data.lengths, BATCH_SIZE, seed=SEED, epoch=0)
    needed = args.warmup + args.steps + 10
    batches = (batches * (needed // len(batches) + 1))[:needed]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    pad_id = tokenizer.pad_token_id
    params = count_parameters(model)
    counter = FlopCounter(params, fixture.size.layers, fixture.size.hidden, None)

    def forward_loss(batch: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
        return F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), batch.labels[:, 1:].flatten(), reduction="sum"
        )

    def step(indices: Any) -> None:  # what recipes/sft.py does for one optimizer step, without logging
        batch = collate(data, indices, pad_id, packed=True)
        loss = forward_loss(batch) / int(data.completion_lengths[indices].sum())
        loss.backward()
        _ = loss.item()  # the loop's per-step NaN check
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    peak = measure_cpu_matmul_peak(torch.bfloat16)
    for indices in batches[: args.warmup]:
        step(indices)
    timed = batches[args.warmup : args.warmup + args.steps]
    start = time.perf_counter()
    for indices in timed:
        step(indices)
    step_s = (time.perf_counter() - start) / len(timed)
    flops_per_step = statistics.mean(counter.flops(int(data.lengths[b].sum()), len(b)) for b in timed)

    profiled = batches[args.warmup + args.steps :]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for indices in profiled:
            step(indices)
        profiled_us = (time.perf_counter() - start) * 1e6
    self_us: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::"):  # module/optimizer ranges overlap the ops they contain
            kind = kind_of(event.key)
            self_us[kind] = self_us.get(kind, 0.0) + event.self_cpu_time_total
    # Each kind's share of the profiled wall time, applied to the unprofiled step; what the aten
    # ops do not account for (Python, the autograd engine, collate, the profiler's own cost) is a
    # line of its own rather than spread over the kinds.
    self_us[OUTSIDE] = max(0.0, profiled_us - sum(self_us.values()))
    breakdown = {
        k: round(step_s * 1e3 * v / profiled_us, 2) for k, v in sorted(self_us.items(), key=lambda kv: -kv[1])
    }

    # The floor, at the shape of a typical (median-sized) batch of the run.
    slots = [collate(data, b, pad_id, packed=True).input_ids.numel() for b in timed]
    median = timed[sorted(range(len(timed)), key=lambda i: slots[i])[len(timed) // 2]]
    median_batch = collate(data, median, pad_id, packed=True)
    median_tokens = int(data.lengths[median].sum())
    labelled = int(data.completion_lengths[median].sum())
    shapes = weight_matmul_shapes(model, median_tokens, labelled)
    median_flops = counter.flops(median_tokens, len(median))
    repeats = 3 if args.tiny else 10
    floor = {
        "weight matmuls (fwd + 2 bwd, bf16 ready)": time_weight_matmuls(shapes, repeats),
        "fused AdamW update": time_optimizer(model, repeats),
        "cross-entropy fwd + bwd (fp32, labelled positions)": time_cross_entropy(
            labelled, len(tokenizer), repeats
        ),
    }
    floor_s = sum(floor.values())

    budget_s = flops_per_step / (args.target * peak * 1e9)
    result = {
        "fixture": {"name": fixture.size.name, "params": params, "hidden": fixture.size.hidden,
                    "layers": fixture.size.layers, "vocab": len(tokenizer), "batch_size": BATCH_SIZE},
        "threads": args.threads,
        "bf16_peak_gflops": peak,
        "target_mfu": args.target,
        "gflop_per_step": round(flops_per_step / 1e9, 4),
        "budget_ms": round(budget_s * 1e3, 3),
        "step_ms": round(step_s * 1e3, 2),
        "step_mfu": round(flops_per_step / step_s / (peak * 1e9), 4),
        "step_breakdown_ms": breakdown,
        "floor_ms": {k: round(v * 1e3, 2) for k, v in floor.items()},
        "floor_total_ms": round(floor_s * 1e3, 2),
        "floor_mfu": round(median_flops / floor_s / (peak * 1e9), 4),
        "floor_budget_ms": round(median_flops / (args.target * peak * 1e9) * 1e3, 3),
        "weight_matmuls_per_step": len(shapes),
        "floor_batch": {"tokens": median_tokens, "labelled": labelled, "slots": median_batch.input_ids.numel()},
    }  # fmt: skip
    print_report(result)
    if args.json:
        tmp_json = args.json.with_name(args.json.name + ".tmp")
        tmp_json.write_text(json.dumps(result, indent=2))
        tmp_json.replace(args.json)
    return 0


def print_report(r: dict[str, Any]) -> None:
    f = r["fixture"]
    target = r["target_mfu"] * 100
    print(f"\nGPT-2 {f['hidden']}x{f['layers']}, {f['params'] / 1e6:.2f}M parameters, vocab {f['vocab']}, "
          f"batch {f['batch_size']} packed, bf16 autocast, {r['threads']} threads; "
          f"bf16 matmul peak {r['bf16_peak_gflops']:.0f} GFLOP/s")  # fmt: skip
    print(f"one step = {r['gflop_per_step']:.2f} GFLOP of model work: MFU {target:.0f}% needs a step of "
          f"{r['budget_ms']:.1f} ms")  # fmt: skip
    print(f"\nmeasured step: {r['step_ms']:.1f} ms (MFU {r['step_mfu'] * 100:.1f}%), by kind of work:")
    for kind, ms in r["step_breakdown_ms"].items():
        print(f"  {ms:8.1f} ms  {kind}")
    b = r["floor_batch"]
    print(
        f"\nfloor: each part alone, with no work on padding or unlabelled positions (a median batch: "
        f"{b['tokens']} tokens, {b['labelled']} labelled, in {b['slots']} slots); attention, norms, "
        "activations, casts free:"
    )
    for part, ms in r["floor_ms"].items():
        print(f"  {ms:8.1f} ms  {part}")
    print(f"  {r['floor_total_ms']:8.1f} ms  total: no implementation of this step using these kernels "
          f"can pass {r['floor_mfu'] * 100:.0f}% MFU")  # fmt: skip
    left = r["floor_budget_ms"] - r["floor_total_ms"]
    print(f"\nfor {target:.0f}%, that batch's step must take {r['floor_budget_ms']:.1f} ms: {left:.1f} ms beside the "
          f"floor for everything else, which now takes ~{r['step_ms'] - r['floor_total_ms']:.0f} ms "
          "(step minus floor)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
