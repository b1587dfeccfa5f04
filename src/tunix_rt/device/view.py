"""The single seam between tunix_rt.device and the machine: a snapshot of torch, driver and CPU.

Every decision in preflight/doctor reads a `MachineView`; `current_view()` builds the real one.
Tests build a fake one (an RTX 5090 under a build that stops at sm_90, a probe that raises
"no kernel image ...") instead of monkeypatching torch internals.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunix_rt.device.capability import format_sm
from tunix_rt.device.host import CpuInfo, DriverInfo, GpuInfo, query_driver, read_cpu_info

# (device, dtype, size) -> probe numbers; raises when the kernel cannot run.
MatmulRunner = Callable[[str, str, int], dict[str, Any]]


@dataclass(frozen=True)
class MachineView:
    torch_version: str
    build: str  # "cpu" | "cuda" | "rocm" | "mps"
    cuda: str | None  # CUDA runtime the build was compiled against
    hip: str | None
    cudnn: str | None
    arch_list: tuple[str, ...]  # torch.cuda.get_arch_list()
    cuda_available: bool
    gpus: tuple[GpuInfo, ...]  # what torch can see (CUDA_VISIBLE_DEVICES applies)
    mps_available: bool
    driver: DriverInfo
    cpu: CpuInfo
    run_matmul: MatmulRunner
    warnings: tuple[str, ...] = field(default_factory=tuple)  # what torch warned while we asked


def _build_kind(torch: Any) -> str:
    if getattr(torch.version, "hip", None):
        return "rocm"
    if torch.version.cuda:
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_built():
        return "mps"
    return "cpu"


def _torch_gpus(torch: Any, rocm: bool, only: int | None = None) -> tuple[GpuInfo, ...]:
    gpus = []
    indices = range(torch.cuda.device_count())
    for index in indices if only is None else [i for i in indices if i == only]:
        props = torch.cuda.get_device_properties(index)
        if rocm:
            arch, capability = str(getattr(props, "gcnArchName", "gfx?")).split(":")[0], None
        else:
            capability = (props.major, props.minor)
            arch = format_sm(*capability)
        try:
            free_mb = torch.cuda.mem_get_info(index)[0] // 2**20
        except RuntimeError:
            free_mb = None  # needs a context; total memory (from properties) is still reported
        gpus.append(GpuInfo(index, props.name, arch, capability, props.total_memory // 2**20, free_mb))
    return tuple(gpus)


def current_view(only_gpu: int | None = None) -> MachineView:
    """Ask torch, the driver and the CPU once; nothing here launches a kernel.

    only_gpu: ask torch about that one CUDA index and no other (a torchrun rank and its
    LOCAL_RANK): reading a GPU's free memory creates a CUDA context on it, and N ranks each
    opening a context on all N GPUs costs every GPU N contexts. The driver's list (nvidia-smi)
    creates none and stays machine-wide. None (doctor, one process): every visible GPU.
    """
    import torch

    from tunix_rt.device.probe import matmul_probe

    build = _build_kind(torch)
    gpu_build = build in ("cuda", "rocm")
    # torch warns (e.g. "sm_120 is not compatible with the current PyTorch installation") while we
    # inspect; the report says the same with a remedy, so keep the text but not the stderr noise.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = gpu_build and torch.cuda.is_available()
        gpus = _torch_gpus(torch, build == "rocm", only_gpu) if available else ()
        arch_list = tuple(torch.cuda.get_arch_list()) if gpu_build else ()
    cudnn = None
    if gpu_build and torch.backends.cudnn.is_available():
        cudnn = str(torch.backends.cudnn.version())
    mps = getattr(torch.backends, "mps", None)
    return MachineView(
        torch_version=torch.__version__,
        build=build,
        cuda=torch.version.cuda,
        hip=getattr(torch.version, "hip", None),
        cudnn=cudnn,
        arch_list=arch_list,
        cuda_available=bool(available),
        gpus=gpus,
        mps_available=bool(mps is not None and mps.is_available()),
        driver=query_driver(),
        cpu=read_cpu_info(),
        run_matmul=matmul_probe,
        warnings=tuple(str(w.message) for w in caught),
    )
