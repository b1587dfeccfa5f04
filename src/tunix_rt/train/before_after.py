"""Before and after: the base model scored like the trained one, and the lift between them.

`training.eval_before` evaluates the model as loaded, before any step, with the same eval set,
prompt rendering (template and system instruction, as final_model/ records them) and generation
settings as the evaluation after training. Beside accuracy the headline carries format compliance
(an `Answer:` line was given) and accuracy among the items that gave one, so a lift that is only
format (the base never wrote an answer line) reads as such.
"""

from __future__ import annotations

from typing import Any

from tunix_rt.train.render import template_kind

FIGURES = ("primary_score", "format_compliance", "accuracy_answered")


def render_settings(tokenizer: Any, system_instruction: str | None) -> dict[str, Any]:
    """The rendering training uses (and final_model/ records), for an evaluation before it exists."""
    return {"template": template_kind(tokenizer), "system_instruction": system_instruction}


def headline(result: dict[str, Any], eval_set: str) -> dict[str, Any]:
    """The figures a before/after comparison shows, from an eval summary."""
    card = result["scorecard"]
    return {
        "eval_set": eval_set,
        "primary_score": result["primary_score"],
        "n_items": card["n_items"],
        "format_compliance": card["format_compliance"],
        "accuracy_answered": card.get("accuracy_answered"),
    }


def lift(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """after - before for each figure both have (None where either is missing)."""
    out: dict[str, Any] = {}
    for key in FIGURES:
        a, b = after.get(key), before.get(key)
        out[key] = round(a - b, 6) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
    return out


def record_before(run: Any, log: Any, result: dict[str, Any], eval_set: str) -> dict[str, Any]:
    """The before headline into the manifest (eval_before) and a metrics line at step 0."""
    head = headline(result, eval_set)
    run.update_manifest(eval_before=head)
    run.append_metrics(
        {
            "step": 0,
            "eval_before_primary_score": head["primary_score"],
            "eval_before_format_compliance": head["format_compliance"],
            "eval_before_accuracy_answered": head["accuracy_answered"],
            "eval_set": eval_set,
        }
    )
    log.info(
        f"eval before training: primary_score {head['primary_score']:.3f}, format compliance "
        f"{head['format_compliance']:.3f} on {head['n_items']} items"
    )
    return head


def record_lift(run: Any, log: Any, before: dict[str, Any], result: dict[str, Any], eval_set: str) -> None:
    """The after headline and the lift into the manifest (eval_after, eval_lift)."""
    after = headline(result, eval_set)
    gained = lift(before, after)
    run.update_manifest(eval_after=after, eval_lift=gained)
    log.info(
        f"eval lift: accuracy {before['primary_score']:.3f} -> {after['primary_score']:.3f}, format "
        f"compliance {before['format_compliance']:.3f} -> {after['format_compliance']:.3f}"
    )
