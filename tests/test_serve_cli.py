"""`tunix-rt serve` as a user starts it, and the ROOT boundary on its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers_runs import make_run
from tunix_rt.cli import build_parser
from tunix_rt.serve.safepath import OutsideRoot, resolve_under

SRC = Path(__file__).resolve().parents[1] / "src"


def test_serve_binds_to_localhost_unless_told_otherwise() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.root, args.host, args.port) == ("runs", "127.0.0.1", 8000)


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/../../x", "/etc/passwd", "a/../..", "\x00", "C:\\x", "./../../etc"]
)
def test_resolve_under_refuses_names_that_leave_root(tmp_path, name) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(OutsideRoot):
        resolve_under(tmp_path, name)


def test_resolve_under_follows_symlinks_before_deciding(tmp_path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    os.symlink(root / "a", root / "inside-link")
    (root / "a").mkdir()
    with pytest.raises(OutsideRoot):
        resolve_under(root, "link")
    assert resolve_under(root, "inside-link") == (root / "a").resolve()
    assert resolve_under(root, "a/../a") == (root / "a").resolve()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_serve_command_serves_runs_on_localhost(tmp_path) -> None:
    make_run(tmp_path, "exp1", correct={"a": True, "b": False})
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunix_rt", "serve", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5) as response:
                    rows = json.loads(response.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "tunix-rt serve did not answer within 60 s"
                time.sleep(0.2)
        assert [r["name"] for r in rows] == ["exp1"] and rows[0]["score"] == 0.5
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"at http://127.0.0.1:{port}/ (read-only" in out
