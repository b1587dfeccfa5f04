"""training.report_to (train/trackers.py): TensorBoard events hold what metrics.jsonl holds; a missing
package is refused before training and by --dry-run, with the command that installs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers_train import metric_series, scratch_config, tensorboard_scalars, write_traces
from tunix_rt.cli import main
from tunix_rt.config import load_config
from tunix_rt.errors import ConfigError
from tunix_rt.recipes.grpo import plan_problems
from tunix_rt.train import checkpoint as ckpt
from tunix_rt.train.trackers import TRACKERS, scalars

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_traces(tmp_path_factory.mktemp("data") / "traces.jsonl", n=24)


def train(tmp_path: Path, dataset: Path, config: dict, out: Path, *extra: str) -> int:
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return main(["train", "--config", str(path), "--dataset", str(dataset), "--output", str(out), *extra])


def assert_same_series(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [step for step, _ in got] == [step for step, _ in expected]
    # Event files store float32.
    assert [value for _, value in got] == pytest.approx([value for _, value in expected], rel=1e-6)


# --- the config key ------------------------------------------------------------------------------


def test_report_to_is_validated_like_every_key() -> None:
    base = scratch_config()
    assert load_config(base)[0].training.report_to == []
    assert "report_to" not in load_config(base)[0].to_dict()["training"]  # old configs hash the same
    assert load_config(base, ["training.report_to=tensorboard"])[0].training.report_to == ["tensorboard"]
    both, _ = load_config(base, ["training.report_to=[trackio, tensorboard, trackio]"])
    assert both.training.report_to == ["trackio", "tensorboard"]
    assert both.to_dict()["training"]["report_to"] == ["trackio", "tensorboard"]
    with pytest.raises(ConfigError) as err:
        load_config(base, ["training.report_to=[tensorboard, wandb]"])
    assert "training.report_to.1: Input should be 'tensorboard' or 'trackio' (got 'wandb')" in str(err.value)
    assert set(TRACKERS) == {"tensorboard", "trackio"}  # the names the config accepts, each with a writer


def test_scalars_keep_the_numbers_of_a_line() -> None:
    line = {"step": 3, "loss": 1.5, "tokens": 120, "mfu": None, "eval_set": "x", "flag": True}
    assert scalars(line) == {"loss": 1.5, "tokens": 120.0}


# --- TensorBoard: the same numbers as metrics.jsonl --------------------------------------------


def test_tensorboard_events_hold_the_metrics_jsonl_values(dataset, tmp_path) -> None:
    pytest.importorskip("tensorboard")  # in the dev extra; the refusal below covers its absence
    out = tmp_path / "run"
    config = scratch_config(max_steps=5, report_to=["tensorboard"], eval_steps=2)
    config["data"] = {"validation": 0.25}
    assert train(tmp_path, dataset, config, out) == 0
    got = tensorboard_scalars(out)
    assert len(metric_series(out, "loss")) == 5
    for key in ("loss", "lr", "grad_norm", "tokens_per_sec", "validation_loss"):
        assert_same_series(got[key], metric_series(out, key))
    assert "metrics also go to: tensorboard" in (out / "training_log.txt").read_text()


def test_a_resume_redoes_steps_once_in_tensorboard(dataset, tmp_path, monkeypatch) -> None:
    """Steps logged after the checkpoint a resume starts from are dropped from metrics.jsonl and
    redone; TensorBoard shows each step once, with the redone values."""
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    config = scratch_config(max_steps=6, report_to=["tensorboard"], save_every_steps=2)
    real_save = ckpt.save_checkpoint

    class Killed(BaseException):
        pass

    def save_then_die(run_dir, **kwargs):
        path = real_save(run_dir, **kwargs)
        if kwargs["state"]["step"] == 4:
            raise Killed
        return path

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train(tmp_path, dataset, config, out)
    monkeypatch.undo()
    # As if the process had died before checkpoint 4 was written: steps 3 and 4 are redone.
    latest = ckpt.latest_checkpoint(out)
    assert latest is not None and latest.name.endswith("4")
    shutil.rmtree(latest)
    assert train(tmp_path, dataset, config, out, "--resume") == 0
    assert [step for step, _ in metric_series(out, "loss")] == [1, 2, 3, 4, 5, 6]
    assert_same_series(tensorboard_scalars(out)["loss"], metric_series(out, "loss"))


# --- a missing package: refused before training, and by --dry-run ---------------------------


@pytest.mark.parametrize("name", ["tensorboard", "trackio"])
def test_a_missing_tracker_package_is_refused_before_training(name, dataset, tmp_path, monkeypatch, capsys):
    # None in sys.modules is how Python itself marks a module that cannot be imported.
    monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "run"
    assert train(tmp_path, dataset, scratch_config(report_to=[name]), out) == 2
    error = capsys.readouterr().err
    requirement = TRACKERS[name].requirement
    assert f"training.report_to lists '{name}', but the {name} package is not installed" in error
    assert f"pip install '{requirement}' (the extra tunix-rt[{name}])" in error
    assert not out.exists()  # nothing started, nothing written


def test_dry_run_lists_the_missing_tracker_as_a_blocker(dataset, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    out = tmp_path / "run"
    assert train(tmp_path, dataset, scratch_config(report_to=["tensorboard"]), out, "--dry-run") == 2
    text = capsys.readouterr().out
    assert "ready to train here: no (1 blocker)" in text
    assert "blocker: training.report_to lists 'tensorboard'" in text
    assert "pip install 'tensorboard>=1.15'" in text
    assert not out.exists()


def test_grpo_plan_problems_name_a_missing_tracker(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "trackio", None)
    cfg, _ = load_config(
        {"model": {"model_id": "some/model"}, "method": "grpo", "training": {"report_to": ["trackio"]}}
    )
    (problem,) = plan_problems(cfg, world_size=1)
    assert (
        problem.startswith("training.report_to lists 'trackio'") and "pip install 'trackio>=0.43'" in problem
    )


def test_the_extras_in_pyproject_match_the_refusal() -> None:
    import tomllib

    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    for name, tracker in TRACKERS.items():
        assert extras[name] == [tracker.requirement]
    assert TRACKERS["tensorboard"].requirement in extras["dev"]


# --- trackio: run only where it is installed (not in dev: it pins pillow<13) ------------------


def test_trackio_gets_the_metrics_in_the_run_directory_not_the_cache(dataset, tmp_path) -> None:
    pytest.importorskip("trackio")
    out, home = tmp_path / "run", tmp_path / "home"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(scratch_config(max_steps=4, report_to=["trackio"])))
    # Its own process: trackio reads its storage directory once, at import. HF_HOME and HOME point
    # at an empty directory so a write to trackio's default place would show.
    env = {**os.environ, "HF_HOME": str(home / "hf"), "HOME": str(home), "PYTHONPATH": str(SRC)}
    env.pop("TRACKIO_DIR", None)
    command = [sys.executable, "-m", "tunix_rt", "train", "--config", str(config), "--dataset", str(dataset)]
    subprocess.run([*command, "--output", str(out)], env=env, check=True, capture_output=True, timeout=300)
    read = (
        "import json, sys; from trackio.sqlite_storage import SQLiteStorage; "
        "print(json.dumps(SQLiteStorage.get_logs('tunix-rt', sys.argv[1])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", read, out.name],
        env={**env, "TRACKIO_DIR": str(out / "trackio")},
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = json.loads(result.stdout.strip().splitlines()[-1])
    expected = metric_series(out, "loss")
    assert [(row["step"], row["loss"]) for row in logs] == [(s, pytest.approx(v)) for s, v in expected]
    assert list((out / "trackio").glob("*.db"))
    # Nothing of trackio's in its default place ($HF_HOME/trackio) or anywhere else under HOME
    # (matplotlib's font cache, written for the loss curve, is there).
    assert not [p for p in home.rglob("*") if "trackio" in p.name]
