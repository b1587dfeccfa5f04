"""`runs compare`: config diff, summary deltas, per-item flips, the loss-curve PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers_runs import make_run
from tunix_rt.cli import main
from tunix_rt.config import diff_configs
from tunix_rt.errors import RunDirError
from tunix_rt.runs import compare as compare_module
from tunix_rt.runs.compare import compare_runs, config_diff


def test_config_diff() -> None:
    diff = config_diff({"t": {"lr": 1, "same": 2}}, {"t": {"lr": 3, "same": 2, "new": True}})
    assert diff == [{"key": "t.lr", "a": 1, "b": 3}, {"key": "t.new", "a": None, "b": True}]


def test_config_diff_is_config_py_s_diff() -> None:
    # One flatten/diff in the project: compare shows the keys exactly as resume's config check
    # names them (config.py keeps a `provenance` section whole rather than one key per leaf).
    a = {"training": {"lr": 1, "max_steps": 5}, "provenance": {"original": {"lr": 1}}}
    b = {"training": {"lr": 2, "max_steps": 5}, "provenance": {"original": {"lr": 2}}}
    rows = config_diff(a, b)
    assert {row["key"]: (row["a"], row["b"]) for row in rows} == diff_configs(a, b)
    assert [row["key"] for row in rows] == ["provenance", "training.lr"]
    assert not hasattr(compare_module, "flatten")


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a = make_run(
        tmp_path, "a", lr=3e-4, final_loss=1.0, correct={"x": True, "y": False, "z": True, "only_a": True}
    )
    b = make_run(
        tmp_path, "b", lr=1e-3, final_loss=0.5, correct={"x": False, "y": True, "z": True, "only_b": False}
    )
    return a, b


def test_compare(pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = pair
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    result = compare_runs(a, b)
    assert result["config_diff"] == [{"key": "training.lr", "a": 3e-4, "b": 1e-3}]
    assert result["summary"]["final_loss"] == {"a": 1.0, "b": 0.5, "delta": -0.5}
    assert result["summary"]["primary_score"] == {"a": 0.75, "b": 0.5, "delta": -0.25}
    assert result["summary"]["tokens_per_sec"]["delta"] == 0.0
    flips = result["flips"]
    assert flips["right_in_a_wrong_in_b"] == ["x"] and flips["wrong_in_a_right_in_b"] == ["y"]
    assert (flips["compared"], flips["only_in_a"], flips["only_in_b"]) == (3, 1, 1)
    png = Path(result["plot"])
    assert png == tmp_path / "cwd" / "compare_a_vs_b.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(a.glob("compare_*")) and not list(b.glob("compare_*"))  # the runs stay untouched


def test_a_prediction_holding_a_line_separator_is_read_whole(tmp_path: Path) -> None:
    from tunix_rt.runs.rundir import read_predictions

    run = make_run(tmp_path, "a", correct={"x": True})
    rows = [
        {"id": "x", "correct": True, "generation": "first\u2028second\u0085third"},
        {"id": "y", "correct": False},
    ]
    (run / "eval/predictions.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    predictions = read_predictions(run)
    assert sorted(predictions) == ["x", "y"]
    assert predictions["x"]["generation"] == "first\u2028second\u0085third"


def test_compare_tolerates_missing_pieces(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", score=None)
    bare = tmp_path / "bare"
    bare.mkdir()
    result = compare_runs(a, bare, plot=tmp_path / "plots" / "x.png")
    assert result["summary"]["final_loss"] == {"a": 1.0, "b": None, "delta": None}
    assert result["flips"]["compared"] == 0
    assert result["plot"] == str(tmp_path / "plots" / "x.png")
    assert "run_manifest.json: missing" in result["problems"]["b"]
    with pytest.raises(RunDirError):
        compare_runs(a, tmp_path / "nope")


def test_cli(
    pair: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = pair
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["runs", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "training.lr" in out and "right in A, wrong in B: 1  (x)" in out and "-0.5" in out
    assert f"loss curves: {here / 'compare_a_vs_b.png'}" in out and (here / "compare_a_vs_b.png").is_file()
    assert not list(a.glob("*.png"))  # nothing written into run A
    plots = tmp_path / "plots"
    plots.mkdir()
    assert main(["runs", "compare", str(a), str(b), "--json", "-o", str(plots)]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(plots / "compare_a_vs_b.png")
    plot = tmp_path / "cmp.png"
    assert main(["runs", "compare", str(a), str(b), "--json", "--plot", str(plot)]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(plot) and plot.is_file()
