"""Is a GRPO run's held-out lift beyond noise? Paired before/after comparison of one run.

A GRPO run with `training.eval_set` scores the same items before (RUN/eval_before/) and after
(RUN/eval/) training. Because the items are the same, the right test is the paired one: only
the discordant items say anything, those fixed (wrong before, right after) and those broken
(right before, wrong after). Under "training changed nothing but noise" each discordant item is
equally likely to go either way, so the exact two-sided sign test (McNemar's exact test) on
fixed vs broken gives the p-value. Before and after accuracy each get a 95% Wilson interval
(which, being unpaired, overlap far more readily than the paired test rejects).

    python benchmarks/grpo_lift.py runs/cpu-grpo
    python benchmarks/grpo_lift.py runs/cpu-grpo --json      # one JSON object instead of text

Pure python: the binomial tail is summed exactly with math.comb.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

Z95 = 1.959963984540054  # two-sided 95% standard normal quantile


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion correct/n (0 <= correct <= n, n > 0)."""
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"wilson_interval needs 0 <= correct <= n and n > 0, got {correct}/{n}")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test_p(fixed: int, broken: int) -> float:
    """Exact two-sided sign test (McNemar's exact test) on the discordant pairs.

    P(a split at least as uneven as the observed one | each discordant item goes either way with
    probability 1/2): 2 * P(X <= min(fixed, broken)) for X ~ Binomial(fixed + broken, 1/2),
    capped at 1. No discordant items: p = 1 (no evidence either way).
    """
    if fixed < 0 or broken < 0:
        raise ValueError(f"counts must be >= 0, got fixed={fixed} broken={broken}")
    n = fixed + broken
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(fixed, broken) + 1))
    return min(1.0, 2 * tail / 2**n)


def _correct_by_id(path: Path) -> dict[str, bool]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions (was the run made with training.eval_set?)")
    out: dict[str, bool] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "id" not in row or "correct" not in row:
            raise ValueError(f"{path}:{lineno}: a prediction needs 'id' and 'correct'")
        if row["id"] in out:
            raise ValueError(f"{path}:{lineno}: id {row['id']!r} appears twice")
        out[row["id"]] = bool(row["correct"])
    return out


def paired_lift(before: dict[str, bool], after: dict[str, bool]) -> dict:
    """The paired comparison of two scorings of the same items (id -> correct)."""
    if set(before) != set(after):
        only_b, only_a = sorted(set(before) - set(after)), sorted(set(after) - set(before))
        raise ValueError(
            f"before and after scored different items: only before {only_b[:5]}, only after {only_a[:5]}"
        )
    n = len(before)
    if n == 0:
        raise ValueError("no items scored")
    n_before, n_after = sum(before.values()), sum(after.values())
    fixed = sum(1 for k in before if not before[k] and after[k])
    broken = sum(1 for k in before if before[k] and not after[k])
    return {
        "n": n,
        "before_correct": n_before,
        "after_correct": n_after,
        "before": n_before / n,
        "after": n_after / n,
        "lift": (n_after - n_before) / n,
        "before_wilson95": wilson_interval(n_before, n),
        "after_wilson95": wilson_interval(n_after, n),
        "fixed": fixed,
        "broken": broken,
        "sign_test_p": sign_test_p(fixed, broken),
    }


def run_lift(run: Path) -> dict:
    """paired_lift of RUN/eval_before/predictions.jsonl against RUN/eval/predictions.jsonl."""
    return paired_lift(
        _correct_by_id(run / "eval_before" / "predictions.jsonl"),
        _correct_by_id(run / "eval" / "predictions.jsonl"),
    )


def format_report(r: dict) -> str:
    (bl, bh), (al, ah) = r["before_wilson95"], r["after_wilson95"]
    return "\n".join(
        [
            f"n = {r['n']} held-out items, scored before and after",
            f"before: {r['before_correct']}/{r['n']} = {r['before']:.1%}  (95% Wilson {bl:.1%}-{bh:.1%})",
            f"after:  {r['after_correct']}/{r['n']} = {r['after']:.1%}  (95% Wilson {al:.1%}-{ah:.1%})",
            f"lift:   {r['lift'] * 100:+.1f} points",
            f"paired: {r['fixed']} fixed (wrong -> right), {r['broken']} broken (right -> wrong); "
            f"exact two-sided sign test p = {r['sign_test_p']:.4g}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a GRPO (or SFT with eval_before) run directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        result = run_lift(args.run)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
