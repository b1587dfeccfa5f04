"""`tunix-rt demo`: the embedded default end to end — data, training, evaluation, a summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from tunix_rt.config import load_config, resolve_config_path
from tunix_rt.evidence import ensure_replaceable, read_manifest


def demo_command(args: argparse.Namespace) -> int:
    from tunix_rt.recipes.sft import train
    from tunix_rt.train.request import TrainRequest

    config_path = resolve_config_path("default")
    config, notes = load_config(config_path)
    output = Path(args.output)
    # The demo replaces its previous output, never a directory that holds anything else.
    ensure_replaceable(output, by="the demo", subcommand="demo")
    print(f"tunix-rt demo: training the embedded default ({config_path.name}) into {output}/")
    summary = train(
        TrainRequest(
            config=config,
            dataset=str(config.data.dataset),
            output=output,
            device=args.device,
            overwrite=True,  # a demo's own directory (checked above): each `make demo` is a fresh run
            config_path=str(config_path),
            notes=notes,
            argv=["tunix-rt", "demo", "--output", str(output), "--device", args.device],
        )
    )
    manifest = read_manifest(output) or {}
    headline = manifest.get("eval") or {}
    print()
    print("== tunix-rt demo: summary ==")
    print(
        f"model     {manifest.get('model', {}).get('parameters', 0) / 1e6:.1f}M-parameter "
        f"{manifest.get('model', {}).get('architecture')} trained from scratch on {manifest.get('dataset', {}).get('count')} traces"
    )
    print(
        f"training  {summary['global_step']} steps in {summary['train_runtime_s']:.0f} s, "
        f"{summary['tokens_per_sec']:.0f} tokens/s, final loss {summary['final_loss']}"
    )
    if headline:
        print(
            f"accuracy  {headline['primary_score']:.1%} on {headline['n_items']} items of {headline['eval_set']} "
            f"(format compliance {headline['format_compliance']:.0%})"
        )
    print(f"evidence  {output}/README.md  (run_manifest.json, metrics.jsonl, eval/predictions.jsonl, ...)")
    return 0
