"""Under torchrun a rank asks torch about its own GPU (LOCAL_RANK) and no other; doctor sees them all.

This CPU box has no GPU: torch.cuda is replaced, from outside, by a fake two-H100 machine that
records which GPU indices were touched (a CUDA context is created on each index that is asked for
its free memory or RNG state).
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from helpers_train import scratch_config
from tunix_rt.config import Config
from tunix_rt.device import fakes, probe
from tunix_rt.device.view import current_view
from tunix_rt.train.checkpoint import capture_rng_state, restore_rng_state
from tunix_rt.train.distributed import DistContext
from tunix_rt.train.runtime import resolve_run_device

GPUS = (fakes.H100, replace(fakes.H100, index=1))


@pytest.fixture
def touched(monkeypatch) -> list[tuple[str, int]]:
    """A fake CUDA build with two H100s; the list collects (call, GPU index) for each per-GPU query."""
    calls: list[tuple[str, int]] = []

    def per_gpu(name: str, result: Any) -> Any:
        def call(index: int) -> Any:
            calls.append((name, index))
            return result(index)

        return call

    def properties(index: int) -> SimpleNamespace:
        gpu = GPUS[index]
        return SimpleNamespace(name=gpu.name, major=9, minor=0, total_memory=gpu.memory_total_mb * 2**20)

    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(GPUS))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(fakes.ARCH_LIST_CU126))
    monkeypatch.setattr(torch.cuda, "get_device_properties", per_gpu("properties", properties))
    monkeypatch.setattr(torch.cuda, "mem_get_info", per_gpu("mem_get_info", lambda i: (2**30, 2**31)))
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: False)
    # The kernel probe "runs" on whichever device it is given, and says which.
    runner = fakes.fake_runner()
    monkeypatch.setattr(
        probe,
        "matmul_probe",
        lambda device, dtype, size: calls.append(("probe", int(device[5:]))) or runner(device, dtype, size),
    )
    return calls


def test_one_process_and_doctor_see_every_gpu(touched) -> None:
    view = current_view()
    assert [g.index for g in view.gpus] == [0, 1]
    assert {index for _, index in touched} == {0, 1}


def test_a_torchrun_rank_asks_torch_about_its_own_gpu_only(touched, monkeypatch) -> None:
    joined: list[str] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: joined.append(str(device)))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: joined.append(backend))
    rank1 = DistContext(rank=1, world_size=2, local_rank=1)

    dev = resolve_run_device(rank1, "auto", Config.model_validate(scratch_config()))

    assert dev.choice.device == "cuda:1" and dev.choice.probe is not None
    assert touched and {index for _, index in touched} == {1}, touched  # properties, free memory, probe
    assert ("probe", 1) in touched
    assert joined == ["cuda:1", "nccl"]


def test_a_rank_saves_and_restores_the_rng_state_of_its_own_gpu_only(monkeypatch) -> None:
    touched: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(
        torch.cuda,
        "get_rng_state",
        lambda device="cuda": touched.append(f"get {device}") or torch.zeros(8, dtype=torch.uint8),
    )
    monkeypatch.setattr(
        torch.cuda,
        "set_rng_state",
        lambda state, device="cuda": touched.append(f"set {device} {int(state[0])}"),
    )
    for name in ("get_rng_state_all", "set_rng_state_all"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, name=name: pytest.fail(f"{name} touches every GPU"))

    state = capture_rng_state()
    restore_rng_state(state)
    # A checkpoint from before, with one state per GPU: this rank takes its own (index 1).
    restore_rng_state(
        {**state, "cuda": [torch.zeros(8, dtype=torch.uint8), torch.ones(8, dtype=torch.uint8)]}
    )

    assert touched == ["get cuda", "set cuda 0", "set cuda 1"]
