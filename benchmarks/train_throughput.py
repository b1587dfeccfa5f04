"""One epoch of SFT on one fixture: tunix-rt against TRL's SFTTrainer and the original recipe.

Builds ONE fixture (benchmarks/_fixture.py: a random-init GPT-2 of ~10M parameters saved with
save_pretrained, a byte-level BPE tokenizer trained locally, ~2,000 reasoning-mix traces rendered by
tunix-rt's render_prompt / render_completion), then trains one epoch at batch 16 with each contender
in its own subprocess, one after the other, all with the same thread count, the same lr (5e-4,
linear, no warmup), seed, AdamW and max_grad_norm 1.0, and prints a table:

    non-pad tokens/s, ratio to TRL's best row and to the original, final loss, train runtime (the
    loop alone), whole-process wall time, peak RSS of the child, MFU.

Contenders (--contenders, comma-separated):
    tunix-rt          `python -m tunix_rt train` (dtype auto: bf16 autocast on AVX512-BF16/AMX CPUs)
    tunix-rt-fp32     the same in float32
    trl-bf16          TRL SFTTrainer, bf16 autocast, dynamic padding, completion-only loss, no GC
    trl-fp32          the same in float32
    original          HF Trainer, every row padded to 128, float32 (the original tunix-rt recipe)
  extra TRL variants (not run by default):
    trl-bf16-padfree  padding_free=True (flattened batch; on CPU sdpa gets a block-diagonal mask)
    trl-bf16-grouped  train_sampling_strategy="group_by_length" (length-grouped batches)

    python benchmarks/train_throughput.py                         # the measured configuration
    python benchmarks/train_throughput.py --tiny --json out.json  # seconds-long smoke run (tests)
    python benchmarks/train_throughput.py --scale                 # tunix-rt only: MFU at ~10M vs ~50M

Token counts: every row reports the non-pad tokens (prompt + completion + EOS) of the examples it
actually trained on, counted from its own prepared data, and tokens/s = those tokens / train runtime.
MFU = tokens * (6 * params + 12 * layers * hidden * mean_len) / runtime / peak, the peak being the
bf16 (or fp32) matmul rate measured here by tunix_rt.device.preflight.measure_cpu_matmul_peak.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fixture import FULL, MAX_LENGTH, SCALE, TINY, TINY_SCALE, Fixture, build_fixture, eval_loss

HERE = Path(__file__).resolve().parent
BATCH_SIZE = 16
LEARNING_RATE = 5e-4
MAX_GRAD_NORM = 1.0
SEED = 42
DEFAULT_CONTENDERS = ("tunix-rt", "tunix-rt-fp32", "trl-bf16", "trl-fp32", "original")
HF_PACKAGES = {"trl": ("trl", "accelerate", "datasets"), "original": ("accelerate",)}


@dataclass
class Contender:
    name: str
    kind: str  # "tunix" | "trl" | "original"
    dtype: str  # requested: "auto" | "bfloat16" | "float32"
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


CONTENDERS = {
    c.name: c
    for c in [
        Contender("tunix-rt", "tunix", "auto", description="tunix-rt CLI, dtype auto"),
        Contender("tunix-rt-fp32", "tunix", "float32", description="tunix-rt CLI, float32"),
        Contender(
            "tunix-rt-padded", "tunix", "auto", {"packing": False}, "tunix-rt, rows padded, not packed"
        ),
        Contender(
            "tunix-rt-bucketed", "tunix", "auto", {"bucket_window": 32}, "tunix-rt, length-sorted batches"
        ),
        Contender("trl-bf16", "trl", "bfloat16", description="TRL SFTTrainer, bf16, dynamic padding"),
        Contender("trl-fp32", "trl", "float32", description="TRL SFTTrainer, fp32, dynamic padding"),
        Contender("trl-bf16-padfree", "trl", "bfloat16", {"padding_free": True}, "TRL, bf16, padding_free"),
        Contender(
            "trl-bf16-grouped", "trl", "bfloat16", {"group_by_length": True}, "TRL, bf16, group_by_length"
        ),
        Contender("original", "original", "float32", description="HF Trainer, pad to 128, fp32"),
    ]
}


# --- machine -------------------------------------------------------------------------------------


def machine_info(threads: int) -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", []
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx512_vnni")
    import torch

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "threads": threads,
        "flags": [f for f in wanted if f in flags],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def measure_peaks(threads: int, dtypes: set[str]) -> dict[str, float | None]:
    import torch

    from tunix_rt.device.preflight import measure_cpu_matmul_peak

    torch.set_num_threads(threads)
    out: dict[str, float | None] = {}
    for name in sorted(dtypes):
        try:
            out[name] = measure_cpu_matmul_peak(getattr(torch, name))
        except Exception as exc:  # a dtype the CPU cannot run still leaves the other rows their MFU
            print(f"note: no {name} matmul peak ({exc})", file=sys.stderr)
            out[name] = None
    return out


# --- children ------------------------------------------------------------------------------------


def missing_packages(contender: Contender) -> list[str]:
    needed = HF_PACKAGES.get(contender.kind, ())
    return [p for p in needed if importlib.util.find_spec(p) is None]


def child_env(threads: int, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="warning",
        TUNIX_RT_CACHE=str(workdir / "cache"),
        HF_HOME=str(workdir / "hf-home"),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_child(command: list[str], env: dict[str, str], log: Path, timeout: float) -> dict[str, Any]:
    """Run one child to completion; wall time and its own peak RSS (wait4's ru_maxrss, KiB)."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=str(HERE.parent)
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    timed_out = time.perf_counter() > deadline
    return {
        "returncode": proc.returncode,
        "wall_s": round(time.perf_counter() - started, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "timed_out": timed_out,
    }


def tail(path: Path, n: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def tunix_config(
    model_dir: Path, dtype: str, logging_steps: int, max_steps: int | None, attn: str = "eager",
    data_options: dict[str, Any] | None = None, batch_size: int = BATCH_SIZE, learning_rate: float = LEARNING_RATE,
) -> dict[str, Any]:  # fmt: skip
    training: dict[str, Any] = {
        "device": "cpu",
        "dtype": dtype,
        "batch_size": batch_size,
        "max_seq_length": MAX_LENGTH,
        "num_epochs": 1,
        "learning_rate": learning_rate,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "lr_scheduler": "linear",
        "optimizer": "adamw",
        "max_grad_norm": MAX_GRAD_NORM,
        "logging_steps": logging_steps,
        "save_total_limit": 1,
        "seed": SEED,
    }
    if max_steps:
        training["max_steps"] = max_steps
    return {
        "model": {"model_id": str(model_dir), "init": "pretrained", "attn_implementation": attn},
        "training": training,
        "data": {"shuffle": True, **(data_options or {})},
    }


def run_tunix(
    contender: Contender, fixture: Fixture, workdir: Path, env: dict[str, str], args: argparse.Namespace,
    logging_steps: int, max_steps: int | None = None, tag: str = "",
) -> dict[str, Any]:  # fmt: skip
    config = tunix_config(
        fixture.model_dir, contender.dtype, logging_steps, max_steps, args.attn, contender.options
    )
    row = launch_tunix(contender.name + tag, config, fixture.traces, workdir, env, args)
    if row["status"] != "ok":
        return row
    row["eval_loss"] = tunix_eval_loss(Path(row["output"]) / "final_model", fixture)
    if max_steps:  # a partial epoch: only the steps taken count
        row["examples"] = min(row["examples"] or 0, max_steps * BATCH_SIZE)
    return row


def launch_tunix(
    name: str, config: dict[str, Any], dataset: Path, workdir: Path, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:  # fmt: skip
    """`tunix-rt train` with `config` in a child process; the row holds what its run manifest reports."""
    import yaml

    out = workdir / "runs" / name
    config_path = workdir / "configs" / f"{name}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "tunix_rt", "train", "--config", str(config_path), "--dataset", str(dataset),
               "--output", str(out), "--overwrite"]  # fmt: skip
    command += [x for s in args.tunix_set for x in ("--set", s)]
    proc = run_child(command, env, workdir / "logs" / f"{name}.log", args.timeout)
    row: dict[str, Any] = {"contender": name, "command": " ".join(command), "output": str(out), **proc}
    manifest_path = out / "run_manifest.json"
    if proc["returncode"] != 0 or not manifest_path.is_file():
        row.update(
            status="failed", reason=f"exit {proc['returncode']}: {tail(workdir / 'logs' / f'{name}.log', 6)}"
        )
        return row
    manifest = json.loads(manifest_path.read_text())
    summary = manifest.get("summary") or {}
    row.update(
        status="ok",
        train_runtime_s=summary.get("train_runtime_s"),
        train_tokens=summary.get("train_tokens"),
        examples=(manifest.get("dataset") or {}).get("trained_examples"),
        steps=summary.get("global_step"),
        final_loss=summary.get("final_loss"),
        dtype=(manifest.get("model") or {}).get("dtype"),
        manifest_tokens_per_sec=summary.get("tokens_per_sec"),
        manifest_mfu=(manifest.get("loop") or {}).get("mfu"),
        manifest_peak_memory_mb=summary.get("peak_memory_mb"),
        settings={"trainer": "tunix-rt", "config": str(config_path), "set": list(args.tunix_set)},
    )
    return row


def tunix_eval_loss(final_model: Path, fixture: Fixture) -> float | None:
    """The same fixed-subset loss the HF children compute, on tunix-rt's saved final model."""
    if not (final_model / "config.json").is_file():
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(final_model)
    model = AutoModelForCausalLM.from_pretrained(final_model, dtype="float32", attn_implementation="sdpa")
    return round(eval_loss(model, tokenizer, fixture.pairs), 6)


def run_hf(
    contender: Contender, fixture: Fixture, workdir: Path, env: dict[str, str], args: argparse.Namespace,
    logging_steps: int,
) -> dict[str, Any]:  # fmt: skip
    spec = {
        "recipe": contender.kind,
        "dtype": contender.dtype,
        "model_dir": str(fixture.model_dir),
        "attn": args.attn,
        "pairs": str(fixture.pairs),
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


def launch_hf(
    name: str, spec: dict[str, Any], workdir: Path, env: dict[str, str], args: argparse.Namespace,
    script: Path = HERE / "_hf_child.py",
) -> dict[str, Any]:  # fmt: skip
    """`script` (benchmarks/_hf_child.py unless said) with `spec` in a child process; the row holds
    the result JSON it writes."""
    child_dir = workdir / "hf" / name
    child_dir.mkdir(parents=True, exist_ok=True)
    result_path = child_dir / "result.json"
    result_path.unlink(missing_ok=True)
    spec = {"contender": name, "workdir": str(child_dir), "result": str(result_path), **spec}
    spec_path = child_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    command = [sys.executable, str(script), str(spec_path)]
    proc = run_child(command, env, workdir / "logs" / f"{name}.log", args.timeout)
    row: dict[str, Any] = {"contender": name, "command": " ".join(command), **proc}
    if not result_path.is_file():
        row.update(
            status="failed", reason=f"exit {proc['returncode']}: {tail(workdir / 'logs' / f'{name}.log', 6)}"
        )
        return row
    result = json.loads(result_path.read_text())
    row.update({k: v for k, v in result.items() if k != "contender"})
    if result.get("status") != "ok":
        row["reason"] = result.get("error", "failed")
    return row


# --- numbers -------------------------------------------------------------------------------------


def finish_rows(rows: list[dict[str, Any]], fixture: Fixture, peaks: dict[str, float | None]) -> None:
    """tokens/s from each row's own counts, MFU, and the ratios to TRL's best row and the original."""
    for row in rows:
        if row.get("status") != "ok":
            continue
        runtime, tokens, examples = row.get("train_runtime_s"), row.get("train_tokens"), row.get("examples")
        row["tokens_per_sec"] = round(tokens / runtime, 1) if runtime and tokens else None
        row["params"] = row.get("params") or fixture.params
        peak = peaks.get(row.get("dtype") or "float32")
        if runtime and tokens and examples and peak:
            mean_len = tokens / examples
            flops = tokens * (6 * row["params"] + 12 * fixture.size.layers * fixture.size.hidden * mean_len)
            row["mfu"] = round(flops / runtime / (peak * 1e9), 4)
            row["peak_gflops"] = peak
        loss = row.get("final_loss")
        row["loss_finite"] = isinstance(loss, (int, float)) and math.isfinite(loss)
    ok = [r for r in rows if r.get("status") == "ok" and r.get("tokens_per_sec")]
    trl_rows = [r for r in ok if r["contender"].startswith("trl")]
    best_trl = max(trl_rows, key=lambda r: r["tokens_per_sec"], default=None)
    original = next((r for r in ok if r["contender"] == "original"), None)
    for row in ok:
        if best_trl:
            row["ratio_to_trl"] = round(row["tokens_per_sec"] / best_trl["tokens_per_sec"], 2)
            row["trl_reference"] = best_trl["contender"]
        if original:
            row["ratio_to_original"] = round(row["tokens_per_sec"] / original["tokens_per_sec"], 2)


def loss_gap(ours: dict[str, Any], ref: dict[str, Any]) -> tuple[str, float | None]:
    """(which loss, relative gap of ours to ref): the fixed-subset eval loss when both rows have it
    (independent of batch composition), else the last logged training window."""
    key = "eval_loss" if ours.get("eval_loss") and ref.get("eval_loss") else "final_loss"
    if ours.get(key) is None or not ref.get(key) or not math.isfinite(ours[key]):
        return key, None
    return key, (ours[key] - ref[key]) / ref[key]


def verdict(rows: list[dict[str, Any]], ours_name: str = "tunix-rt", target: float = 1.5) -> list[str]:
    """The issue's target: `ours_name` >= target x TRL's best row at equal loss (within 5%).

    "TRL's best" for the target is the fastest TRL row that did not learn less than ours by more
    than 5%: a row that is fast because it learned less is not an equal-loss peer (reported on its
    own line). The target is met only if that row's loss is also within 5% of ours.
    """
    ok = {r["contender"]: r for r in rows if r.get("status") == "ok"}
    ours = ok.get(ours_name)
    lines = []
    counts = {r["contender"]: r.get("train_tokens") for r in ok.values() if not r.get("partial")}
    if len(set(counts.values())) > 1:
        lines.append("token counts differ between rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    trl = sorted(
        (r for r in ok.values() if r["contender"].startswith("trl") and r.get("tokens_per_sec")),
        key=lambda r: -r["tokens_per_sec"],
    )
    if not ours or not ours.get("tokens_per_sec") or not trl:
        return lines

    def describe(ref: dict[str, Any]) -> str:
        ratio = ours["tokens_per_sec"] / ref["tokens_per_sec"]
        key, gap = loss_gap(ours, ref)
        loss = (
            f"{key.replace('_', ' ')} {ours[key]} vs {ref[key]} ({gap:+.1%})"
            if gap is not None
            else "loss n/a"
        )
        return f"{ours_name} vs {ref['contender']}: {ratio:.2f}x tokens/s, {loss}"

    # A TRL row that learned less than tunix-rt by more than 5% is not an equal-loss peer; one that
    # learned more stays a candidate (being faster by learning less must not count for us).
    peers = [r for r in trl if (g := loss_gap(ours, r)[1]) is None or g >= -0.05]
    if peers:
        ref = peers[0]
        gap = loss_gap(ours, ref)[1]
        met = (
            ours["tokens_per_sec"] / ref["tokens_per_sec"] >= target and gap is not None and abs(gap) <= 0.05
        )
        why = "" if gap is None or gap <= 0.05 else f" ({ours_name}'s loss is more than 5% worse)"
        lines.append(
            f"{describe(ref)}; target >= {target:g}x the fastest TRL row at loss within 5%: "
            f"{'met' if met else 'NOT met'}{why}"
        )
    else:
        lines.append(
            f"every TRL row learned less than {ours_name} by more than 5%: no equal-loss peer, target not judged"
        )
    if not peers or trl[0] is not peers[0]:
        lines.append(f"{describe(trl[0])}; the fastest TRL row, not an equal-loss peer (it learned less)")
    return lines


def fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and spec:
        return format(value, spec)
    return str(value)


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    header = ["contender", "params", "tok/s", "x TRL", "x orig", "final loss", "eval loss", "train s", "wall s", "peak RSS MB", "MFU",
              "dtype", "tokens"]  # fmt: skip
    lines = [header]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(
                [r["contender"], f"{r.get('status', 'failed')}: {r.get('reason', '')}".splitlines()[0][:90]]
            )
            continue
        mfu = r.get("mfu")
        lines.append([
            r["contender"], f"{r['params'] / 1e6:.1f}M" if r.get("params") else "-", fmt(r.get("tokens_per_sec"), ".0f"), fmt(r.get("ratio_to_trl")), fmt(r.get("ratio_to_original")),
            fmt(r.get("final_loss"), ".4f"), fmt(r.get("eval_loss"), ".4f"), fmt(r.get("train_runtime_s"), ".1f"), fmt(r.get("wall_s"), ".1f"),
            fmt(r.get("peak_rss_mb"), ".0f"), f"{mfu:.1%}" if mfu is not None else "-", fmt(r.get("dtype")),
            fmt(r.get("train_tokens")),
        ])  # fmt: skip
    render_table(header, lines, title)


def render_table(header: list[str], lines: list[list[str]], title: str) -> None:
    """Columns right-aligned under `header` (lines[0]); a two-cell line is a row's status message."""
    widths = [
        max(len(line[i]) for line in lines if len(line) > i and len(line) == len(header))
        for i in range(len(header))
    ]
    print(title)
    for line in lines:
        if len(line) != len(header):
            print(f"  {line[0]:<{widths[0]}}  {line[1]}")
        else:
            print(
                "  "
                + "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(line, widths, strict=True))
                )
            )


def logging_steps_for(steps: int) -> int:
    """A window that divides the epoch, so every trainer's last logged loss covers the same steps."""
    return next(d for d in (5, 4, 3, 2, 1) if steps % d == 0)


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                        help=f"comma-separated, from: {', '.join(CONTENDERS)}")  # fmt: skip
    parser.add_argument(
        "--n-traces", type=int, default=None, help="traces in the fixture (default 2000, tiny 64)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="~100k-param model, 64 traces: a seconds-long run"
    )
    parser.add_argument(
        "--scale", action="store_true", help="tunix-rt only, ~10M vs ~50M params, a few steps"
    )
    parser.add_argument("--scale-steps", type=int, default=30, help="optimizer steps per model in --scale")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every contender (default: all cores)"
    )
    parser.add_argument("--json", dest="json_out", default=None, help="write machine-readable results here")
    parser.add_argument(
        "--workdir", default=None, help="fixtures, runs and logs (reused between invocations)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per contender")
    parser.add_argument(
        "--attn",
        default="eager",
        choices=["eager", "sdpa"],
        help="attention kernel for every row (eager is the faster one on CPU at these lengths)",
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


def start_session(args: argparse.Namespace, default_name: str) -> tuple[Path, dict[str, str], dict[str, Any]]:
    """The work directory (with logs/), the children's environment and the machine line, printed."""
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / default_name).resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    env = child_env(args.threads, workdir)
    machine = machine_info(args.threads)
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {args.threads} threads, "
          f"flags {' '.join(machine['flags'])}; torch {machine['torch']}; workdir {workdir}", flush=True)  # fmt: skip
    return workdir, env, machine


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir, env, machine = start_session(args, "tunix-rt-bench-train")

    if args.scale:
        rows, fixtures, peaks = run_scale(args, workdir, env)
        title = f"MFU vs model size: tunix-rt, {args.scale_steps} steps of batch {BATCH_SIZE}"
    else:
        rows, fixtures, peaks = run_epoch(args, workdir, env)
        fx = fixtures[0]
        title = (f"one epoch, batch {BATCH_SIZE}: GPT-2 {fx['params'] / 1e6:.2f}M params, {fx['examples']} examples, "
                 f"{fx['tokens']} non-pad tokens (mean {fx['mean_len']}), {args.threads} threads")  # fmt: skip
    print()
    print_table(rows, f"{title}; CPU: {machine['cpu']}")
    notes = [] if args.scale else verdict(rows)
    for line in notes:
        print(line)
    print(
        f"matmul peaks (GFLOP/s, {args.threads} threads): " + ", ".join(f"{k} {v}" for k, v in peaks.items())
    )
    result = {
        "benchmark": "train_throughput",
        "mode": "scale" if args.scale else ("tiny" if args.tiny else "full"),
        "machine": machine,
        "fixtures": fixtures,
        "peak_gflops": peaks,
        "hyperparameters": {
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "schedule": "linear, no warmup",
            "optimizer": "AdamW",
            "max_grad_norm": MAX_GRAD_NORM,
            "seed": SEED,
            "max_length": MAX_LENGTH,
        },
        "rows": rows,
        "notes": notes,
    }
    (workdir / "results.json").write_text(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    failed = [r["contender"] for r in rows if r.get("status") == "failed"]
    return 1 if failed else 0


def run_epoch(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> tuple[list, list, dict]:
    fixture = build_fixture(workdir, TINY if args.tiny else FULL, n_traces=args.n_traces)
    print(f"fixture: {fixture.path} ({fixture.params / 1e6:.2f}M params, vocab {fixture.vocab}, "
          f"{fixture.examples} examples, {fixture.tokens} tokens, {fixture.dropped_too_long} left out as > {MAX_LENGTH})",
          flush=True)  # fmt: skip
    steps = math.ceil(fixture.examples / BATCH_SIZE)
    logging_steps = logging_steps_for(steps)
    contenders = [CONTENDERS[c] for c in args.contender_list]
    dtypes = {"float32"} | {"bfloat16" for c in contenders if c.dtype != "float32"}
    peaks = measure_peaks(args.threads, dtypes)
    rows: list[dict[str, Any]] = []
    for contender in contenders:
        missing = missing_packages(contender)
        if missing:
            rows.append({"contender": contender.name, "status": "skipped",
                         "reason": f"not installed: {', '.join(missing)} (pip install -e '.[bench]')"})  # fmt: skip
            print(f"{contender.name}: skipped ({rows[-1]['reason']})", flush=True)
            continue
        print(f"{contender.name}: training ...", flush=True)
        if contender.kind == "tunix":
            row = run_tunix(contender, fixture, workdir, env, args, logging_steps)
        else:
            row = run_hf(contender, fixture, workdir, env, args, logging_steps)
        row["description"] = contender.description
        rows.append(row)
        status = row.get("status")
        detail = (
            f"{row.get('train_runtime_s')} s loop, {row.get('wall_s')} s wall"
            if status == "ok"
            else row.get("reason")
        )
        print(f"{contender.name}: {status} ({detail})", flush=True)
    finish_rows(rows, fixture, peaks)
    return rows, [fixture.to_dict()], peaks


def run_scale(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> tuple[list, list, dict]:
    sizes = (TINY, TINY_SCALE) if args.tiny else (FULL, SCALE)
    contender = CONTENDERS["tunix-rt"]
    peaks = measure_peaks(args.threads, {"float32", "bfloat16"})
    rows, fixtures = [], []
    for size in sizes:
        fixture = build_fixture(workdir, size, n_traces=args.n_traces)
        fixtures.append(fixture.to_dict())
        print(
            f"{size.name}: {fixture.params / 1e6:.2f}M params, training {args.scale_steps} steps ...",
            flush=True,
        )
        row = run_tunix(contender, fixture, workdir, env, args, logging_steps=args.scale_steps,
                        max_steps=args.scale_steps, tag=f"@{size.name}")  # fmt: skip
        row["partial"] = True
        finish_rows([row], fixture, peaks)
        rows.append(row)
    return rows, fixtures, peaks


if __name__ == "__main__":
    sys.exit(main())
