"""resolve_device / choose_dtype / the GPU assessment, on this machine and on faked GPUs."""

import dataclasses

import pytest
import torch

from tunix_rt.device import fakes
from tunix_rt.device.host import DriverInfo
from tunix_rt.device.preflight import (
    DeviceChoice,
    assess_gpu,
    choose_dtype,
    kernel_probe,
    measure_cpu_matmul_peak,
    resolve_device,
)
from tunix_rt.device.probe import matmul_probe
from tunix_rt.device.view import current_view
from tunix_rt.errors import DeviceError

# --- this machine: CPU-only torch build, no driver -------------------------------------------


def test_cuda_on_this_machine_names_the_cpu_only_build():
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda")
    message = str(info.value)
    assert "CPU-only build" in message and torch.__version__ in message
    assert "whl/cu128" in message and "--device cpu" in message


def test_auto_on_this_machine_is_cpu_with_a_reason():
    choice = resolve_device("auto")
    assert (choice.device, choice.type, choice.capability, choice.count) == ("cpu", "cpu", None, 1)
    assert choice.reason.startswith("auto: no usable GPU") and "CPU-only torch build" in choice.reason
    assert choice.bf16 == current_view().cpu.bf16


def test_cpu_requested():
    choice = resolve_device("cpu")
    assert choice.reason == "requested" and choice.probe is None
    assert resolve_device(None).device == "cpu"  # None means auto


@pytest.mark.parametrize("value", ["tpu", "TPU", "tpu:0"])
def test_tpu_is_refused_with_accepted_values(value):
    with pytest.raises(DeviceError, match="no TPU support") as info:
        resolve_device(value)
    assert "auto, cpu, cuda, cuda:N, mps" in str(info.value)


def test_garbage_and_mps_here_are_refused():
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(DeviceError, match="no MPS backend"):
        resolve_device("mps")


# --- faked GPUs -------------------------------------------------------------------------------


def test_cuda_on_a_faked_rtx_5090_under_a_cu126_build_names_sm_120():
    view = fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU126)
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda", view=view)
    message = str(info.value)
    assert "sm_120 (NVIDIA GeForce RTX 5090) is not in this PyTorch build's arch list sm_50…sm_90" in message
    assert "whl/cu128" in message and "570.26" in message
    assert info.value.reason.startswith("cuda:0: sm_120")


def test_auto_skips_the_faked_5090_and_says_so():
    choice = resolve_device("auto", view=fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU126))
    assert choice.device == "cpu"
    assert "cuda:0 skipped" in choice.reason and "sm_120" in choice.reason


def test_rtx_5090_under_a_cu128_build_passes():
    view = fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU128, cuda="12.8")
    choice = resolve_device("cuda", view=view)
    assert (choice.device, choice.capability, choice.bf16, choice.reason) == (
        "cuda:0",
        "sm_120",
        True,
        "requested",
    )
    assert choice.probe["ok"] and choice.probe["dtype"] == "bfloat16"
    auto = resolve_device("auto", view=view)
    assert auto.device == "cuda:0" and auto.reason == "auto: CUDA GPU 0 passed the kernel probe"


@pytest.mark.parametrize("gpu", [fakes.H100, fakes.RTX_4090])
def test_h100_and_4090_under_cu126_are_compatible(gpu):
    a = assess_gpu(gpu, fakes.fake_view((gpu,), fakes.ARCH_LIST_CU126))
    assert a.arch_supported and a.driver_ok and a.compatible and a.remedy is None
    assert a.probe["ok"]


def test_probe_raising_no_kernel_image_makes_the_gpu_incompatible():
    view = fakes.fake_view((fakes.H100,), fakes.ARCH_LIST_CU126, probe_error=fakes.NO_KERNEL_IMAGE)
    a = assess_gpu(fakes.H100, view)
    assert a.arch_supported and not a.compatible
    assert "no kernel image is available for execution on the device" in a.reason
    with pytest.raises(DeviceError, match="no kernel image"):
        resolve_device("cuda:0", view=view)
    assert resolve_device("auto", view=view).device == "cpu"


def test_probe_without_running_the_kernel_when_asked():
    view = fakes.fake_view((fakes.H100,), fakes.ARCH_LIST_CU126, probe_error=fakes.NO_KERNEL_IMAGE)
    choice = resolve_device("auto", view=view, probe=False)
    assert choice.device == "cuda:0" and choice.probe is None
    assert "architecture and driver checks" in choice.reason


def test_probe_with_a_wrong_result_fails():
    view = fakes.fake_view((fakes.H100,), fakes.ARCH_LIST_CU126, rel_error=0.5)
    a = assess_gpu(fakes.H100, view)
    assert not a.compatible and "differs from the CPU" in a.reason


def test_no_driver_gives_a_clean_answer():
    view = fakes.fake_view(
        (fakes.RTX_5090,),
        fakes.ARCH_LIST_CU128,
        driver=DriverInfo(None, None, "none", (), "nvidia-smi not found on PATH"),
    )
    with pytest.raises(DeviceError, match="no NVIDIA GPU/driver"):
        resolve_device("cuda", view=view)
    choice = resolve_device("auto", view=view)
    assert choice.device == "cpu" and "no NVIDIA GPU/driver" in choice.reason


def test_driver_older_than_the_architecture_needs():
    old = DriverInfo("560.35.03", "12.6", "nvml", (fakes.RTX_5090,))
    a = assess_gpu(fakes.RTX_5090, fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU128, driver=old))
    assert a.driver_ok is False and not a.compatible and "570.26" in a.reason and a.probe is None


def test_driver_for_an_older_cuda_major():
    old = DriverInfo("535.54.03", "12.2", "nvml", (fakes.H100,))
    view = dataclasses.replace(fakes.fake_view((fakes.H100,), fakes.ARCH_LIST_CU126, driver=old), cuda="13.0")
    a = assess_gpu(fakes.H100, view)
    assert a.driver_ok is False and "CUDA up to 12.2" in a.reason


def test_index_out_of_range():
    view = fakes.fake_view((fakes.H100,), fakes.ARCH_LIST_CU126)
    with pytest.raises(DeviceError, match=r"cuda:3 requested but only 1 CUDA device\(s\) are visible"):
        resolve_device("cuda:3", view=view)


def test_cpu_build_on_a_machine_whose_driver_sees_a_5090():
    view = fakes.fake_view((fakes.RTX_5090,), build="cpu", driver=fakes.DRIVER_570)
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda", view=view)
    assert "CPU-only build" in str(info.value) and "RTX 5090 (sm_120)" in str(info.value)
    assert "whl/cu128" in info.value.remedy
    assert "the driver sees NVIDIA GeForce RTX 5090" in resolve_device("auto", view=view).reason


# --- dtypes -----------------------------------------------------------------------------------


def _choice(type_: str, bf16: bool) -> DeviceChoice:
    device = {"cpu": "cpu", "cuda": "cuda:0", "mps": "mps"}[type_]
    return DeviceChoice(device, type_, "x", "sm_75" if type_ == "cuda" else None, 1, bf16, "requested", None)


@pytest.mark.parametrize(
    ("type_", "bf16", "requested", "expected"),
    [
        ("cpu", True, "auto", "bfloat16"),
        ("cpu", False, "auto", "float32"),
        ("cuda", True, "auto", "bfloat16"),
        ("cuda", False, "auto", "float16"),
        ("mps", False, "auto", "float32"),
        ("cpu", True, "bf16", "bfloat16"),
        ("cpu", False, "float32", "float32"),
        ("cuda", False, "float16", "float16"),
    ],
)
def test_choose_dtype(type_, bf16, requested, expected):
    assert choose_dtype(_choice(type_, bf16), requested) == expected


@pytest.mark.parametrize(
    ("type_", "bf16", "requested", "match"),
    [
        ("cpu", False, "bfloat16", "no native bf16"),
        ("cuda", False, "bfloat16", "sm_80"),
        ("cpu", True, "float16", "float16 requested on cpu"),
        ("cpu", True, "float64", "unknown dtype"),
    ],
)
def test_choose_dtype_refuses(type_, bf16, requested, match):
    with pytest.raises(DeviceError, match=match):
        choose_dtype(_choice(type_, bf16), requested)


# --- the real probes on this CPU --------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_real_matmul_probe_on_cpu(dtype):
    view = dataclasses.replace(fakes.fake_view(()), run_matmul=matmul_probe)
    result = kernel_probe(view, "cpu", dtype, size=64)
    assert result["ok"], result
    assert result["gflops"] > 0 and result["memory_allocated_mb"] is None


def test_measure_cpu_matmul_peak_is_positive():
    assert measure_cpu_matmul_peak("float32", size=128, repeats=1) > 0
    assert measure_cpu_matmul_peak(torch.bfloat16, size=128, repeats=1) > 0


def test_measuring_the_cpu_peak_leaves_the_global_rng_alone() -> None:
    # The peak is measured inside training runs (for MFU), after the run's seed is set.
    state = torch.random.get_rng_state()
    measure_cpu_matmul_peak("float32", size=64, repeats=1)
    assert torch.equal(torch.random.get_rng_state(), state)
