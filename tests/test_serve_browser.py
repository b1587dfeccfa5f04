"""The dashboard in headless Chromium (Debian's package, driven by Playwright) over real tiny runs.

Every page loads without console errors, the loss chart has one point per metrics line, a running
run's chart grows without a reload, the predictions filter shows only wrong items. Screenshots go
to the test's temporary directory (and to $TUNIX_RT_SCREENSHOTS when set, e.g. docs/img).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from helpers_serve import LiveWriter, build_runs

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} missing: run scripts/ensure_chromium.sh"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_runs(tmp_path_factory.mktemp("serve-runs"))


@pytest.fixture(scope="module")
def server(root):
    import uvicorn

    from tunix_rt.serve.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.errors = []  # console errors and uncaught exceptions, checked by the tests
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def shoot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 5_000  # a rendered page, not a blank one
    docs = os.environ.get("TUNIX_RT_SCREENSHOTS")
    if docs:
        Path(docs).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(docs) / path.name)
    return path


PAGES = {
    "runs": "/",
    "run": "/runs/completed-a",
    "run-failed": "/runs/failed",
    "run-unreadable": "/runs/malformed",
    "eval": "/eval/completed-a",
    "compare": "/compare?run=completed-a&run=completed-b&run=interrupted",
    "datasets": "/datasets?path=datasets/broken.jsonl",
    "datasets-key": "/datasets?key=dev-reasoning-v2",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_loads_without_console_errors(server, page, tmp_path, name) -> None:
    response = page.goto(server + PAGES[name])
    assert response is not None and response.status == 200
    page.wait_for_load_state("load")
    if name in ("run", "compare"):
        page.wait_for_selector(".chart .u-over")  # uPlot drew a chart
    shoot(page, tmp_path, name)
    assert page.errors == []


def test_loss_chart_has_one_point_per_metrics_line(server, page, root) -> None:
    lines = (root / "completed-a" / "metrics.jsonl").read_text().splitlines()
    n_loss = sum(1 for line in lines if "loss" in json.loads(line))
    page.goto(server + "/runs/completed-a")
    caption = page.wait_for_selector('[data-curve="loss"] .points')
    assert caption.get_attribute("data-points") == str(n_loss)
    assert page.evaluate("window.tunixCharts.loss.data[0].length") == n_loss
    assert page.evaluate("window.tunixCharts.loss.data[1].filter(v => v !== null).length") == n_loss
    assert page.errors == []


def test_a_running_runs_chart_grows_without_a_reload(server, page, root, tmp_path) -> None:
    writer = LiveWriter(root, name="running-browser", every=0.5).start()
    try:
        page.goto(server + "/runs/running-browser")
        page.wait_for_selector('[data-curve="loss"] .points')
        first = page.evaluate("window.tunixCharts.loss.data[0].length")
        page.evaluate("window.__sameDocument = true")  # lost if the page reloads
        page.wait_for_function(f"window.tunixCharts.loss.data[0].length >= {first + 3}", timeout=WAIT_MS)
        assert page.evaluate("window.__sameDocument === true")
        shown = int(page.get_attribute('[data-curve="loss"] .points', "data-points"))
        assert shown >= first + 3
        assert page.text_content("#run-status") == "running"
        shoot(page, tmp_path, "run-live")
        assert page.errors == []
    finally:
        writer.stop()


def test_the_predictions_filter_shows_only_wrong_items(server, page, root, tmp_path) -> None:
    rows = [json.loads(x) for x in (root / "completed-a/eval/predictions.jsonl").read_text().splitlines()]
    n_wrong = sum(not r["correct"] for r in rows)
    assert 0 < n_wrong < len(rows)  # the real eval has both, so the filter has something to remove
    page.goto(server + "/eval/completed-a")
    assert page.locator("#predictions tr[data-correct]").count() == len(rows)
    with page.expect_navigation():
        page.select_option("select[name=show]", "wrong")
    shown = page.locator("#predictions tr[data-correct]")
    assert shown.count() == n_wrong
    assert set(shown.evaluate_all("rows => rows.map(r => r.dataset.correct)")) == {"false"}
    shoot(page, tmp_path, "eval-wrong")
    assert page.errors == []


def test_report_html_opens_offline_with_its_chart_and_filter(browser, root, tmp_path) -> None:
    from tunix_rt.runs.html_report import write_html_report

    run = tmp_path / "run"
    shutil.copytree(root / "completed-a", run, ignore=shutil.ignore_patterns("final_model", "checkpoints"))
    report = write_html_report(run)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_selector('[data-curve="loss"] .u-over')
    n_loss = sum(1 for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in line)
    assert page.evaluate("window.tunixCharts.loss.data[0].length") == n_loss
    page.select_option("#f-show", "wrong")
    visible = page.locator("tr.pred:visible")
    assert set(visible.evaluate_all("rows => rows.map(r => r.dataset.correct)")) == {"false"}
    assert requests == [report.as_uri()]  # nothing fetched: data, script and styles are inline
    shoot(page, tmp_path, "report")
    assert errors == []
    context.close()


def test_the_screenshot_script_saves_every_page_and_names_a_broken_one(server, browser, tmp_path) -> None:
    spec = importlib.util.spec_from_file_location(
        "screenshots", Path(__file__).parents[1] / "scripts" / "screenshots.py"
    )
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    urls = shots.page_urls("completed-a", ["completed-a", "completed-b"], "dev-reasoning-v2")
    saved = shots.capture(browser, server, urls, tmp_path)
    assert [p.name for p in saved] == [f"{name}.png" for name in urls]
    assert all(p.stat().st_size > 5_000 for p in saved)
    with pytest.raises(shots.PageError, match=r"^run page \(/runs/no-such-run\): HTTP 404$"):
        shots.capture(browser, server, {"run": "/runs/no-such-run"}, tmp_path / "broken")
    assert not (tmp_path / "broken" / "run.png").exists()
