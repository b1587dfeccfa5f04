"""torchrun on CPU (gloo): 2 ranks equal 1 process with the global batch; resume; FSDP2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers_train import read_metrics, read_weights, scratch_config, write_traces

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")

# A constant schedule makes "stop at 3, resume to 6" comparable with one run of 6 steps.
COMMON = {"max_steps": 6, "lr_scheduler": "constant", "warmup_steps": 0, "save_every_steps": 3}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    write_traces(root / "d.jsonl", n=44)  # 44 = 5 full global batches of 8 + a short one of 4
    for batch in (4, 8):
        (root / f"b{batch}.yaml").write_text(yaml.safe_dump(scratch_config(batch_size=batch, **COMMON)))
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunix_rt",
            "train",
            "--config",
            str(root / "b8.yaml"),
            "--dataset",
            str(root / "d.jsonl"),
            "--output",
            str(root / "single"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    return root


def torchrun(work: Path, output: str, *extra: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunix_rt",
            "train",
            "--nproc",
            "2",
            "--config",
            str(work / "b4.yaml"),
            "--dataset",
            str(work / "d.jsonl"),
            "--output",
            str(work / output),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def losses(run_dir: Path) -> list[float]:
    return [m["loss"] for m in read_metrics(run_dir)]


def test_two_ranks_of_4_equal_one_process_of_8(work) -> None:
    torchrun(work, "ddp")
    assert [m["step"] for m in read_metrics(work / "ddp")] == list(range(1, 7))  # rank 0 logs, once
    assert losses(work / "ddp") == pytest.approx(losses(work / "single"), rel=1e-4)
    manifest = json.loads((work / "ddp/run_manifest.json").read_text())
    assert manifest["device"]["world_size"] == 2 and manifest["device"]["rank_devices"] == ["cpu", "cpu"]
    assert manifest["status"] == "completed"
    for name, tensor in read_weights(work / "single").items():
        torch.testing.assert_close(read_weights(work / "ddp")[name], tensor, atol=1e-4, rtol=1e-4)


def test_resume_under_torchrun(work) -> None:
    torchrun(work, "resumed", "--set", "training.max_steps=3")
    torchrun(work, "resumed", "--resume")
    assert [m["step"] for m in read_metrics(work / "resumed")] == list(range(1, 7))
    assert losses(work / "resumed") == pytest.approx(losses(work / "single"), rel=1e-4)


def test_fsdp_trains_alike_and_saves_a_consolidated_model(work) -> None:
    from transformers import AutoModelForCausalLM

    torchrun(work, "fsdp", "--set", "training.strategy=fsdp")
    assert losses(work / "fsdp") == pytest.approx(losses(work / "single"), rel=1e-4)
    model = AutoModelForCausalLM.from_pretrained(work / "fsdp/final_model")  # a plain HF directory
    assert sum(p.numel() for p in model.parameters()) > 0
    assert (work / "fsdp/checkpoints/step-00000003/model.safetensors").is_file()


def test_resume_with_another_number_of_processes_is_refused(work) -> None:
    import shutil

    shutil.copytree(work / "single", work / "single-copy")
    result = subprocess.run(
        [sys.executable, "-m", "tunix_rt", "train", "--nproc", "2", "--config", str(work / "b8.yaml"),
         "--dataset", str(work / "d.jsonl"), "--output", str(work / "single-copy"), "--resume"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0
    assert "world_size: 1 -> 2" in result.stderr
