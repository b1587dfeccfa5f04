"""`tunix-rt demo`: a real model learns to show its work — SmolLM2-135M-Instruct with LoRA,
scored before and after on the held-out set and on `reasoning-eval-v1`, printed as a table.

`tunix-rt demo --scratch` runs the embedded from-scratch default instead (`default.yaml`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tunix_rt.config import Config, load_config, resolve_config_path
from tunix_rt.evidence import ensure_replaceable, read_manifest

LORA_DEMO = "demo-smollm2"
SCRATCH_DEMO = "default"
# The demo's second eval set: phrasings no generator uses (the training config evaluates the held-out set).
SECOND_EVAL_SET = "reasoning-eval-v1"


def demo_command(args: argparse.Namespace) -> int:
    from tunix_rt.recipes.sft import train
    from tunix_rt.train.request import TrainRequest

    scratch = bool(getattr(args, "scratch", False))
    config_path = resolve_config_path(SCRATCH_DEMO if scratch else LORA_DEMO)
    config, notes = load_config(config_path)
    output = Path(args.output)
    # The demo replaces its previous output, never a directory that holds anything else.
    ensure_replaceable(output, by="the demo", subcommand="demo")
    argv = ["tunix-rt", "demo", "--output", str(output), "--device", args.device] + (
        ["--scratch"] if scratch else []
    )
    print(f"tunix-rt demo: training {config_path.name} into {output}/")
    summary = train(
        TrainRequest(
            config=config,
            dataset=str(config.data.dataset),
            output=output,
            device=args.device,
            overwrite=True,  # a demo's own directory (checked above): each `make demo` is a fresh run
            config_path=str(config_path),
            notes=notes,
            argv=argv,
        )
    )
    rows = [] if scratch else _second_eval_set(config, output)
    _print_summary(output, summary, rows)
    return 0


def _second_eval_set(config: Config, output: Path) -> list[dict[str, Any]]:
    """reasoning-eval-v1 before (the base model, rendered as training renders) and after (final_model/)."""
    from tunix_rt.eval.runner import evaluate
    from tunix_rt.train.before_after import headline, render_settings
    from tunix_rt.train.model import load_pretrained

    tcfg = config.training
    settings = {"batch_size": tcfg.eval_batch_size, "max_new_tokens": tcfg.eval_max_new_tokens}
    print(f"tunix-rt demo: scoring the base model and the trained one on {SECOND_EVAL_SET}")
    after = evaluate(output, SECOND_EVAL_SET, output / f"eval-{SECOND_EVAL_SET}", **settings)
    tokenizer, base = load_pretrained(config.model, "sdpa")
    before = evaluate(
        str(config.model.model_id), SECOND_EVAL_SET, output / f"eval_before-{SECOND_EVAL_SET}",
        model_obj=base.eval(), tokenizer=tokenizer,
        render_settings=render_settings(tokenizer, config.system_instruction), dtype="auto", **settings,
    )  # fmt: skip
    return [{"before": headline(before, SECOND_EVAL_SET), "after": headline(after, SECOND_EVAL_SET)}]


def _pct(value: Any) -> str:
    return f"{value:6.1%}" if isinstance(value, (int, float)) else "     -"


def _print_summary(output: Path, summary: dict[str, Any], extra_rows: list[dict[str, Any]]) -> None:
    manifest = read_manifest(output) or {}
    model = manifest.get("model", {})
    print()
    print("== tunix-rt demo: summary ==")
    if manifest.get("lora"):
        lora = manifest["lora"]
        print(
            f"model     {model.get('id')} ({model.get('parameters', 0) / 1e6:.1f}M parameters, "
            f"{model.get('architecture')}), LoRA r={lora['r']}: {lora['trainable_parameters'] / 1e6:.2f}M trained, "
            f"on {manifest.get('plan', {}).get('examples')} traces"
        )
    else:
        print(
            f"model     {model.get('parameters', 0) / 1e6:.1f}M-parameter {model.get('architecture')} trained "
            f"from scratch on {manifest.get('dataset', {}).get('count')} traces"
        )
    print(
        f"training  {summary['global_step']} steps in {summary['train_runtime_s']:.0f} s, "
        f"{summary['tokens_per_sec']:.0f} tokens/s, final loss {summary['final_loss']}"
    )
    rows = []
    if manifest.get("eval_before") and manifest.get("eval_after"):
        rows.append({"before": manifest["eval_before"], "after": manifest["eval_after"]})
    rows += extra_rows
    if rows:
        print()
        print(f"{'eval set':<24} {'items':>5}  {'accuracy':>15}  {'answered':>15}  {'answered right':>15}")
        print(f"{'':<24} {'':>5}  {'before   after':>15}  {'before   after':>15}  {'before   after':>15}")
        for row in rows:
            b, a = row["before"], row["after"]
            name = Path(str(a["eval_set"])).stem
            print(
                f"{name:<24} {a['n_items']:>5}  {_pct(b['primary_score'])}  {_pct(a['primary_score'])}  "
                f"{_pct(b['format_compliance'])}  {_pct(a['format_compliance'])}  "
                f"{_pct(b['accuracy_answered'])}  {_pct(a['accuracy_answered'])}"
            )
        print("(answered: an `Answer:` line was given; answered right: accuracy among those items)")
    elif manifest.get("eval"):
        headline = manifest["eval"]
        print(
            f"accuracy  {headline['primary_score']:.1%} on {headline['n_items']} items of {headline['eval_set']} "
            f"(format compliance {headline['format_compliance']:.0%})"
        )
    print(f"evidence  {output}/README.md  (run_manifest.json, metrics.jsonl, eval/predictions.jsonl, ...)")
