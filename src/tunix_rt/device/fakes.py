"""Fake machines for tests and docs: GPUs this CPU-only box does not have, answered consistently.

`fake_view()` returns a `MachineView` whose kernel probe either "runs" (plausible numbers) or
raises the error a real build raises. Anything that takes `view=` accepts it; for the CLI,
monkeypatch `tunix_rt.device.doctor.current_view`.
"""

from __future__ import annotations

from typing import Any

from tunix_rt.device.host import NO_DRIVER, CpuInfo, DriverInfo, GpuInfo
from tunix_rt.device.view import MachineView, MatmulRunner

# torch.cuda.get_arch_list() of a PyTorch cu126 wheel: kernels stop at Hopper.
ARCH_LIST_CU126 = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
# ... and of a cu128 wheel, which adds Blackwell.
ARCH_LIST_CU128 = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
# What torch raises when the build has no kernel for the GPU (first line is the fact).
NO_KERNEL_IMAGE = (
    "CUDA error: no kernel image is available for execution on the device\n"
    "CUDA kernel errors might be asynchronously reported at some other API call, "
    "so the stacktrace below might be incorrect.\n"
    "For debugging consider passing CUDA_LAUNCH_BLOCKING=1"
)

RTX_5090 = GpuInfo(0, "NVIDIA GeForce RTX 5090", "sm_120", (12, 0), 32607, 31890)
H100 = GpuInfo(0, "NVIDIA H100 80GB HBM3", "sm_90", (9, 0), 81559, 80995)
RTX_4090 = GpuInfo(0, "NVIDIA GeForce RTX 4090", "sm_89", (8, 9), 24564, 24080)
DRIVER_570 = DriverInfo("570.124.06", "12.8", "nvidia-smi", (RTX_5090,))
FAKE_CPU = CpuInfo("Fake Xeon with AMX", 2, True, True, 24.0)


def fake_runner(error: str | None = None, rel_error: float = 1e-4) -> MatmulRunner:
    """A probe runner: raises RuntimeError(error) if given, else returns plausible numbers."""

    def run(device: str, dtype: str, size: int) -> dict[str, Any]:
        if error:
            raise RuntimeError(error)
        seconds = 2 * size**3 / 50e12  # as if 50 TFLOP/s
        return {
            "device": device,
            "dtype": dtype,
            "size": size,
            "seconds": seconds,
            "gflops": 50000.0,
            "gflops_size": 4096,
            "max_rel_error": rel_error,
            "tolerance": 3e-2,
            "memory_allocated_mb": 0.8,
        }

    return run


def fake_view(
    gpus: tuple[GpuInfo, ...] = (RTX_5090,),
    arch_list: tuple[str, ...] = ARCH_LIST_CU126,
    *,
    build: str = "cuda",
    cuda: str | None = "12.6",
    driver: DriverInfo | None = None,
    probe_error: str | None = None,
    rel_error: float = 1e-4,
    cpu: CpuInfo = FAKE_CPU,
    mps: bool = False,
    torch_version: str | None = None,
) -> MachineView:
    gpu_build = build in ("cuda", "rocm")
    if driver is None:
        driver = DriverInfo("570.124.06", "12.8", "nvidia-smi", gpus) if gpus else NO_DRIVER
    return MachineView(
        torch_version=torch_version
        or (f"2.7.0+cu{cuda.replace('.', '')}" if cuda and gpu_build else "2.7.0+cpu"),
        build=build,
        cuda=cuda if build == "cuda" else None,
        hip=None,
        cudnn="90100" if gpu_build else None,
        arch_list=arch_list if gpu_build else (),
        cuda_available=gpu_build and bool(gpus) and driver.source != "none",
        gpus=gpus if gpu_build and driver.source != "none" else (),
        mps_available=mps,
        driver=driver,
        cpu=cpu,
        run_matmul=fake_runner(probe_error, rel_error),
    )
