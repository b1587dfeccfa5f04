"""`tunix-rt train` from the command line: refusals before any work, and --dry-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers_train import REFERENCE, scratch_config, write_traces
from tunix_rt.cli import main

REFERENCE_CONFIGS = sorted((REFERENCE / "configs").glob("*.yaml")) if (REFERENCE / "configs").is_dir() else []
ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIGS = sorted((ROOT / "configs").glob("*.yaml")) + sorted(
    (ROOT / "src/tunix_rt/configs").glob("*.yaml")
)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(scratch_config(max_steps=2)))
    return path


def test_cuda_is_refused_on_this_machine_before_anything_is_written(config_file, tmp_path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU")
    data = write_traces(tmp_path / "d.jsonl", n=8)
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--config",
            str(config_file),
            "--dataset",
            str(data),
            "--output",
            str(out),
            "--device",
            "cuda",
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "cuda" in err.lower() and "error:" in err
    assert not out.exists()  # refused before the run directory (or a model) existed


def test_config_device_cuda_is_refused_too(tmp_path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(scratch_config(max_steps=2, device="cuda")))
    code = main(
        [
            "train",
            "--config",
            str(path),
            "--dataset",
            str(write_traces(tmp_path / "d.jsonl", n=8)),
            "--output",
            str(tmp_path / "run"),
        ]
    )
    assert code != 0 and not (tmp_path / "run").exists()


def test_missing_dataset_is_a_clear_error(config_file, tmp_path, capsys) -> None:
    assert main(["train", "--config", str(config_file), "--output", str(tmp_path / "r")]) == 2
    assert "no dataset" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--config",
                str(config_file),
                "--dataset",
                "no-such-key",
                "--output",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "no-such-key" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_trains_nothing(config_file, tmp_path, capsys) -> None:
    data = write_traces(tmp_path / "d.jsonl", n=20)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(config_file),
                "--dataset",
                str(data),
                "--output",
                str(out),
                "--dry-run",
                "--set",
                "training.batch_size=2",
                "--set",
                "training.gradient_accumulation_steps=3",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "20 traces" in text and "effective batch 6" in text and "ready to train here: yes" in text
    assert "tokens:" in text and "steps: 2" in text
    assert not out.exists()


@pytest.mark.skipif(not REFERENCE_CONFIGS, reason="shared/reference not beside the checkout")
@pytest.mark.parametrize("config", REFERENCE_CONFIGS, ids=lambda p: p.name)
def test_dry_run_accepts_every_reference_config(config, tmp_path, capsys, monkeypatch) -> None:
    # Offline by construction: hub models must be reported as unavailable, never a traceback.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(
        [
            "train",
            "--config",
            str(config),
            "--dataset",
            str(REFERENCE / "dev-reasoning-v2.jsonl"),
            "--output",
            str(tmp_path / "run"),
            "--dry-run",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.out + captured.err
    assert f"config: {config}" in captured.out and "550 traces" in captured.out
    assert "not in the local Hugging Face cache" in captured.out  # every reference model is a hub id
    raw = yaml.safe_load(config.read_text())
    if raw.get("training", {}).get("device") in {"cuda", "tpu"}:
        assert "blocker: device" in captured.out


def test_train_under_a_faked_rtx_5090_refuses_naming_sm_120(
    config_file, tmp_path, capsys, monkeypatch
) -> None:
    """The original's lost milestone: is_available() says True, but the build has no sm_120 kernels."""
    from tunix_rt.device import fakes, preflight
    from tunix_rt.recipes import sft

    monkeypatch.setattr(
        preflight, "current_view", lambda: fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU126)
    )

    def no_model_loading(*args, **kwargs):
        raise AssertionError("a model was loaded although the device was refused")

    monkeypatch.setattr(sft, "load_pretrained", no_model_loading)
    monkeypatch.setattr(sft, "build_scratch_model", no_model_loading)
    data = write_traces(tmp_path / "d.jsonl", n=8)
    code = main(
        [
            "train",
            "--config",
            str(config_file),
            "--dataset",
            str(data),
            "--output",
            str(tmp_path / "run"),
            "--device",
            "cuda",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "sm_120" in err and "cu128" in err
    assert not (tmp_path / "run").exists()


def test_flash_attention_on_cpu_is_a_named_blocker_not_a_crash(config_file, tmp_path, capsys) -> None:
    data = write_traces(tmp_path / "d.jsonl", n=8)
    args = ["train", "--config", str(config_file), "--dataset", str(data), "--output", str(tmp_path / "run"),
            "--set", "model.attn_implementation=flash_attention_2"]  # fmt: skip
    assert main([*args, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "ready to train here: no" in text
    assert "flash_attention_2 runs on CUDA GPUs only" in text
    # Training refuses the same way, before a model is built or a run directory is filled.
    assert main(args) != 0
    assert "flash_attention_2 runs on CUDA GPUs only" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_flash_attention_without_the_package_names_the_install() -> None:
    from tunix_rt.errors import ModelError
    from tunix_rt.train.model import attention_for

    with pytest.raises(ModelError, match="pip install flash-attn"):
        attention_for("flash_attention_2", "cuda")  # flash-attn is not installed on this machine
    assert attention_for("auto", "cpu") == "eager" and attention_for("auto", "cuda") == "sdpa"


TORCHRUN_ENV = ("LOCAL_WORLD_SIZE", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "RANK", "LOCAL_RANK")


@pytest.mark.parametrize(
    ("env", "launcher"),
    [
        ({}, ["tunix-rt"]),
        (
            {"LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none"},
            ["torchrun", "--standalone", "--nproc-per-node", "2", "-m", "tunix_rt"],
        ),
        (
            {"LOCAL_WORLD_SIZE": "4", "WORLD_SIZE": "8", "TORCHELASTIC_RUN_ID": "job7"},
            ["torchrun", "--nnodes", "2", "--nproc-per-node", "4", "-m", "tunix_rt"],
        ),
    ],
)
def test_the_recorded_command_reruns_the_same_launch(monkeypatch, env, launcher) -> None:
    from tunix_rt.train import request as command

    for name in (*TORCHRUN_ENV, command.LAUNCH_COMMAND_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = ["train", "--config", "c.yaml", "--output", "runs/x"]
    monkeypatch.setattr("sys.argv", ["/venv/lib/python3.11/site-packages/tunix_rt/__main__.py", *argv])
    assert command.user_command() == [*launcher, *argv]


def test_the_nproc_launcher_records_what_the_user_typed(monkeypatch) -> None:
    """torchrun children started by `--nproc` carry the user's command; it wins over torchrun's env."""
    import json

    from tunix_rt.train import request as command

    typed = ["tunix-rt", "train", "--nproc", "2", "--config", "c.yaml", "--output", "runs/x"]
    monkeypatch.setenv(command.LAUNCH_COMMAND_ENV, json.dumps(typed))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    assert command.user_command() == typed


@pytest.mark.parametrize("config", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_dry_run_accepts_every_shipped_config(config, tmp_path, capsys, monkeypatch) -> None:
    """configs/*.yaml and the bundled ones: valid, and planned offline without a traceback. Hub models
    (the GPU configs, never run on a GPU here) are reported missing; the named SmolLM2 is found."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # a relative model path (runs/cpu-scratch) must not find the checkout's runs/
    data = write_traces(tmp_path / "d.jsonl", n=8)
    code = main(
        [
            "train",
            "--config",
            str(config),
            "--dataset",
            str(data),
            "--output",
            str(tmp_path / "run"),
            "--dry-run",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.out + captured.err and f"config: {config} (valid)" in captured.out
    raw = yaml.safe_load(config.read_text())
    model_id = raw.get("model", {}).get("model_id")
    if model_id == "smollm2-135m-instruct":
        assert "ready to train here: yes" in captured.out and "tokens:" in captured.out
    elif model_id:
        assert "not in the local Hugging Face cache" in captured.out
    if raw.get("training", {}).get("device") == "cuda":
        assert "blocker: device" in captured.out
