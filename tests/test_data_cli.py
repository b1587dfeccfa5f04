"""The `tunix-rt data ...` commands through tunix_rt.cli.main, plus the no-torch guarantee."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tunix_rt.cli import main

GOOD = json.dumps(
    {
        "prompt": "What is 1 + 2?",
        "steps": [{"i": 0, "type": "c", "content": "1 + 2 = 3"}],
        "final_answer": "3",
    }
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNIX_RT_CACHE", str(tmp_path / "cache"))


def test_validate_names_broken_line_3(tmp_path, capsys):
    path = tmp_path / "f.jsonl"
    path.write_text(f"{GOOD}\n{GOOD.replace('1 + 2', '2 + 2')}\n{{broken\n")
    assert main(["data", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:3: json: invalid JSON" in out
    assert "1 files, 3 records, 2 valid, 1 invalid, 0 duplicates" in out


def test_validate_json_and_ok_exit(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text(f"{GOOD}\n{GOOD}\n")
    assert main(["data", "validate", str(good), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["records"] == 2 and report["duplicates"] == 1 and report["invalid"] == 0
    assert report["problems"][0]["level"] == "warning"


def test_validate_missing_file_fails(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl: no such file" in capsys.readouterr().out


def test_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for key in ("dev-reasoning-v2", "reasoning-mix", "reasoning-eval-v1", "reasoning-mix-heldout"):
        assert key in out
    assert main(["data", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {d["key"] for d in listed["datasets"]} == {"dev-reasoning-v2", "reasoning-mix"}


def test_build_stats_show(tmp_path, capsys):
    out_dir = tmp_path / "d"
    assert main(["data", "build", "dev-reasoning-v2", "--output", str(out_dir)]) == 0
    assert len((out_dir / "dataset.jsonl").read_text().splitlines()) == 550
    capsys.readouterr()
    assert main(["data", "stats", str(out_dir), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert stats["count"] == 550 and stats["sha256"] == manifest["sha256"]
    assert main(["data", "show", str(out_dir / "dataset.jsonl"), "--n", "2"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("Prompt: ") == 2 and "  1. [" in shown and "Answer: " in shown


def test_build_rejects_size_for_fixed_dataset(tmp_path, capsys):
    assert main(["data", "build", "dev-reasoning-v2", "-o", str(tmp_path / "x"), "--size", "10"]) == 2
    assert "fixed size of 550" in capsys.readouterr().err


def test_stats_of_sized_key(capsys):
    assert main(["data", "stats", "reasoning-mix:300", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 300


def test_data_list_does_not_import_torch():
    code = (
        "import sys, runpy; sys.argv = ['tunix_rt', 'data', 'list']\n"
        "try:\n    runpy.run_module('tunix_rt', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert "reasoning-mix" in result.stdout
