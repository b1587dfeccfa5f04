"""`tunix-rt eval`: run `evaluate` and print the headline, the weakest groups and where files went."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

MAX_GROUP_LINES = 6


def _group_lines(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    if not groups:
        return []
    lines = [f"  by {title}:"]
    # Lowest accuracy first: the groups worth looking at.
    ranked = sorted(groups.items(), key=lambda kv: (kv[1]["accuracy"], kv[0]))
    for name, group in ranked[:MAX_GROUP_LINES]:
        lines.append(f"    {name:<20} {group['accuracy']:6.1%}  ({group['correct']}/{group['n']})")
    if len(ranked) > MAX_GROUP_LINES:
        lines.append(f"    ... {len(ranked) - MAX_GROUP_LINES} more in eval_summary.json")
    return lines


def format_summary(summary: dict[str, Any], output: Path) -> str:
    card = summary["scorecard"]
    gen = summary["generation"]
    lines = [
        f"answer accuracy: {summary['primary_score']:.1%} ({card['n_correct']}/{card['n_scored']}) "
        f"on {summary['eval_set']['spec']}",
        f"format compliance (has an 'Answer:' line): {card['format_compliance']:.1%}",
        *_group_lines("section", card["section_scores"]),
        *_group_lines("category", card["category_scores"]),
        f"generated {gen['tokens']} tokens in {gen['runtime_s']:.1f}s "
        f"({gen['tokens_per_sec'] or 0:.0f} tok/s) on {gen['device']} ({gen['dtype']})",
        f"predictions: {output / 'predictions.jsonl'}",
        f"summary:     {output / 'eval_summary.json'}",
    ]
    return "\n".join(lines)


def eval_command(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    from tunix_rt.eval.runner import evaluate

    hf_logging.disable_progress_bar()  # the weight-loading bar is noise in a one-shot command
    output = Path(args.output)
    summary = evaluate(
        args.model,
        args.eval_set,
        output,
        device=args.device,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        dtype=args.dtype,
    )
    print(format_summary(summary, output))
    return 0
