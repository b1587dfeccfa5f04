"""RUN/report.html: one self-contained file (data, script and styles inline) to attach anywhere.

It shows what the dashboard's Run and Evaluation pages show for one run — the training curves
(drawn by the same charts.js and uPlot the dashboard ships), the headline, the scorecard and every
prediction with a filter — and needs no network and no server to open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from tunix_rt.errors import RunDirError
from tunix_rt.evidence import EVAL_DIR
from tunix_rt.fsutil import atomic_write_text
from tunix_rt.runs import display
from tunix_rt.runs.rundir import MANIFEST, read_metrics, read_run

REPORT_HTML = "report.html"
_SERVE = Path(__file__).resolve().parent.parent / "serve"
_ASSETS = ("uPlot.min.css", "app.css", "uPlot.iife.min.js", "charts.js")


def _asset(name: str) -> str:
    text = (_SERVE / "static" / name).read_text(encoding="utf-8")
    # Inline in <script>/<style>: a literal "</" could end the element early.
    return text.replace("</", "<\\/")


def render_html_report(run_dir: Path) -> str:
    view = read_run(run_dir)
    metrics = read_metrics(run_dir)
    after_dir = run_dir / EVAL_DIR
    summary, problem = display.read_summary(after_dir)
    rows = display.predictions(after_dir)
    env = Environment(
        loader=FileSystemLoader(str(_SERVE / "templates")), autoescape=select_autoescape(["html"])
    )
    context: dict[str, Any] = {
        "name": view.name,
        "view": view,
        "unreadable": display.unreadable_reason(view),
        "status": view.get("status") or "-",
        "series": display.series(metrics),
        "curves": display.curve_list(metrics),
        "sections": display.manifest_sections(view) if view.manifest else [],
        "command": display.reproduce_command(view),
        "summary": summary,
        "summary_problem": problem,
        "predictions": rows,
        "categories": sorted({str(r.get("category")) for r in rows if r.get("category")}),
        "assets": {name: _asset(name) for name in _ASSETS},
    }
    return env.get_template("report.html").render(**context)


def write_html_report(run_dir: Path) -> Path:
    """(Re)write RUN/report.html atomically; returns its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    if not (run_dir / MANIFEST).is_file():
        raise RunDirError(f"{run_dir}: not a run directory (no {MANIFEST})")
    path = run_dir / REPORT_HTML
    atomic_write_text(path, render_html_report(run_dir))
    return path
