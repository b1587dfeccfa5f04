"""What a GRPO run records beside train/record.py's shared evidence: its metrics line per logging
step, completions.jsonl (appended, never rewritten), its summary, and eval before/after with lift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tunix_rt.rl.data import PromptItem
from tunix_rt.rl.loss import LossParts, zero_signal_groups
from tunix_rt.rl.rewards import format_checks
from tunix_rt.rl.state import GrpoState
from tunix_rt.rl.step import Scored


def step_record(
    state: GrpoState,
    scored: Scored,
    parts: LossParts,
    grad_norm: float,
    lr: float,
    seconds: tuple[float, float],
) -> dict[str, Any]:
    """One metrics.jsonl line: this step's rewards, group signal, KL, clipping and speeds.
    `seconds`: (generation, update) time of the step."""
    lengths = scored.samples.lengths
    totals = torch.tensor(scored.totals)
    record: dict[str, Any] = {
        "step": state.step,
        "reward_mean": float(totals.mean()),
        "reward_std": _std(totals),
    }
    for name, values in scored.per_fn.items():
        tensor = torch.tensor(values)
        record[f"reward/{name}/mean"] = float(tensor.mean())
        record[f"reward/{name}/std"] = _std(tensor)
    formats = [
        all(format_checks(t, s)) for t, s in zip(scored.samples.texts, scored.samples.stopped, strict=True)
    ]
    gen_s, upd_s = seconds
    groups = len(scored.totals) // scored.group_size
    record.update(
        correctness_rate=sum(scored.correct) / len(scored.correct),
        format_rate=sum(formats) / len(formats),
        completion_length_mean=sum(lengths) / len(lengths),
        completion_length_max=max(lengths),
        zero_signal_fraction=scored.zero_signal_sampled / groups,
        zero_signal_fraction_trained=float(zero_signal_groups(totals, scored.group_size).float().mean()),
        resampled_groups=scored.resampled_groups,
        kl=parts.kl,
        clip_fraction=parts.clip_fraction,
        loss=float(parts.loss.detach()),
        grad_norm=grad_norm,
        lr=lr,
        generation_tokens_per_sec=sum(lengths) / gen_s if gen_s > 0 else None,
        update_tokens_per_sec=parts.tokens / upd_s if upd_s > 0 else None,
        generation_s=round(gen_s, 4),
        update_s=round(upd_s, 4),
        step_s=round(gen_s + upd_s, 4),
        elapsed_s=round(state.loop_seconds, 3),
    )
    return record


def _std(values: torch.Tensor) -> float:
    return float(values.std()) if values.numel() > 1 else 0.0


def append_completions(path: Path, step: int, items: list[PromptItem], scored: Scored) -> None:
    """Append this step's completions: a line per completion, never rewriting earlier steps."""
    g = scored.group_size
    lines = []
    for k, gen in enumerate(scored.samples.generations):
        row = {
            "step": step,
            "prompt_id": items[k // g].id,
            "sample": k % g,
            "completion": gen.text,
            "n_tokens": gen.n_tokens,
            "stopped": gen.stopped_at_eos,
            "rewards": {name: values[k] for name, values in scored.per_fn.items()},
            "reward": scored.totals[k],
            "correct": scored.correct[k],
        }
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))
        handle.flush()


def summary(state: GrpoState) -> dict[str, Any]:
    """The manifest's summary: cumulative over resumes."""
    seconds = state.loop_seconds
    return {
        "global_step": state.step,
        "train_runtime_s": round(seconds, 3),
        "generated_tokens": state.generated_tokens,
        "updated_tokens": state.updated_tokens,
        "generated_tokens_per_sec": round(state.generated_tokens / seconds, 1) if seconds else None,
    }


def lift(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """{before, after, lift} of the primary score, when both evaluations succeeded."""
    before, after = manifest.get("eval_before") or {}, manifest.get("eval") or {}
    if "primary_score" not in before or "primary_score" not in after:
        return None
    return {
        "before": before["primary_score"],
        "after": after["primary_score"],
        "lift": after["primary_score"] - before["primary_score"],
    }
