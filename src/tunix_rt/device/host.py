"""What the machine says without asking torch: CPU features, RAM, and the NVIDIA driver.

The driver is asked through NVML (the optional `nvidia-ml-py` package, imported lazily) and else
through `nvidia-smi`; both can see a GPU that a CPU-only PyTorch build cannot, which is exactly
when the user needs to hear about it.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tunix_rt.device.capability import format_sm

SMI_QUERY = "index,name,compute_cap,memory.total,memory.free,driver_version"
SMI_TIMEOUT_S = 20


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int
    avx512_bf16: bool
    amx: bool  # AMX with bf16 tiles (amx_bf16): the fast path for bf16 matmuls on Xeon
    ram_gb: float | None

    @property
    def bf16(self) -> bool:
        """bf16 matmuls run natively (not emulated through fp32) on this CPU."""
        return self.avx512_bf16 or self.amx


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    arch: str  # "sm_120" on NVIDIA, the gfx name on ROCm
    capability: tuple[int, int] | None  # CUDA compute capability; None where it does not apply
    memory_total_mb: int | None = None
    memory_free_mb: int | None = None


@dataclass(frozen=True)
class DriverInfo:
    version: str | None
    max_cuda: str | None  # the newest CUDA the driver supports ("CUDA Version" in nvidia-smi)
    source: str  # "nvml" | "nvidia-smi" | "none"
    gpus: tuple[GpuInfo, ...] = field(default_factory=tuple)  # what the driver sees
    detail: str = ""  # why there is no answer, when source == "none"


NO_DRIVER = DriverInfo(None, None, "none", (), "no NVIDIA driver found")


# --- CPU --------------------------------------------------------------------------------------


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """(model name, flags) of the first processor block of /proc/cpuinfo."""
    model = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def _ram_gb() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo.read_text(), re.MULTILINE)
        if match:
            return round(int(match.group(1)) / 2**20, 1)
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None  # not every OS has these sysconf names (Windows); RAM is then reported unknown


def read_cpu_info() -> CpuInfo:
    cpuinfo = Path("/proc/cpuinfo")
    model, flags = parse_cpuinfo(cpuinfo.read_text()) if cpuinfo.exists() else (None, set())
    return CpuInfo(
        model=model or platform.processor() or platform.machine() or "unknown CPU",
        cores=os.cpu_count() or 1,
        avx512_bf16="avx512_bf16" in flags,
        amx="amx_bf16" in flags,
        ram_gb=_ram_gb(),
    )


# --- NVIDIA driver ----------------------------------------------------------------------------


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _query_nvml() -> DriverInfo | None:
    try:
        import pynvml  # from the optional `nvidia-ml-py` extra
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return DriverInfo(None, None, "none", (), f"NVML could not start: {exc}")
    try:
        version = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()  # e.g. 12080 for 12.8
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                GpuInfo(
                    index,
                    _text(pynvml.nvmlDeviceGetName(handle)),
                    format_sm(major, minor),
                    (major, minor),
                    memory.total // 2**20,
                    memory.free // 2**20,
                )
            )
        return DriverInfo(version, f"{cuda // 1000}.{cuda % 1000 // 10}", "nvml", tuple(gpus))
    except pynvml.NVMLError as exc:
        return DriverInfo(None, None, "none", (), f"NVML query failed: {exc}")
    finally:
        pynvml.nvmlShutdown()


def nvidia_smi_output(*args: str) -> tuple[str | None, str]:
    """(stdout, problem): stdout is None when nvidia-smi is missing or fails; problem says why."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "nvidia-smi not found on PATH"
    try:
        done = subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=SMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi failed: {exc}"
    if done.returncode != 0:
        return None, f"nvidia-smi exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
    return done.stdout, ""


def _int_or_none(value: str) -> int | None:
    value = value.strip()
    return int(float(value)) if re.fullmatch(r"\d+(\.\d+)?", value) else None


def parse_smi_query(text: str) -> tuple[str | None, tuple[GpuInfo, ...]]:
    """Parse `nvidia-smi --query-gpu=SMI_QUERY --format=csv,noheader,nounits` into (driver, gpus)."""
    driver = None
    gpus = []
    for line in text.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 6:
            continue
        index, name, cap, total, free, driver = fields
        capability = None
        if re.fullmatch(r"\d+\.\d+", cap):
            major, minor = (int(x) for x in cap.split("."))
            capability = (major, minor)
        arch = format_sm(*capability) if capability else "unknown"
        gpus.append(GpuInfo(int(index), name, arch, capability, _int_or_none(total), _int_or_none(free)))
    return driver, tuple(gpus)


def parse_smi_header(text: str) -> tuple[str | None, str | None]:
    """(driver version, max CUDA) from the banner of plain `nvidia-smi`."""
    driver = re.search(r"Driver Version:\s*([\d.]+)", text)
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", text)
    return (driver.group(1) if driver else None), (cuda.group(1) if cuda else None)


def _query_smi() -> DriverInfo:
    query, problem = nvidia_smi_output(f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits")
    if query is None:
        return DriverInfo(None, None, "none", (), problem)
    version, gpus = parse_smi_query(query)
    banner, _ = nvidia_smi_output()
    banner_version, max_cuda = parse_smi_header(banner or "")
    return DriverInfo(version or banner_version, max_cuda, "nvidia-smi", gpus)


def query_driver() -> DriverInfo:
    """NVML when `nvidia-ml-py` is installed and answers, else nvidia-smi, else 'no driver'."""
    nvml = _query_nvml()
    if nvml is not None and nvml.source == "nvml":
        return nvml
    smi = _query_smi()
    if smi.source == "none" and nvml is not None:
        return DriverInfo(None, None, "none", (), f"{nvml.detail}; {smi.detail}")
    return smi


def version_tuple(version: str | None) -> tuple[int, ...]:
    """'570.86.10' -> (570, 86, 10); used to compare driver and CUDA versions."""
    return tuple(int(part) for part in re.findall(r"\d+", version or ""))
