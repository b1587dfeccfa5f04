"""`tunix-rt report RUN`: (re)write RUN/README.md, the index a stranger reads to verify a run
(and RUN/report.html, see html_report.py).

It says what each file proves, gives the headline figures, the exact command to reproduce the run,
the loss curve (RUN/loss_curve.png, redrawn from metrics.jsonl) and the eval scorecard. Training
calls `write_run_readme` at the end of every run, completed or not; a missing piece shows as "-".
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from tunix_rt.errors import RunDirError
from tunix_rt.fsutil import atomic_write_text
from tunix_rt.runs.plots import plot_loss_curves
from tunix_rt.runs.rundir import LOSS_CURVE, MANIFEST, RunView, fmt, loss_series, read_run

README = "README.md"

# (path in the run directory, what it proves)
EVIDENCE = (
    (MANIFEST, "what ran: run id, status, command, config hash, dataset hash, model, device, results"),
    ("config.yaml", "the fully resolved config the run used (defaults and overrides applied)"),
    ("metrics.jsonl", "the training happened: loss, lr, grad norm and throughput at every logged step"),
    ("training_log.txt", "the human log of the run, warnings included"),
    (LOSS_CURVE, "how the training loss moved (drawn from metrics.jsonl)"),
    ("env_info.txt", "the machine: OS, Python, CPU/GPU"),
    ("torch_version.txt", "the exact PyTorch build and its CUDA/arch support"),
    ("cuda_check.txt", "the GPU kernel probe result (or why the CPU was used)"),
    ("nvidia_smi.txt", "driver and GPU state as nvidia-smi reported it"),
    ("pip_freeze.txt", "every installed package version"),
    ("checkpoints", "resumable training state at the saved steps"),
    ("final_model", "the trained model + tokenizer (+ tunix_rt_render.json, the prompt format)"),
    ("eval_before/predictions.jsonl", "training.eval_before: the model before training on the same eval set"),
    ("eval/predictions.jsonl", "every eval item: raw generation, extracted answer, the rule that judged it"),
    (
        "eval/eval_summary.json",
        "the score: accuracy, per-section/category/difficulty scores, format compliance",
    ),
)


def _headline(view: RunView) -> list[tuple[str, str]]:
    summary = view.eval_summary or {}
    card = summary.get("scorecard") or {}
    score = view.primary_score
    runtime = view.get("summary.train_runtime_s")
    return [
        ("status", fmt(view.get("status"))),
        ("model", fmt(view.model_label)),
        ("dataset", fmt(view.dataset_label)),
        ("device", fmt(" ".join(str(x) for x in (view.get("device.type"), view.get("device.name")) if x))),
        ("optimizer steps", fmt(view.get("summary.global_step"))),
        ("epochs", fmt(view.get("summary.epochs"))),
        ("final loss", fmt(view.get("summary.final_loss"))),
        ("train runtime", f"{runtime:.1f} s" if isinstance(runtime, (int, float)) else "-"),
        ("train tokens", fmt(view.get("summary.train_tokens"))),
        ("tokens/s", fmt(view.get("summary.tokens_per_sec"))),
        ("peak memory (MB)", fmt(view.get("summary.peak_memory_mb"))),
        ("eval set", fmt(view.eval_set_label)),
        ("answer accuracy", f"{score:.1%}" if score is not None else "-"),
        ("format compliance", f"{card['format_compliance']:.1%}" if "format_compliance" in card else "-"),
    ]


def _reproduce(view: RunView) -> list[str]:
    command = view.get("command")
    if isinstance(command, list) and command:
        text = shlex.join(str(part) for part in command)
    elif isinstance(command, str) and command:
        text = command
    else:
        return ["-  (no command recorded in run_manifest.json)"]
    lines = ["```bash", text, "```"]
    sha = view.get("config.sha256")
    if sha:
        lines.append(f"Config sha256 `{sha}`; dataset sha256 `{fmt(view.get('dataset.sha256'))}`.")
    return lines


def _score_table(title: str, groups: dict[str, Any]) -> list[str]:
    if not groups:
        return []
    lines = [f"**By {title}**", "", f"| {title} | accuracy | correct / n |", "|---|---:|---:|"]
    for name, group in groups.items():
        lines.append(
            f"| {name} | {group.get('accuracy', 0):.1%} | {group.get('correct', '-')} / {group.get('n', '-')} |"
        )
    return [*lines, ""]


def _scorecard(view: RunView) -> list[str]:
    card = (view.eval_summary or {}).get("scorecard")
    if not isinstance(card, dict):
        return ["- (not evaluated: no eval/eval_summary.json)"]
    lines = [
        f"{card.get('n_correct', '-')} of {card.get('n_scored', '-')} scored items correct "
        f"({card.get('n_skipped', 0)} skipped); format compliance {card.get('format_compliance', 0):.1%}.",
        "",
    ]
    for key, title in (("section_scores", "section"), ("category_scores", "category"),
                       ("difficulty_scores", "difficulty")):  # fmt: skip
        lines += _score_table(title, card.get(key) or {})
    return lines


def _before_after(view: RunView) -> list[str]:
    """training.eval_before: the base model and the trained one on the same eval set, and the lift."""
    before, after, lift = view.get("eval_before"), view.get("eval_after"), view.get("eval_lift")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    lift = lift if isinstance(lift, dict) else {}

    def pct(value: Any, signed: bool = False) -> str:
        if not isinstance(value, (int, float)):
            return "-"
        return f"{value * 100:+.1f} pts" if signed else f"{value:.1%}"

    lines = [
        "## Before and after",
        "",
        f"On {fmt(after.get('eval_set'))} ({fmt(after.get('n_items'))} items), same rendering and generation "
        "settings. Accuracy among answered items counts only items that gave an answer: a lift that is only "
        "format leaves it where it was.",
        "",
        "| | before | after | lift |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (("primary_score", "accuracy"), ("format_compliance", "format compliance"),
                       ("accuracy_answered", "accuracy among answered")):  # fmt: skip
        lines.append(
            f"| {label} | {pct(before.get(key))} | {pct(after.get(key))} | {pct(lift.get(key), True)} |"
        )
    return [*lines, ""]


def _evidence(run_dir: Path) -> list[str]:
    lines = ["| file | what it proves | |", "|---|---|---|"]
    for name, proves in EVIDENCE:
        present = (run_dir / name).exists()
        link = f"[`{name}`]({name})" if present else f"`{name}`"
        lines.append(f"| {link} | {proves} | {'present' if present else '-'} |")
    return lines


def render_readme(view: RunView, has_curve: bool) -> str:
    title = view.get("run_id") or view.name
    lines = [f"# Run {title}", "", f"Created {fmt(view.get('created_at'))}.", "", "## Headline", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in _headline(view)]
    lines += ["", "## Reproduce", "", *_reproduce(view), "", "## Loss curve", ""]
    lines.append(f"![loss curve]({LOSS_CURVE})" if has_curve else "- (no loss recorded in metrics.jsonl)")
    lines += [
        "",
        *_before_after(view),
        "## Scorecard",
        "",
        *_scorecard(view),
        "",
        "## Evidence",
        "",
        *_evidence(view.path),
    ]
    if view.problems:
        lines += ["", "## Problems reading this run", ""] + [f"- {p}" for p in view.problems]
    return "\n".join(lines).rstrip() + "\n"


def write_run_readme(run_dir: Path) -> Path:
    """Redraw RUN/loss_curve.png and (re)write RUN/README.md atomically; returns the README path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    view = read_run(run_dir)
    curve = plot_loss_curves(
        {view.name: loss_series(run_dir)}, run_dir / LOSS_CURVE, title=f"training loss: {view.name}"
    )
    has_curve = curve is not None or (run_dir / LOSS_CURVE).is_file()
    path = run_dir / README
    atomic_write_text(path, render_readme(view, has_curve))
    return path


def report_command(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    if run_dir.is_dir() and not (run_dir / MANIFEST).is_file():
        raise RunDirError(f"{run_dir}: not a run directory (no {MANIFEST})")
    path = write_run_readme(run_dir)
    print(f"wrote {path}")
    from tunix_rt.runs.html_report import write_html_report  # jinja2 only when a report is asked for

    print(f"wrote {write_html_report(run_dir)}")
    return 0
