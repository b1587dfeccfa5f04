"""`report`: README.md with headline figures, the reproduce command, loss curve and scorecard."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_runs import make_run
from tunix_rt.cli import main
from tunix_rt.errors import RunDirError
from tunix_rt.runs.report import write_run_readme


def test_report_of_an_evaluated_run(tmp_path: Path) -> None:
    run = make_run(tmp_path, "good", correct={"x": True, "y": False})
    path = write_run_readme(run)
    text = path.read_text()
    assert path == run / "README.md"
    assert "# Run id-good" in text
    assert "| final loss | 1 |" in text and "| answer accuracy | 50.0% |" in text
    assert f"tunix-rt train --config c.yaml --set training.lr=0.0003 -o {run}" in text
    assert "![loss curve](loss_curve.png)" in text and (run / "loss_curve.png").is_file()
    assert "| core | 50.0% | 1 / 2 |" in text
    assert "[`eval/predictions.jsonl`](eval/predictions.jsonl)" in text
    assert "| `final_model` |" in text  # listed, marked absent


def test_report_of_a_failed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path, "failed", score=None, final_loss=None, status="failed")
    (run / "metrics.jsonl").unlink()
    assert main(["report", str(run)]) == 0
    assert str(run / "README.md") in capsys.readouterr().out
    text = (run / "README.md").read_text()
    assert "| status | failed |" in text and "| answer accuracy | - |" in text
    assert "not evaluated" in text and "no loss recorded" in text
    with pytest.raises(RunDirError):
        write_run_readme(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    assert main(["report", str(tmp_path / "plain")]) == 2
