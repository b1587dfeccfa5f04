"""The `tunix-rt data ...` subcommands: each takes the parsed Namespace and returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tunix_rt.data.build import build_dataset
from tunix_rt.data.loader import LoadResult, load_traces, validate_file
from tunix_rt.data.registry import DATASETS, EVAL_SETS
from tunix_rt.data.resolver import resolve_dataset
from tunix_rt.data.stats import trace_stats
from tunix_rt.errors import DataError


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def list_command(args: argparse.Namespace) -> int:
    datasets = [
        {
            "key": s.key,
            "version": s.version,
            "description": s.description,
            "default_seed": s.default_seed,
            "default_size": s.default_size,
            "sizable": s.sizable,
        }
        for s in DATASETS.values()
    ]
    evalsets = [{"key": key, "file": name, "description": desc} for key, (name, desc) in EVAL_SETS.items()]
    if args.json:
        _print_json({"datasets": datasets, "eval_sets": evalsets})
        return 0
    width = max(len(key) for key in [*DATASETS, *EVAL_SETS]) + 2
    print("datasets (use with --dataset / data build; sizable ones accept KEY:SIZE):")
    for d in datasets:
        print(f"  {d['key']:<{width}}{d['description']}")
    print("eval sets (use with eval --eval-set):")
    for e in evalsets:
        print(f"  {e['key']:<{width}}{e['description']}")
    return 0


def build_command(args: argparse.Namespace) -> int:
    result = build_dataset(args.key, Path(args.output), seed=args.seed, size=args.size)
    m = result.manifest
    print(f"wrote {result.path} ({m['count']} traces, seed {m['seed']}, sha256 {m['sha256'][:12]}...)")
    print(f"wrote {result.path.parent / 'manifest.json'}")
    return 0


def _summary(results: list[LoadResult]) -> dict[str, int]:
    invalid = sum(len({p.line for p in r.errors}) for r in results)
    records = sum(r.records for r in results)
    return {
        "files": len(results),
        "records": records,
        "valid": records - invalid,
        "invalid": invalid,
        "duplicates": sum(r.duplicates for r in results),
    }


def validate_command(args: argparse.Namespace) -> int:
    results: list[LoadResult] = []
    unreadable: list[str] = []
    for name in args.files:
        try:
            results.append(validate_file(name))
        except DataError as exc:  # a missing file is reported with the others, not as a crash
            unreadable.append(str(exc))
    summary = _summary(results)
    summary["unreadable"] = len(unreadable)
    failed = bool(unreadable) or summary["invalid"] > 0
    if args.json:
        _print_json(
            {
                "ok": not failed,
                **summary,
                "files_detail": [
                    {
                        "file": str(r.path),
                        "records": r.records,
                        "invalid": len({p.line for p in r.errors}),
                        "duplicates": r.duplicates,
                        "sha256": r.sha256,
                        "conversions": r.conversions,
                    }
                    for r in results
                ],
                "problems": [
                    {"file": p.file, "line": p.line, "field": p.field, "message": p.message, "level": p.level}
                    for r in results
                    for p in r.problems
                ],
                "unreadable": unreadable,
            }
        )
        return 1 if failed else 0
    for r in results:
        for p in r.problems:
            print(f"{p}" if p.level == "error" else f"{p} (warning)")
    for message in unreadable:
        print(message)
    print(
        f"{summary['files']} files, {summary['records']} records, {summary['valid']} valid, "
        f"{summary['invalid']} invalid, {summary['duplicates']} duplicates"
        + (f", {len(unreadable)} unreadable" if unreadable else "")
    )
    return 1 if failed else 0


def stats_command(args: argparse.Namespace) -> int:
    resolved = resolve_dataset(args.dataset)
    result = load_traces(resolved.path)
    stats = {
        "dataset": args.dataset,
        "path": str(resolved.path),
        "sha256": result.sha256,
        "duplicates": result.duplicates,
        "conversions": result.conversions,
        **trace_stats(result.traces),
    }
    if args.json:
        _print_json(stats)
        return 0
    print(f"{stats['path']}\n  sha256      {stats['sha256']}")
    print(f"  traces      {stats['count']} ({stats['duplicates']} duplicates)")
    s = stats["steps"]
    print(f"  steps       min {s['min']}, mean {s['mean']}, max {s['max']}")
    print(
        f"  prompt      {stats['prompt_chars_mean']} chars mean; answer {stats['answer_chars_mean']} chars mean"
    )
    if result.conversions:
        print(f"  converted   {', '.join(f'{k}: {v}' for k, v in result.conversions.items())}")
    print("  categories")
    for name, count in sorted(stats["categories"].items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {name:<24}{count}")
    return 0


def show_command(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise DataError(f"--n must be at least 1, got {args.n}")
    resolved = resolve_dataset(args.dataset)
    result = load_traces(resolved.path)
    out = sys.stdout
    for number, trace in enumerate(result.traces[: args.n], start=1):
        out.write(f"--- trace {number} of {len(result.traces)} ---\n")
        out.write(f"Prompt: {trace.prompt}\n")
        for n, step in enumerate(sorted(trace.steps, key=lambda s: s.i), start=1):
            out.write(f"  {n}. [{step.type}] {step.content}\n")
        out.write(f"Answer: {trace.final_answer}\n")
        out.write(f"Meta: {json.dumps(trace.meta, ensure_ascii=False)}\n\n")
    return 0
