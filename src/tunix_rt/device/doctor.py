"""`tunix-rt doctor`: can this PyTorch drive this machine's GPU? One report, two renderings.

Exit 0 when the requested (or auto) device is usable, 1 when not. A CPU-only or Apple machine
gets a clear "no GPU" answer, not an error.
"""

from __future__ import annotations

import platform
import re
from typing import Any

from tunix_rt.device.capability import arch_supported, describe_arch_list, remedy_for
from tunix_rt.device.preflight import (
    DeviceChoice,
    GpuAssessment,
    assess_gpu,
    cuda_blocker,
    measure_cpu_matmul_peak,
    resolve_device,
)
from tunix_rt.device.view import MachineView, current_view
from tunix_rt.errors import DeviceError

CPU_PEAK_SIZE = 1024  # ~50 ms on 2 cores: enough to tell AMX bf16 from emulation


def _driver_only_gpus(view: MachineView) -> list[dict[str, Any]]:
    """GPUs the driver sees but torch cannot use (e.g. a CPU-only build): reported, never probed."""
    reason, remedy = cuda_blocker(view) or ("torch does not see this GPU", "")
    rows = []
    for gpu in view.driver.gpus:
        if gpu.capability:
            arch_ok, _ = arch_supported(gpu.capability, view.arch_list, name=gpu.name)
            remedy = remedy_for(gpu.capability)
        else:
            arch_ok = False
        rows.append(
            {
                "index": gpu.index,
                "name": gpu.name,
                "capability": gpu.arch,
                "memory_total_mb": gpu.memory_total_mb,
                "memory_free_mb": gpu.memory_free_mb,
                "arch_supported": arch_ok,
                "compatible": False,
                "reason": reason,
                "remedy": remedy,
                "probe": None,
            }
        )
    return rows


def _probe_targets(requested: str, view: MachineView) -> set[int]:
    """Which GPUs get a kernel probe: all for auto, only the named one for cuda[:N], none for cpu/mps.

    A probe opens a CUDA context (hundreds of MB) on its GPU; a training rank that writes its env
    files must not open one on every other rank's GPU.
    """
    text = (requested or "auto").strip().lower()
    if text == "auto":
        return {gpu.index for gpu in view.gpus}
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match and view.gpus:
        return {int(match.group(1)) if match.group(1) else view.gpus[0].index}
    return set()


def collect_report(
    requested: str = "auto",
    *,
    view: MachineView | None = None,
    probe: bool = True,
    cpu_peak_size: int | None = CPU_PEAK_SIZE,
    choice: DeviceChoice | None = None,
    matmul_gflops: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """Everything doctor knows, as one JSON-ready dict (also the source of the env files).

    A training run passes the device it already resolved (`choice`, not probed again) and the CPU
    peak it measured for MFU (`matmul_gflops`), so start-up does each of those once.
    """
    view = view or current_view()
    assessments = {}
    if cuda_blocker(view) is None:
        targets = _probe_targets(requested, view) if probe and choice is None else set()
        assessments = {gpu.index: assess_gpu(gpu, view, probe=gpu.index in targets) for gpu in view.gpus}
    gpus = [a.to_dict() for a in assessments.values()] or _driver_only_gpus(view)
    verdict = _verdict(requested, view, probe, assessments, choice)
    choice = verdict.pop("choice")

    cpu = view.cpu
    matmul = matmul_gflops
    if matmul is None and cpu_peak_size:
        matmul = {
            dt: measure_cpu_matmul_peak(dt, size=cpu_peak_size, repeats=2) for dt in ("float32", "bfloat16")
        }
    return {
        "python": platform.python_version(),
        "os": platform.platform(),
        "cpu": {
            "model": cpu.model,
            "cores": cpu.cores,
            "avx512_bf16": cpu.avx512_bf16,
            "amx": cpu.amx,
            "ram_gb": cpu.ram_gb,
            "bf16": cpu.bf16,
            "matmul_gflops": matmul,
        },
        "torch": {
            "version": view.torch_version,
            "build": view.build,
            "cuda": view.cuda,
            "hip": view.hip,
            "cudnn": view.cudnn,
            "arch_list": list(view.arch_list),
            "warnings": list(view.warnings),
        },
        "driver": {
            "version": view.driver.version,
            "max_cuda": view.driver.max_cuda,
            "source": view.driver.source,
            "detail": view.driver.detail,
        },
        "gpus": gpus,
        "mps_available": view.mps_available,
        "requested": requested,
        "device": choice.to_dict() if choice else None,
        **verdict,
    }


def _mark(value: bool | None) -> str:
    return "✔" if value else ("–" if value is None else "✖")


def _verdict(
    requested: str,
    view: MachineView,
    probe: bool,
    assessments: dict[int, GpuAssessment],
    choice: DeviceChoice | None,
) -> dict[str, Any]:
    """{choice, recommended_device, usable, verdict, remedy} for the requested device."""
    try:
        choice = choice or resolve_device(requested, probe=probe, view=view, assessments=assessments)
    except DeviceError as exc:
        recommended = resolve_device("auto", probe=probe, view=view, assessments=assessments).device
        return {
            "choice": None,
            "recommended_device": recommended,
            "usable": False,
            "verdict": f"{requested} is not usable — {getattr(exc, 'reason', str(exc))}",
            "remedy": getattr(exc, "remedy", None),
        }
    return {
        "choice": choice,
        "recommended_device": choice.device,
        "usable": True,
        "verdict": f"{choice.device} is usable — {choice.reason}",
        "remedy": None,
    }


def render_human(report: dict[str, Any]) -> str:
    cpu, torch_, driver = report["cpu"], report["torch"], report["driver"]
    lines = ["tunix-rt doctor", f"  python  {report['python']} · {report['os']}"]
    ram = f"{cpu['ram_gb']} GB RAM" if cpu["ram_gb"] is not None else "RAM unknown"
    lines.append(f"  cpu     {cpu['model']} · {cpu['cores']} cores · {ram}")
    speed = ""
    if cpu["matmul_gflops"]:
        speed = "  matmul " + ", ".join(f"{k} {v:g} GFLOP/s" for k, v in cpu["matmul_gflops"].items())
    lines.append(f"          {_mark(cpu['avx512_bf16'])} avx512_bf16  {_mark(cpu['amx'])} amx{speed}")
    arch = describe_arch_list(torch_["arch_list"]) if torch_["arch_list"] else "—"
    lines.append(
        f"  torch   {torch_['version']} · {torch_['build']} build · CUDA {torch_['cuda'] or '—'}"
        f" · cuDNN {torch_['cudnn'] or '—'} · arch list {arch}"
    )
    if driver["source"] == "none":
        lines.append(f"  driver  none ({driver['detail']})")
    else:
        lines.append(
            f"  driver  {driver['version']} · CUDA {driver['max_cuda'] or '?'} (via {driver['source']})"
        )
    if not report["gpus"]:
        lines.append(
            "  gpus    none visible to torch or the driver"
            + (" · Apple MPS available" if report["mps_available"] else "")
        )
    for gpu in report["gpus"]:
        memory = f" · {gpu['memory_total_mb']} MB" if gpu["memory_total_mb"] else ""
        lines.append(f"  GPU {gpu['index']}   {gpu['name']} · {gpu['capability']}{memory}")
        lines.append(
            f"    {_mark(gpu['arch_supported'])} architecture  {gpu.get('arch_reason', gpu['reason'])}"
        )
        if "driver_ok" in gpu:
            lines.append(f"    {_mark(gpu['driver_ok'])} driver        {gpu['driver_reason']}")
        probe = gpu["probe"]
        if probe is None:
            lines.append("    – probe         not run")
        elif probe["ok"]:
            lines.append(
                f"    ✔ probe         {probe['dtype']} {probe['size']}² matmul matches the CPU;"
                f" {probe['gflops']:g} GFLOP/s at {probe.get('gflops_size', probe['size'])}²,"
                f" {probe.get('memory_allocated_mb')} MB allocated"
            )
        else:
            lines.append(f"    ✖ probe         {(probe['error'] or '').splitlines()[0]}")
        lines.append(f"    {_mark(gpu['compatible'])} compatible")
        if gpu["remedy"] and not gpu["compatible"]:
            lines.append(f"    remedy: {gpu['remedy']}")
    lines.append(f"{_mark(report['usable'])} {report['verdict']}")
    if not report["usable"]:
        shown = {gpu["remedy"] for gpu in report["gpus"] if not gpu["compatible"]}
        if report["remedy"] and report["remedy"] not in shown:  # say each remedy once
            lines.append(f"  remedy: {report['remedy']}")
        lines.append(f"  usable instead: --device {report['recommended_device']}")
    return "\n".join(lines)
