"""GRPO on CPU: tunix-rt's recipe against TRL's GRPOTrainer, side by side on one fixture.

Builds ONE fixture (benchmarks/_grpo_fixture.py): benchmarks/_fixture.py's random-init ~10M GPT-2
with its local BPE tokenizer, given a few epochs of SFT by `tunix-rt train` so that it writes
`Answer:` lines, stops at EOS and is sometimes right (or any model with --model), plus fresh
reasoning-mix prompts with gold answers, rendered by tunix-rt's own code (rl.start + render_for_eval).
Then each contender runs the same number of GRPO steps in its own subprocess, one after the other,
with the same thread count, starting model, prompts *in the same order* (step k takes the prompts
tunix-rt's rl.data.step_prompts picks; TRL gets them pre-ordered with shuffle_dataset=False), G,
max_completion_length, temperature 1.0, top_p 1.0 (top_k off), prompts per step, learning rate
(constant, no warmup), AdamW, max_grad_norm, beta 0 (no reference model), epsilon, num_iterations 1,
per-token loss aggregation (DAPO), group-std-scaled advantages, float32 weights on both sides,
run under bf16 autocast where the CPU has native bf16 (tunix-rt's dtype auto, TRL's bf16=True, the
default of its config) or in float32 (the -fp32 rows), no vLLM, and one reward: correctness by
tunix-rt's scorer (tunix_rt.eval.score.score) on the completion, so the rewards mean the same.

Contenders:
    tunix-rt-grpo   `python -m tunix_rt train` with `method: grpo` (recipes/grpo.py); per-step
                    numbers from its metrics.jsonl (logging_steps 1): step_s, generation_s (sample
                    + score), update_s (the policy update), completion lengths, reward_mean
    trl-grpo        TRL GRPOTrainer (benchmarks/_trl_grpo_child.py), stock, with a step clock
                    (callback) and the sample + score half timed around _generate_and_score_completions;
                    per-step rewards and lengths from its own log (logging_steps 1)

The table: seconds per step (mean over the steps after the first, which carries warm-up), its
sample+score and update parts, generated tokens/s (completion tokens, stop token included, over the
sample+score time of the steps after the first), mean reward of the first and last step and over
all steps, peak RSS of the child, and tunix-rt's steps/s over TRL's. Then the per-step reward
curves side by side. The issue's target: >= 1.5x TRL's steps/s with matching reward curves.

    python benchmarks/grpo_throughput.py                          # the measured configuration
    python benchmarks/grpo_throughput.py --tiny --json out.json   # seconds-long smoke run (tests)
    python benchmarks/grpo_throughput.py --model runs/x/final_model --steps 20

How TRL's batch sizes were matched (trl 1.16.0, trl/trainer/grpo_config.py and grpo_trainer.py):
`per_device_train_batch_size` counts completions, not prompts; with `generation_batch_size` and
`steps_per_generation` unset, GRPOConfig.__post_init__ sets steps_per_generation =
gradient_accumulation_steps (1 here) and generation_batch_size = per_device_train_batch_size x
processes x steps_per_generation, so per_device_train_batch_size = B x G gives one generation of
B prompts x G completions per optimizer step. `_get_train_sampler` builds RepeatSampler(
mini_repeat_count=num_generations, batch_size=generation_batch_size // num_generations,
repeat_count=num_iterations x steps_per_generation, shuffle=shuffle_dataset): consecutive rows,
each repeated G times, so shuffle_dataset=False with rows in tunix-rt's order gives both the same
prompts per step. `loss_type="dapo"` (its default) normalises the token-level loss by the active
tokens of the global batch, as tunix-rt's `loss_aggregation: dapo`; `scale_rewards=True` maps to
"group" (divide by the group's std). GRPOConfig defaults gradient_checkpointing to True: set off,
as tunix-rt has none. A text (non-conversational) prompt is tokenised with the tokenizer's defaults
(`processing_class(text=prompts)`), which the fixture checks equals tunix-rt's encode_prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fixture import FULL, TINY
from _grpo_fixture import GrpoFixture, GrpoSize, build_grpo_fixture
from train_throughput import (
    HERE,
    MAX_GRAD_NORM,
    SEED,
    Contender,
    fmt,
    launch_hf,
    launch_tunix,
    missing_packages,
    render_table,
    start_session,
)

TARGET = 1.5  # issue 16: at least 1.5x TRL's steps per second on CPU, with matching reward curves
OURS, TRL = "tunix-rt-grpo", "trl-grpo"
# auto: bf16 autocast where the CPU has AVX512-BF16/AMX (tunix-rt's dtype auto; TRL's bf16=True,
# its GRPOConfig default on such a machine), float32 elsewhere; the -fp32 rows force float32.
CONTENDERS = {
    c.name: c
    for c in [
        Contender(OURS, "tunix", "auto", description="tunix-rt CLI, method: grpo, dtype auto"),
        Contender(f"{OURS}-fp32", "tunix", "float32", description="tunix-rt CLI, method: grpo, float32"),
        Contender(
            TRL, "trl", "auto", description="TRL GRPOTrainer, transformers generate, bf16 where native"
        ),
        Contender(f"{TRL}-fp32", "trl", "float32", description="TRL GRPOTrainer, bf16=False"),
    ]
}
LEARNING_RATE = 5e-5
TEMPERATURE, TOP_P, EPSILON, BETA, NUM_ITERATIONS = 1.0, 1.0, 0.2, 0.0, 1


@dataclass(frozen=True)
class Setup:
    prompts_per_step: int
    num_generations: int
    max_completion_length: int
    steps: int


FULL_SIZE = GrpoSize("gpt2-10m", FULL, sft_epochs=3, n_prompts=256)
FULL_SETUP = Setup(prompts_per_step=8, num_generations=8, max_completion_length=96, steps=10)
# No warm start: a ~100k-parameter random-init GPT-2 answers nothing, but every code path runs.
TINY_SIZE = GrpoSize("gpt2-tiny", TINY, sft_epochs=0, n_prompts=16)
TINY_SETUP = Setup(prompts_per_step=2, num_generations=2, max_completion_length=12, steps=3)


def step_order(fixture: GrpoFixture, setup: Setup) -> list[dict[str, Any]]:
    """The rendered prompts in the order tunix-rt's recipe takes them, step after step."""
    from tunix_rt.rl.data import load_prompts, step_prompts

    items = load_prompts(str(fixture.prompts)).items
    rendered = [json.loads(line) for line in fixture.rendered.read_text().splitlines() if line.strip()]
    if [r["id"] for r in rendered] != [item.id for item in items]:
        raise RuntimeError(f"{fixture.rendered} does not follow {fixture.prompts}; rebuild the fixture")
    rows = []
    for step in range(setup.steps):
        chosen = step_prompts(items, step, setup.prompts_per_step, SEED)
        if len(chosen) != setup.prompts_per_step:
            # tunix-rt's last step of an epoch takes the remainder; TRL's sampler cannot match that.
            raise ValueError(
                f"step {step + 1} would take {len(chosen)} of {len(items)} prompts, not {setup.prompts_per_step}: "
                "the prompt count must be a multiple of the prompts per step"
            )
        rows += [rendered[k] for k in chosen]
    return rows


# --- contenders ----------------------------------------------------------------------------------


def native_bf16() -> bool:
    from tunix_rt.device.preflight import resolve_device

    return resolve_device("cpu").bf16


def run_tunix_grpo(
    contender: Contender, fixture: GrpoFixture, setup: Setup, workdir: Path, env: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    config = {
        "method": "grpo",
        "model": {"model_id": str(fixture.model_dir), "init": "pretrained", "attn_implementation": args.attn},
        "training": {
            "device": "cpu", "dtype": contender.dtype, "batch_size": setup.prompts_per_step, "max_steps": setup.steps,
            "learning_rate": LEARNING_RATE, "lr_scheduler": "constant", "warmup_steps": 0, "optimizer": "adamw",
            "weight_decay": 0.0, "max_grad_norm": MAX_GRAD_NORM, "logging_steps": 1, "save_total_limit": 1,
            "seed": SEED,
        },
        "grpo": {
            "num_generations": setup.num_generations, "temperature": TEMPERATURE, "top_p": TOP_P,
            "max_completion_length": setup.max_completion_length, "epsilon": EPSILON,
            "num_iterations": NUM_ITERATIONS, "beta": BETA, "loss_aggregation": "dapo", "scale_rewards": True,
            "rewards": {"correctness": 1.0}, "log_completions": False,
        },
    }  # fmt: skip
    row = launch_tunix(contender.name, config, fixture.prompts, workdir, env, args)
    if row["status"] != "ok":
        return row
    metrics = Path(row["output"]) / "metrics.jsonl"
    lines = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rows_per_step = setup.prompts_per_step * setup.num_generations
    row["steps"] = [
        {
            "step": m["step"], "step_s": m["step_s"], "generation_s": m["generation_s"], "update_s": m["update_s"],
            "generated_tokens": round(m["completion_length_mean"] * rows_per_step),
            "completion_length_mean": m["completion_length_mean"], "reward_mean": m["reward_mean"],
            "correctness_rate": m["correctness_rate"], "zero_signal_fraction": m["zero_signal_fraction"],
            "loss": m["loss"],
        }
        for m in lines
        if "reward_mean" in m
    ]  # fmt: skip
    manifest = json.loads((Path(row["output"]) / "run_manifest.json").read_text())
    row["global_step"] = (manifest.get("summary") or {}).get("global_step")
    row["dtype"] = manifest["model"]["dtype"]
    return row


def run_trl_grpo(
    contender: Contender, fixture: GrpoFixture, setup: Setup, workdir: Path, env: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    rows_file = workdir / "trl-rows.json"
    rows_file.write_text(json.dumps(step_order(fixture, setup)))
    spec = {
        "model_dir": str(fixture.model_dir),
        "rows": str(rows_file),
        "attn": args.attn,
        "threads": args.threads,
        "prompts_per_step": setup.prompts_per_step,
        "num_generations": setup.num_generations,
        "max_completion_length": setup.max_completion_length,
        "max_steps": setup.steps,
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "epsilon": EPSILON,
        "beta": BETA,
        "num_iterations": NUM_ITERATIONS,
        "loss_type": "dapo",
        "learning_rate": LEARNING_RATE,
        "max_grad_norm": MAX_GRAD_NORM,
        "seed": SEED,
        "bf16": contender.dtype == "auto" and native_bf16(),
    }
    return launch_hf(contender.name, spec, workdir, env, args, script=HERE / "_trl_grpo_child.py")


# --- numbers -------------------------------------------------------------------------------------


def summarize(row: dict[str, Any]) -> None:
    """Per-step numbers -> the row's figures; the first step (warm-up) is left out of the timings."""
    steps = row.get("steps") or []
    if row.get("status") != "ok" or not steps:
        return
    timed = steps[1:] or steps

    def mean(key: str) -> float:
        return sum(s[key] for s in timed) / len(timed)

    row["seconds_per_step"] = round(mean("step_s"), 4)
    row["steps_per_sec"] = round(1.0 / row["seconds_per_step"], 4) if row["seconds_per_step"] > 0 else None
    row["generation_s"] = round(mean("generation_s"), 4)
    row["update_s"] = round(mean("update_s"), 4)
    gen_seconds = sum(s["generation_s"] for s in timed)
    row["generated_tokens_per_sec"] = (
        round(sum(s["generated_tokens"] for s in timed) / gen_seconds, 1) if gen_seconds > 0 else None
    )
    row["first_step_s"] = steps[0]["step_s"]
    row["reward_first"] = steps[0]["reward_mean"]
    row["reward_last"] = steps[-1]["reward_mean"]
    row["reward_mean"] = round(sum(s["reward_mean"] for s in steps) / len(steps), 4)
    row["completion_length_mean"] = round(sum(s["completion_length_mean"] for s in steps) / len(steps), 2)


def verdict(rows: list[dict[str, Any]]) -> list[str]:
    """Each tunix-rt row's steps/s over TRL's fastest row (the target's measure) and over the TRL row
    of its own dtype, and how far apart the reward curves are."""
    ok = {r["contender"]: r for r in rows if r.get("status") == "ok" and r.get("steps_per_sec")}
    trl_rows = [r for r in ok.values() if CONTENDERS[r["contender"]].kind == "trl"]
    if not trl_rows:
        return []
    fastest = max(trl_rows, key=lambda r: r["steps_per_sec"])
    notes = []
    for ours in (r for r in ok.values() if CONTENDERS[r["contender"]].kind == "tunix"):
        ratio = ours["steps_per_sec"] / fastest["steps_per_sec"]
        ours["ratio_to_trl"] = round(ratio, 2)
        peer = next((r for r in trl_rows if r.get("dtype") == ours.get("dtype")), fastest)
        gap = ours["reward_mean"] - peer["reward_mean"]
        relation = "same dtype" if peer.get("dtype") == ours.get("dtype") else "no TRL row of its dtype"
        notes += [
            f"{ours['contender']} ({ours.get('dtype')}) vs {fastest['contender']} ({fastest.get('dtype')}, TRL's "
            f"fastest): {ratio:.2f}x steps/s ({ours['seconds_per_step']:.2f} vs {fastest['seconds_per_step']:.2f} s "
            f"per step); target >= {TARGET:g}x: {'met' if ratio >= TARGET else 'NOT met'}",
            f"  vs {peer['contender']} ({relation}): {ours['steps_per_sec'] / peer['steps_per_sec']:.2f}x; reward over "
            f"all steps {ours['reward_mean']:.3f} vs {peer['reward_mean']:.3f} ({gap:+.3f}); mean completion "
            f"length {ours['completion_length_mean']} vs {peer['completion_length_mean']} tokens",
        ]
    return notes  # fmt: skip


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    header = ["contender", "dtype", "s/step", "steps/s", "x TRL", "sample s", "update s", "gen tok/s", "reward 1st",
              "reward last", "reward mean", "len mean", "first step s", "peak RSS MB", "wall s"]  # fmt: skip
    lines = [header]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(
                [r["contender"], f"{r.get('status', 'failed')}: {r.get('reason', '')}".splitlines()[0][:90]]
            )
            continue
        lines.append([
            r["contender"], str(r.get("dtype")), fmt(r.get("seconds_per_step"), ".2f"), fmt(r.get("steps_per_sec"), ".3f"),
            fmt(r.get("ratio_to_trl")), fmt(r.get("generation_s"), ".2f"), fmt(r.get("update_s"), ".2f"),
            fmt(r.get("generated_tokens_per_sec"), ".0f"), fmt(r.get("reward_first"), ".3f"),
            fmt(r.get("reward_last"), ".3f"), fmt(r.get("reward_mean"), ".3f"),
            fmt(r.get("completion_length_mean"), ".1f"), fmt(r.get("first_step_s"), ".1f"),
            fmt(r.get("peak_rss_mb"), ".0f"), fmt(r.get("wall_s"), ".1f"),
        ])  # fmt: skip
    render_table(header, lines, title)


def print_curves(rows: list[dict[str, Any]]) -> None:
    """Per-step mean reward (and completion length) of each contender, step by step."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("steps")]
    if not ok:
        return
    header = ["step"] + [f"{r['contender']} reward / len" for r in ok]
    lines = [header]
    for k in range(max(len(r["steps"]) for r in ok)):
        line = [str(k + 1)]
        for r in ok:
            s = r["steps"][k] if k < len(r["steps"]) else None
            line.append(f"{s['reward_mean']:.3f} / {s['completion_length_mean']:.1f}" if s else "-")
        lines.append(line)
    render_table(header, lines, "per-step mean reward / mean completion length (same prompts at each step):")


def hyperparameters(attn: str) -> dict[str, Any]:
    """What both contenders share besides the setup (steps, prompts per step, G, completion length)."""
    return {
        "learning_rate": LEARNING_RATE, "schedule": "constant, no warmup", "optimizer": "AdamW",
        "max_grad_norm": MAX_GRAD_NORM, "seed": SEED, "temperature": TEMPERATURE, "top_p": TOP_P,
        "epsilon": EPSILON, "beta": BETA, "num_iterations": NUM_ITERATIONS, "loss": "dapo",
        "scale_rewards": "group", "rewards": {"correctness": 1.0}, "dtype": "per row", "attn": attn,
    }  # fmt: skip


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"comma-separated, from: {', '.join(CONTENDERS)}"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="~100k-param random-init GPT-2, 3 tiny steps: seconds"
    )
    parser.add_argument(
        "--model", default=None, help="start from this model directory instead of the fixture's"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="GRPO steps per contender (default 10, tiny 3)"
    )
    parser.add_argument(
        "--sft-epochs",
        type=int,
        default=None,
        help="warm-start SFT epochs of the fixture model (default 3, tiny 0)",
    )
    parser.add_argument("--prompts-per-step", type=int, default=None, help="prompts per step (default 8)")
    parser.add_argument("--num-generations", type=int, default=None, help="G (default 8)")
    parser.add_argument("--max-completion-length", type=int, default=None, help="(default 96)")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every contender (default: all)"
    )
    parser.add_argument("--json", dest="json_out", default=None, help="write machine-readable results here")
    parser.add_argument("--workdir", default=None, help="fixture, runs and logs (reused between invocations)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per contender")
    parser.add_argument(
        "--attn", default="eager", choices=["eager", "sdpa"], help="attention kernel for both"
    )
    parser.add_argument("--tunix-set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra `--set` for the tunix-rt row")  # fmt: skip
    args = parser.parse_args(argv)
    args.threads = args.threads or len(os.sched_getaffinity(0))
    args.contender_list = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in args.contender_list if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    setup = TINY_SETUP if args.tiny else FULL_SETUP
    overrides = {
        "steps": args.steps,
        "prompts_per_step": args.prompts_per_step,
        "num_generations": args.num_generations,
        "max_completion_length": args.max_completion_length,
    }
    args.setup = replace(setup, **{k: v for k, v in overrides.items() if v is not None})
    return args


def run_contenders(
    args: argparse.Namespace, fixture: GrpoFixture, workdir: Path, env: dict[str, str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for contender in (CONTENDERS[c] for c in args.contender_list):
        missing = missing_packages(contender)
        if missing:
            rows.append({"contender": contender.name, "status": "skipped",
                         "reason": f"not installed: {', '.join(missing)} (pip install -e '.[bench]')"})  # fmt: skip
            print(f"{contender.name}: skipped ({rows[-1]['reason']})", flush=True)
            continue
        print(f"{contender.name}: {args.setup.steps} GRPO steps ...", flush=True)
        run = run_tunix_grpo if contender.kind == "tunix" else run_trl_grpo
        row = run(contender, fixture, args.setup, workdir, env, args)
        row["description"] = contender.description
        summarize(row)
        rows.append(row)
        detail = (
            f"{row.get('seconds_per_step')} s/step, {row.get('wall_s')} s wall"
            if row["status"] == "ok"
            else row.get("reason")
        )
        print(f"{contender.name}: {row['status']} ({detail})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir, env, machine = start_session(args, "tunix-rt-bench-grpo")
    machine["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    size = TINY_SIZE if args.tiny else FULL_SIZE
    if args.sft_epochs is not None:
        size = replace(size, sft_epochs=args.sft_epochs)
    fixture = build_grpo_fixture(workdir, size, env, args, model=args.model)
    setup = args.setup
    print(f"fixture: {fixture.path} ({fixture.model_name}, {fixture.params / 1e6:.2f}M params, "
          f"{fixture.n_prompts} prompts, rendering {fixture.render})", flush=True)  # fmt: skip
    rows = run_contenders(args, fixture, workdir, env)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    notes = verdict(rows)
    title = (f"GRPO, {setup.steps} steps of {setup.prompts_per_step} prompts x G={setup.num_generations}, "
             f"max_completion_length {setup.max_completion_length}: {fixture.model_name} ({fixture.params / 1e6:.2f}M "
             f"params), {args.threads} threads; CPU: {machine['cpu']} ({' '.join(machine['flags'])}); "
             f"load average {machine['loadavg_start'][0]} at start, {machine['loadavg_end'][0]} at end")  # fmt: skip
    print()
    print_table(rows, title)
    for line in notes:
        print(line)
    print()
    print_curves(rows)
    result = {
        "benchmark": "grpo_throughput",
        "mode": "tiny" if args.tiny else "full",
        "machine": machine,
        "fixture": fixture.to_dict(),
        "setup": asdict(setup),
        "hyperparameters": hyperparameters(args.attn),
        "rows": rows,
        "notes": notes,
    }
    (workdir / "results.json").write_text(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 1 if any(r.get("status") == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
