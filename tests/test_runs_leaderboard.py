"""`runs list`: discovery one and two levels deep, sorting with missing values last, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers_runs import make_run
from tunix_rt.cli import main
from tunix_rt.errors import RunDirError
from tunix_rt.runs.leaderboard import leaderboard


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    make_run(tmp_path, "a", score=0.25, final_loss=0.9, created_at="2026-01-01T10:00:00+00:00")
    make_run(tmp_path, "b", score=0.75, final_loss=1.1, correct={"x": True, "y": True, "z": False, "w": True})
    make_run(tmp_path / "sweep", "c", score=None, final_loss=None, status="failed")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run_manifest.json").write_text("{torn")
    (tmp_path / "not-a-run").mkdir()
    return tmp_path


def test_default_sort_is_score_desc_missing_last(root: Path) -> None:
    rows = leaderboard(root)
    assert [r["run"] for r in rows] == ["b", "a", "broken", "sweep/c"]
    assert rows[0]["primary_score"] == 0.75  # from eval/eval_summary.json
    assert rows[1]["primary_score"] == 0.25  # from the manifest's eval headline
    assert rows[2]["status"] == "unreadable manifest" and rows[2]["model"] is None
    assert rows[3]["status"] == "failed" and rows[3]["final_loss"] is None


def test_other_sorts(root: Path) -> None:
    assert [r["run"] for r in leaderboard(root, "final_loss")][:2] == ["a", "b"]
    assert [r["run"] for r in leaderboard(root, "run")] == ["a", "b", "broken", "sweep/c"]
    with pytest.raises(RunDirError, match="cannot sort by 'nope'"):
        leaderboard(root, "nope")
    with pytest.raises(RunDirError, match="no such directory"):
        leaderboard(root / "missing")


def test_cli_table_and_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", str(root)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "run",
        "model",
        "dataset",
        "eval_set",
        "steps",
        "final_loss",
        "primary_score",
        "date",
        "status",
    ]
    assert table[1].split()[0] == "b" and "0.750" in table[1]
    assert "-" in table[-1].split()  # missing values print as "-"
    assert main(["runs", "list", str(root), "--json", "--sort", "steps"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and rows[0]["steps"] == 10
    assert main(["runs", "list", str(root / "not-a-run")]) == 0
    assert "no runs under" in capsys.readouterr().out


def test_scratch_model_label(tmp_path: Path) -> None:
    run = make_run(tmp_path, "s")
    manifest = json.loads((run / "run_manifest.json").read_text())
    manifest["model"] = {
        "id": None,
        "init": "scratch",
        "architecture": "LlamaForCausalLM",
        "parameters": 4_458_752,
    }
    manifest["dataset"]["spec"] = "reasoning-mix:2000"
    (run / "run_manifest.json").write_text(json.dumps(manifest))
    (row,) = leaderboard(tmp_path)
    assert (row["model"], row["dataset"]) == ("scratch-llama-4.5M", "reasoning-mix:2000")


def _rescore(run: Path, spec: str, n_items: int = 4, n_available: int | None = None) -> None:
    """Point a fabricated run's eval summary at another eval set."""
    path = run / "eval" / "eval_summary.json"
    summary = json.loads(path.read_text())
    summary["eval_set"] = {"spec": spec, "n_items": n_items, "n_available": n_available or n_items}
    path.write_text(json.dumps(summary))


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    # The best score is on the easy set; it must never rank above a run on the hard set.
    for name, correct, spec in [
        ("easy-a", {"x": True, "y": True, "z": True, "w": True}, "reasoning-mix-heldout"),
        ("hard-a", {"x": True, "y": False, "z": False, "w": False}, "reasoning-eval-v1"),
        ("easy-b", {"x": True, "y": True, "z": False, "w": False}, "reasoning-mix-heldout"),
        ("hard-b", {"x": True, "y": True, "z": True, "w": False}, "reasoning-eval-v1"),
        ("hard-part", {"x": True, "y": True, "z": True, "w": True}, "reasoning-eval-v1"),
    ]:
        run = make_run(tmp_path, name, correct=correct)
        _rescore(run, spec, n_available=109 if name == "hard-part" else None)
    make_run(tmp_path, "no-eval", score=None)
    return tmp_path


def test_scores_are_ranked_only_within_their_eval_set(mixed: Path) -> None:
    rows = leaderboard(mixed)
    assert [(r["eval_set"], r["run"]) for r in rows] == [
        ("reasoning-eval-v1", "hard-b"),
        ("reasoning-eval-v1", "hard-a"),
        ("reasoning-eval-v1 (first 4 of 109)", "hard-part"),  # a --limit run is another set
        ("reasoning-mix-heldout", "easy-a"),
        ("reasoning-mix-heldout", "easy-b"),
        (None, "no-eval"),
    ]
    only = leaderboard(mixed, eval_set="reasoning-mix-heldout")
    assert [r["run"] for r in only] == ["easy-a", "easy-b"]
    assert [r["run"] for r in leaderboard(mixed, "final_loss")][:2] == ["hard-a", "hard-b"]


def test_cli_separates_eval_sets_and_filters(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", str(mixed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    blocks = "\n".join(lines[1:]).split("\n\n")
    assert [[line.split()[0] for line in block.splitlines()] for block in blocks] == [
        ["hard-b", "hard-a"],
        ["hard-part"],
        ["easy-a", "easy-b"],
        ["no-eval"],
    ]
    assert main(["runs", "list", str(mixed), "--eval-set", "reasoning-eval-v1", "--json"]) == 0
    assert [r["run"] for r in json.loads(capsys.readouterr().out)] == ["hard-b", "hard-a"]
    assert main(["runs", "list", str(mixed), "--eval-set", "nope"]) == 0
    assert "no runs scored on 'nope'" in capsys.readouterr().out
