"""Decide which device a run uses, before any model is loaded, and say why.

`resolve_device("cuda")` either returns a GPU that passed the architecture, driver and kernel-probe
checks, or raises `DeviceError` with the reason and the remedy. `resolve_device("auto")` never
raises: it picks the best usable device and records in `reason` what it skipped and why.
Everything reads a `MachineView` (see view.py), so tests fake the machine, not torch.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from tunix_rt.device.capability import arch_supported, lookup, remedy_for
from tunix_rt.device.host import GpuInfo, version_tuple
from tunix_rt.device.probe import measure_cpu_matmul_peak
from tunix_rt.device.view import MachineView, current_view
from tunix_rt.errors import DeviceError

__all__ = [
    "ACCEPTED_DEVICES",
    "DeviceChoice",
    "GpuAssessment",
    "assess_gpu",
    "choose_dtype",
    "cuda_blocker",
    "kernel_probe",
    "measure_cpu_matmul_peak",
    "resolve_device",
]

ACCEPTED_DEVICES = "auto, cpu, cuda, cuda:N, mps"
DTYPE_NAMES = ("float32", "bfloat16", "float16", "auto")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
PROBE_SIZE = 256  # big enough to launch real GEMM kernels, small enough to cost milliseconds
CPU_BUILD_INSTALL = "pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128"


@dataclass
class DeviceChoice:
    device: str  # "cpu", "cuda:0", "mps"
    type: str  # "cpu" | "cuda" | "mps"
    name: str  # "NVIDIA GeForce RTX 5090" or the CPU model
    capability: str | None  # "sm_120" for CUDA, None otherwise
    count: int  # visible devices of that type
    bf16: bool  # bf16 is fast/native here (AMX/AVX512-BF16 CPU, or CUDA capability >= 8.0)
    reason: str  # "requested", or for auto why this device was picked
    probe: dict | None  # the kernel probe result when one ran

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GpuAssessment:
    index: int
    name: str
    capability: str
    memory_total_mb: int | None
    memory_free_mb: int | None
    arch_supported: bool
    arch_reason: str
    driver_ok: bool | None  # None: unknown (torch sees the GPU, but no NVML/nvidia-smi answered)
    driver_reason: str
    probe: dict | None
    compatible: bool
    reason: str
    remedy: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _error(reason: str, remedy: str) -> DeviceError:
    exc = DeviceError(f"{reason}\n  remedy: {remedy}")
    # Callers (doctor, the run manifest) want the parts, not just the formatted text.
    exc.reason, exc.remedy = reason, remedy  # type: ignore[attr-defined]
    return exc


# --- checks -----------------------------------------------------------------------------------


def kernel_probe(view: MachineView, device: str, dtype: str, size: int = PROBE_SIZE) -> dict[str, Any]:
    """Run the matmul probe; a kernel that cannot launch or computes garbage gives ok=False."""
    try:
        result = view.run_matmul(device, dtype, size)
    except Exception as exc:  # any launch failure is the answer we are here to record, never ignored
        return {
            "device": device,
            "dtype": dtype,
            "size": size,
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}".strip(),
        }
    ok = result["max_rel_error"] <= result["tolerance"]
    error = (
        None
        if ok
        else (
            f"result differs from the CPU: max relative error {result['max_rel_error']:.3g} "
            f"> {result['tolerance']:g}"
        )
    )
    return {**result, "ok": ok, "error": error}


def check_driver(gpu: GpuInfo, view: MachineView) -> tuple[bool | None, str]:
    """Is the NVIDIA driver new enough for this GPU's architecture and this build's CUDA major?"""
    if view.build == "rocm":
        return None, "ROCm build: the NVIDIA driver check does not apply"
    driver = view.driver
    if driver.version is None:
        return None, f"driver version unknown ({driver.detail or 'no NVML, no nvidia-smi'})"
    problems = []
    info = lookup(gpu.capability) if gpu.capability else None
    if info and version_tuple(driver.version) < version_tuple(info.min_driver):
        problems.append(
            f"driver {driver.version} is older than {info.min_driver}, the minimum for {gpu.arch}"
        )
    build_major = version_tuple(view.cuda)[:1]
    if build_major and driver.max_cuda and version_tuple(driver.max_cuda)[:1] < build_major:
        problems.append(
            f"driver {driver.version} supports CUDA up to {driver.max_cuda}; this build needs CUDA {view.cuda}"
        )
    if problems:
        return False, "; ".join(problems)
    note = ""
    if view.cuda and driver.max_cuda and version_tuple(driver.max_cuda) < version_tuple(view.cuda)[:2]:
        # Same major, older minor: CUDA minor-version compatibility runs it, but PTX JIT is unavailable.
        note = f"; the build's CUDA {view.cuda} runs through minor-version compatibility"
    return True, f"driver {driver.version} (CUDA {driver.max_cuda or '?'}) is new enough{note}"


def _best_gpu_dtype(gpu: GpuInfo, view: MachineView) -> str:
    return "bfloat16" if _gpu_bf16(gpu, view) else "float16"


def _gpu_bf16(gpu: GpuInfo, view: MachineView) -> bool:
    if view.build == "rocm":
        return True  # every ROCm target current PyTorch ships (CDNA2+/RDNA3) has bf16 matmuls
    return gpu.capability is not None and gpu.capability >= (8, 0)


def assess_gpu(
    gpu: GpuInfo, view: MachineView, *, probe: bool = True, size: int = PROBE_SIZE
) -> GpuAssessment:
    """compatible = the build carries kernels for it, the driver is new enough, the probe passes."""
    if view.build == "rocm":
        base = gpu.arch.split(":")[0]
        arch_ok = base in view.arch_list
        arch_reason = (
            f"{base} is in this ROCm build's arch list"
            if arch_ok
            else f"{base} ({gpu.name}) is not in this ROCm build's arch list {' '.join(view.arch_list)}"
        )
        remedy = (
            "install a ROCm build of PyTorch whose arch list includes it (pytorch.org/get-started/locally)"
        )
    else:
        arch_ok, arch_reason = arch_supported(gpu.capability or gpu.arch, view.arch_list, name=gpu.name)
        remedy = remedy_for(gpu.capability or gpu.arch)
    driver_ok, driver_reason = check_driver(gpu, view)
    result = None
    if arch_ok and driver_ok is not False and probe:
        result = kernel_probe(view, f"cuda:{gpu.index}", _best_gpu_dtype(gpu, view), size)

    if not arch_ok:
        compatible, reason = False, arch_reason
    elif driver_ok is False:
        compatible, reason = False, driver_reason
        remedy = f"update the NVIDIA driver ({driver_reason}); {remedy}"
    elif result is not None and not result["ok"]:
        # CUDA errors carry advice lines (CUDA_LAUNCH_BLOCKING=1 ...); the first line is the fact.
        first_line = result["error"].splitlines()[0] if result["error"] else "unknown error"
        compatible, reason = False, f"kernel probe failed on cuda:{gpu.index}: {first_line}"
        # The arch list claims this GPU, yet a kernel failed: the install is inconsistent.
        remedy = (
            f"reinstall a PyTorch build with kernels for {gpu.arch} and make sure nothing on LD_LIBRARY_PATH "
            f"shadows the wheel's CUDA libraries, then rerun `tunix-rt doctor --device cuda:{gpu.index}`; {remedy}"
        )
    else:
        compatible = True
        probe_text = (
            f"{result['dtype']} matmul probe passed at {result['gflops']} GFLOP/s"
            if result
            else "probe skipped"
        )
        reason = f"{arch_reason}; {driver_reason}; {probe_text}"
        remedy = None
    return GpuAssessment(
        gpu.index,
        gpu.name,
        gpu.arch,
        gpu.memory_total_mb,
        gpu.memory_free_mb,
        arch_ok,
        arch_reason,
        driver_ok,
        driver_reason,
        result,
        compatible,
        reason,
        remedy,
    )


def cuda_blocker(view: MachineView) -> tuple[str, str] | None:
    """Why this process cannot use CUDA at all, as (reason, remedy); None when torch sees GPUs."""
    seen = ", ".join(f"{g.name} ({g.arch})" for g in view.driver.gpus)
    if view.build not in ("cuda", "rocm"):
        remedy = f"install a CUDA build of PyTorch in a dedicated venv, e.g. `{CPU_BUILD_INSTALL}`"
        if view.driver.gpus and view.driver.gpus[0].capability:
            remedy = remedy_for(view.driver.gpus[0].capability)
        reason = f"this PyTorch ({view.torch_version}) is a CPU-only build: it has no CUDA support"
        if seen:
            reason += f" (the NVIDIA driver sees {seen})"
        return reason, remedy + "; or use --device cpu"
    if view.cuda_available and view.gpus:
        return None
    if view.build == "cuda" and view.driver.source == "none":
        return (
            f"no NVIDIA GPU/driver: torch.cuda.is_available() is False and {view.driver.detail}",
            "install the NVIDIA driver (see docs/gpu.md) on a machine with an NVIDIA GPU, or use --device cpu",
        )
    hint = "torch.cuda.is_available() is False"
    return (
        f"{hint} although the {view.build} build {view.torch_version} is installed "
        f"(driver {view.driver.version or 'unknown'}, CUDA {view.driver.max_cuda or '?'}; GPUs the driver sees: "
        f"{seen or 'none'})",
        "check CUDA_VISIBLE_DEVICES, and that the driver supports this build's CUDA "
        f"{view.cuda or view.hip}; run `tunix-rt doctor` for details",
    )


# --- resolution -------------------------------------------------------------------------------


def _cpu_choice(view: MachineView, reason: str) -> DeviceChoice:
    return DeviceChoice("cpu", "cpu", view.cpu.model, None, 1, view.cpu.bf16, reason, None)


def _gpu_choice(view: MachineView, a: GpuAssessment, reason: str) -> DeviceChoice:
    gpu = view.gpus[[g.index for g in view.gpus].index(a.index)]
    return DeviceChoice(
        f"cuda:{a.index}", "cuda", a.name, a.capability, len(view.gpus), _gpu_bf16(gpu, view), reason, a.probe
    )


def _mps_choice(view: MachineView, reason: str, probe: bool) -> tuple[DeviceChoice | None, str]:
    result = kernel_probe(view, "mps", "float32") if probe else None
    if result is not None and not result["ok"]:
        return None, f"MPS kernel probe failed: {result['error']}"
    # bf16 on MPS depends on the macOS version and is not the fast path; float32 is the safe default.
    return DeviceChoice("mps", "mps", "Apple MPS", None, 1, False, reason, result), ""


def _resolve_cuda(
    view: MachineView, index: int | None, probe: bool, assessments: dict[int, GpuAssessment] | None
) -> DeviceChoice:
    blocker = cuda_blocker(view)
    if blocker:
        raise _error(*blocker)
    visible = [g.index for g in view.gpus]
    target = visible[0] if index is None else index
    if target not in visible:
        raise _error(
            f"cuda:{target} requested but only {len(visible)} CUDA device(s) are visible "
            f"({', '.join(f'cuda:{i}' for i in visible)})",
            "pick a visible index, or check CUDA_VISIBLE_DEVICES",
        )
    gpu = view.gpus[visible.index(target)]
    a = (assessments or {}).get(target) or assess_gpu(gpu, view, probe=probe)
    if not a.compatible:
        raise _error(f"cuda:{target}: {a.reason}", a.remedy or remedy_for(gpu.arch))
    return _gpu_choice(view, a, "requested")


def _auto(view: MachineView, probe: bool, assessments: dict[int, GpuAssessment] | None) -> DeviceChoice:
    skipped: list[str] = []
    blocker = cuda_blocker(view)
    if blocker is None:
        for gpu in view.gpus:
            a = (assessments or {}).get(gpu.index) or assess_gpu(gpu, view, probe=probe)
            if a.compatible:
                how = "passed the kernel probe" if a.probe else "passed the architecture and driver checks"
                return _gpu_choice(view, a, f"auto: CUDA GPU {gpu.index} {how}")
            skipped.append(f"cuda:{gpu.index} skipped: {a.reason}")
    elif view.build not in ("cuda", "rocm"):
        skipped.append(f"CPU-only torch build {view.torch_version}")
        if view.driver.gpus:
            skipped.append("the driver sees " + ", ".join(f"{g.name} ({g.arch})" for g in view.driver.gpus))
    else:
        skipped.append(blocker[0])
    if view.mps_available:
        choice, problem = _mps_choice(view, "auto: no usable CUDA GPU; MPS is available", probe)
        if choice is not None:
            return choice
        skipped.append(problem)
    return _cpu_choice(view, f"auto: no usable GPU ({'; '.join(skipped)})")


def resolve_device(
    requested: str | None = "auto",
    *,
    probe: bool = True,
    view: MachineView | None = None,
    assessments: dict[int, GpuAssessment] | None = None,
) -> DeviceChoice:
    """auto | cpu | cuda | cuda:N | mps -> a checked DeviceChoice, or DeviceError (reason + remedy).

    `view` and `assessments` let doctor reuse what it already measured; training passes neither.
    """
    text = (requested or "auto").strip().lower()
    view = view or current_view()
    if text == "auto":
        return _auto(view, probe, assessments)
    if text == "cpu":
        return _cpu_choice(view, "requested")
    if text == "mps":
        if not view.mps_available:
            why = (
                "this PyTorch build has no MPS backend (MPS is Apple silicon + macOS only)"
                if view.build != "mps"
                else "MPS is built in but not available on this machine"
            )
            raise _error(f"mps requested but {why}", "use --device auto or cpu")
        choice, problem = _mps_choice(view, "requested", probe)
        if choice is None:
            raise _error(problem, "update macOS/PyTorch, or use --device cpu")
        return choice
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match:
        return _resolve_cuda(view, int(match.group(1)) if match.group(1) else None, probe, assessments)
    if text.startswith(("tpu", "xla")):
        raise _error(
            f"device {requested!r} is not supported: the PyTorch path of tunix-rt has no TPU support "
            "(`device: tpu` comes from the original JAX/Tunix configs)",
            f"use one of: {ACCEPTED_DEVICES}",
        )
    raise _error(f"unknown device {requested!r}", f"use one of: {ACCEPTED_DEVICES}")


def choose_dtype(choice: DeviceChoice, requested: str) -> str:
    """float32 | bfloat16 | float16 | auto -> a concrete dtype name this device runs well."""
    name = _DTYPE_ALIASES.get(requested.strip().lower(), requested.strip().lower())
    if name not in DTYPE_NAMES:
        raise _error(f"unknown dtype {requested!r}", f"use one of: {', '.join(DTYPE_NAMES)}")
    if name == "auto":
        if choice.bf16:
            return "bfloat16"
        return "float16" if choice.type == "cuda" else "float32"
    if name == "bfloat16" and not choice.bf16:
        what = (
            f"{choice.device} ({choice.name}, {choice.capability}) has no bf16 tensor cores (needs sm_80+)"
            if choice.type == "cuda"
            else f"{choice.device} ({choice.name}) has no native bf16 (no AVX512-BF16/AMX); it would run emulated"
            if choice.type == "cpu"
            else f"{choice.device} has no fast bf16 path"
        )
        raise _error(
            f"bfloat16 requested but {what}", "use dtype auto or float32 (float16 on older CUDA GPUs)"
        )
    if name == "float16" and choice.type == "cpu":
        raise _error(
            "float16 requested on cpu: CPU float16 matmuls are slow and training in them is unstable",
            "use dtype auto, or bfloat16 where the CPU has AVX512-BF16/AMX, else float32",
        )
    return name
