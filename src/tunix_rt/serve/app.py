"""The Starlette app: HTML pages, the JSON the pages poll, evidence files, static assets.

Read-only by construction: every route is a GET that reads files under ROOT (or a bundled
dataset key); any name from a URL goes through `resolve_under`, so nothing outside ROOT is served.
The endpoints are plain functions: Starlette runs them in its thread pool, so a slow read (a big
predictions file, a bundled dataset built on first view) does not stall the other requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tunix_rt.serve import pages
from tunix_rt.serve.runs import list_runs
from tunix_rt.serve.safepath import OutsideRoot, resolve_under

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))


def _root(request: Request) -> Path:
    return request.app.state.root


def _run_dir(request: Request) -> tuple[str, Path]:
    name = request.path_params["name"]
    try:
        path = resolve_under(_root(request), name)
    except OutsideRoot as exc:
        raise HTTPException(404, str(exc)) from exc
    if not path.is_dir():
        raise HTTPException(404, f"{name}: no such run directory")
    return name, path


def _page(request: Request, template: str, context: dict[str, Any]) -> Response:
    return TEMPLATES.TemplateResponse(request, template, {"root": str(_root(request)), **context})


def runs_page(request: Request) -> Response:
    q = request.query_params
    return _page(
        request,
        "runs.html",
        pages.runs_context(_root(request), q.get("sort", "score"), q.get("status", ""), q.get("q", "")),
    )


def run_page(request: Request) -> Response:
    name, path = _run_dir(request)
    return _page(request, "run.html", pages.run_context(name, path))


def eval_page(request: Request) -> Response:
    name, path = _run_dir(request)
    q = request.query_params
    return _page(
        request,
        "eval.html",
        pages.eval_context(name, path, q.get("show", "all"), q.get("category", ""), q.get("dir", "eval")),
    )


def compare_page(request: Request) -> Response:
    names = request.query_params.getlist("run")
    return _page(request, "compare.html", pages.compare_context(_root(request), names))


def datasets_page(request: Request) -> Response:
    q = request.query_params
    offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
    return _page(
        request,
        "datasets.html",
        pages.datasets_context(_root(request), q.get("path", ""), q.get("key", ""), offset),
    )


def api_runs(request: Request) -> Response:
    return JSONResponse(list_runs(_root(request)))


def api_metrics(request: Request) -> Response:
    name, path = _run_dir(request)
    return JSONResponse(pages.metrics_payload(name, path))


def evidence_file(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        path = resolve_under(_root(request), name)
    except OutsideRoot as exc:
        raise HTTPException(404, str(exc)) from exc
    if not path.is_file():
        raise HTTPException(404, f"{name}: no such file")
    text_like = path.suffix in {".txt", ".json", ".jsonl", ".yaml", ".yml", ".md", ".log", ""}
    return FileResponse(path, media_type="text/plain; charset=utf-8" if text_like else None)


def create_app(root: Path) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", runs_page),
            Route("/runs/{name:path}", run_page),
            Route("/eval/{name:path}", eval_page),
            Route("/compare", compare_page),
            Route("/datasets", datasets_page),
            Route("/api/runs", api_runs),
            Route("/api/metrics/{name:path}", api_metrics),
            Route("/files/{name:path}", evidence_file),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
    )
    app.state.root = Path(root).resolve()
    return app
