"""Screenshot every dashboard page for the runs under ROOT (the PNGs in docs/img).

    python scripts/screenshots.py runs --run demo --compare demo,cpu-scratch --out docs/img

Serves ROOT with `tunix_rt.serve.app.create_app` on a free local port, opens each page in headless
Chromium (Debian's /usr/bin/chromium, or $CHROMIUM; scripts/ensure_chromium.sh installs it) driven
by Playwright, and saves one PNG per page. It stops with exit status 1 and the page's name on an
HTTP error status or a browser console error, so a broken page is never saved as documentation.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The same flags and viewport as tests/test_serve_browser.py.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 60_000  # the Datasets page builds a bundled dataset into the cache on first view
CHARTED = ("run", "compare")  # pages whose uPlot chart must be drawn before the shot


class PageError(RuntimeError):
    """A page answered with an HTTP error or logged a browser console error."""


def page_urls(run: str, compare: list[str], dataset: str) -> dict[str, str]:
    """Page name (the PNG's stem) -> path on the dashboard, as routed in tunix_rt/serve/app.py."""
    return {
        "runs": "/",
        "run": f"/runs/{run}",
        "eval": f"/eval/{run}",
        "predictions": f"/eval/{run}#pred-filter",  # the same page, scrolled to the predictions table
        "compare": "/compare?" + urlencode([("run", name) for name in compare]),
        "datasets": "/datasets?" + urlencode({"key": dataset}),
    }


def capture(browser: Any, base_url: str, urls: dict[str, str], out: Path) -> list[Path]:
    """Open each page, fail on an HTTP error or console error, and save it as OUT/NAME.png."""
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, path in urls.items():
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            response = page.goto(base_url + path)
            if response is None or response.status >= 400:
                status = response.status if response is not None else "no response"
                raise PageError(f"{name} page ({path}): HTTP {status}")
            page.wait_for_load_state("load")
            if name in CHARTED:
                page.wait_for_selector(".chart .u-over")  # uPlot drew the chart
            if errors:
                raise PageError(f"{name} page ({path}): browser console error: {'; '.join(errors)}")
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=False)
            saved.append(target)
        finally:
            context.close()
    return saved


def serve(root: Path) -> tuple[Any, threading.Thread, str]:
    """The dashboard for ROOT on a free port, in a daemon thread (as the browser tests start it)."""
    import uvicorn

    from tunix_rt.serve.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start within 30 s")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="directory of runs, as given to `tunix-rt serve`")
    parser.add_argument("--run", required=True, help="run (name under ROOT) for the Run and Evaluation pages")
    parser.add_argument("--compare", required=True, help="comma-separated runs for the Compare page")
    parser.add_argument(
        "--dataset", default="reasoning-mix", help="bundled dataset key for the Datasets page"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="where the PNGs go")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root}: not a directory")
    if not Path(CHROMIUM).is_file():
        parser.error(f"{CHROMIUM} missing: run scripts/ensure_chromium.sh or set CHROMIUM")
    urls = page_urls(args.run, args.compare.split(","), args.dataset)

    from playwright.sync_api import sync_playwright

    server, thread, base_url = serve(args.root)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
            try:
                saved = capture(browser, base_url, urls, args.out)
            finally:
                browser.close()
    except PageError as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
