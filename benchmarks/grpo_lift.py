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
    python benchmarks/grpo_lift.py runs/cpu-grpo --samples 8  # also sampled correctness (avg@8)

Greedy accuracy is what the run's evaluations measure, but GRPO optimises the correctness of
*sampled* completions. `--samples K` also measures that on the held-out items: the start model
(the manifest's model.id) and RUN/final_model each answer every item K times at the run's
temperature and top_p, from the same seed (the two share random numbers only until their
generations differ in length; the test does not rely on it), and the per-item fractions correct are
compared pairwise: avg@K before and after, their difference and its 95% interval (normal
approximation over items).

The statistics are pure python: the binomial tail is summed exactly with math.comb.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tunix_rt.errors import TunixError

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


def paired_sampled_lift(before: list[int], after: list[int], k: int) -> dict:
    """avg@k before and after from per-item counts of correct samples (out of k, same items in the
    same order), the mean per-item difference, its 95% interval and two-sided p (normal
    approximation: the mean of n independent per-item differences)."""
    if k < 1 or len(before) != len(after) or not before:
        raise ValueError(f"need k >= 1 and two equally long, non-empty count lists, got k={k}")
    if any(not 0 <= c <= k for c in [*before, *after]):
        raise ValueError(f"a count of correct samples lies outside 0..{k}")
    n = len(before)
    diffs = [(a - b) / k for b, a in zip(before, after, strict=True)]
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else 0.0
    se = sd / math.sqrt(n)
    # With no spread at all the difference is exact: no evidence when it is 0, certain otherwise.
    p = math.erfc(abs(mean) / se / math.sqrt(2)) if se > 0 else float(mean == 0)
    return {
        "n": n,
        "k": k,
        "before": sum(before) / (n * k),
        "after": sum(after) / (n * k),
        # Over the n x k samples as if independent; they cluster by item, so these are a little
        # narrow, and the paired interval of the lift below is the one that decides.
        "before_wilson95": wilson_interval(sum(before), n * k),
        "after_wilson95": wilson_interval(sum(after), n * k),
        "lift": mean,
        "lift_se": se,
        "lift_ci95": (mean - Z95 * se, mean + Z95 * se),
        "p": p,
    }


def _sampled_counts(model_dir: Path, prompts: list[str], items: list, k: int, how: dict) -> list[int]:
    """How many of k sampled completions of each item are correct, for the model in model_dir."""
    import torch

    from tunix_rt.device.preflight import resolve_device
    from tunix_rt.eval.generate import generate
    from tunix_rt.eval.runner import eval_dtype, load_model
    from tunix_rt.eval.score import score

    choice = resolve_device("auto")
    model, tokenizer = load_model(model_dir, choice.device, eval_dtype(choice))
    generator = torch.Generator().manual_seed(how["seed"])
    generations = generate(
        model,
        tokenizer,
        [prompt for prompt in prompts for _ in range(k)],
        max_new_tokens=how["max_new_tokens"],
        batch_size=how["batch_size"],
        device=choice.device,
        temperature=how["temperature"],
        top_p=how["top_p"],
        generator=generator,
    )
    return [
        sum(score(gen.text, item.expected_answer).correct for gen in generations[i * k : (i + 1) * k])
        for i, item in enumerate(items)
    ]


def run_sampled_lift(run: Path, k: int, seed: int = 0) -> dict:
    """paired_sampled_lift of the run's start model against RUN/final_model on the run's eval set,
    both asked with the rendering GRPO saved and sampled as GRPO sampled."""
    from tunix_rt.data.evalsets import load_eval_set
    from tunix_rt.eval.runner import (
        load_model_tokenizer,
        read_render_settings,
        render_for_eval,
        resolve_model_dir,
    )
    from tunix_rt.evidence import read_manifest

    manifest = read_manifest(run) or {}
    config = manifest.get("config", {}).get("resolved", {})
    if "grpo" not in config or not manifest.get("eval", {}).get("eval_set"):
        raise ValueError(f"{run}: not a finished GRPO run with training.eval_set")
    # model.id as training was given it: a run or model directory, relative to where it ran.
    start_dir = resolve_model_dir(manifest["model"]["id"])[0]
    if not start_dir.is_dir():
        raise ValueError(
            f"{run}: the start model {manifest['model']['id']!r} is not a directory here (a hub id, or a "
            "path relative to another working directory); --samples needs it on disk"
        )
    final_dir = run / "final_model"
    settings = read_render_settings(final_dir)
    items = load_eval_set(manifest["eval"]["eval_set"]).items
    tokenizer = load_model_tokenizer(final_dir)
    prompts = [render_for_eval(item.prompt, tokenizer, settings) for item in items]
    how = {
        "seed": seed,
        "temperature": config["grpo"]["temperature"],
        "top_p": config["grpo"]["top_p"],
        "max_new_tokens": config["training"]["eval_max_new_tokens"],
        "batch_size": config["training"]["eval_batch_size"],
    }
    before = _sampled_counts(start_dir, prompts, items, k, how)
    after = _sampled_counts(final_dir, prompts, items, k, how)
    return {
        **paired_sampled_lift(before, after, k),
        **{key: how[key] for key in ("temperature", "top_p", "seed")},
    }


def format_sampled_report(r: dict) -> str:
    lo, hi = r["lift_ci95"]
    (bl, bh), (al, ah) = r["before_wilson95"], r["after_wilson95"]
    return (
        f"sampled (avg@{r['k']}, temperature {r['temperature']}, top_p {r['top_p']}, seed {r['seed']}): "
        f"{r['before']:.1%} (95% Wilson {bl:.1%}-{bh:.1%}) -> {r['after']:.1%} ({al:.1%}-{ah:.1%}) "
        f"of {r['n']} x {r['k']} samples, lift {r['lift'] * 100:+.1f} points "
        f"(paired 95% {lo * 100:+.1f} to {hi * 100:+.1f}), p = {r['p']:.3g}"
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
    parser.add_argument("--samples", type=int, default=0, metavar="K", help="also avg@K sampled correctness")
    parser.add_argument("--seed", type=int, default=0, help="the sampling seed of --samples")
    args = parser.parse_args(argv)
    try:
        result = run_lift(args.run)
        if args.samples:
            result["sampled"] = run_sampled_lift(args.run, args.samples, args.seed)
    except (OSError, ValueError, TunixError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(format_report(result))
        if "sampled" in result:
            print(format_sampled_report(result["sampled"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
