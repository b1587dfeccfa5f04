"""The environment files every run directory (and `doctor --evidence`) carries.

They answer, after the fact, "what exactly ran this?": the same report doctor prints, the torch
build, the kernel probe numbers, raw nvidia-smi, and pip freeze. Each is written atomically.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from tunix_rt.device.doctor import collect_report, render_human
from tunix_rt.device.host import nvidia_smi_output
from tunix_rt.fsutil import atomic_write_text

ENV_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_HOME",
    "PYTORCH_CUDA_ALLOC_CONF",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
)
PACKAGES = ("tunix-rt", "torch", "transformers", "tokenizers", "safetensors", "numpy", "nvidia-ml-py")
PIP_TIMEOUT_S = 120


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def env_info_text(report: dict[str, Any]) -> str:
    lines = [render_human(report), "", f"python executable: {sys.executable}"]
    lines += [f"{name}: {_package_version(name)}" for name in PACKAGES]
    lines += [f"env {name}={os.environ[name]}" for name in ENV_VARS if name in os.environ]
    return "\n".join(lines) + "\n"


def torch_version_text(report: dict[str, Any]) -> str:
    t = report["torch"]
    lines = [
        f"torch {t['version']}",
        f"build: {t['build']}",
        f"cuda runtime: {t['cuda'] or 'none'}",
        f"hip: {t['hip'] or 'none'}",
        f"cudnn: {t['cudnn'] or 'none'}",
        f"arch list: {' '.join(t['arch_list']) or '(empty)'}",
    ]
    lines += [f"warning: {w}" for w in t["warnings"]]
    return "\n".join(lines) + "\n"


def cuda_check_text(report: dict[str, Any]) -> str:
    lines = [
        f"requested: {report['requested']}",
        f"verdict: {report['verdict']}",
        f"recommended device: {report['recommended_device']}",
    ]
    device = report["device"]
    if device:
        lines.append(
            f"chosen: {device['device']} ({device['name']}, capability {device['capability']}, "
            f"bf16 {device['bf16']})"
        )
    if not report["gpus"]:
        lines.append("no CUDA GPU: torch and the driver see none")
    for gpu in report["gpus"]:
        lines.append(f"gpu {gpu['index']}: {gpu['name']} {gpu['capability']} compatible={gpu['compatible']}")
        lines.append(f"  reason: {gpu['reason']}")
        if gpu["remedy"]:
            lines.append(f"  remedy: {gpu['remedy']}")
        probe = gpu["probe"]
        if probe:
            lines.append("  probe: " + ", ".join(f"{k}={v}" for k, v in probe.items()))
        else:
            lines.append("  probe: not run")
    if device and device.get("probe"):
        lines.append("chosen device probe: " + ", ".join(f"{k}={v}" for k, v in device["probe"].items()))
    matmul = report["cpu"]["matmul_gflops"]
    if matmul:
        lines.append("cpu matmul GFLOP/s: " + ", ".join(f"{k}={v}" for k, v in matmul.items()))
    return "\n".join(lines) + "\n"


def nvidia_smi_text() -> str:
    output, problem = nvidia_smi_output()
    return output if output is not None else f"no NVIDIA driver present: {problem}\n"


def pip_freeze_text() -> str:
    command = [sys.executable, "-m", "pip", "freeze"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip freeze unavailable for {sys.executable}: {exc}\n"
    if done.returncode != 0:
        return f"pip is unavailable in {sys.executable} (exit {done.returncode}): {done.stderr.strip()}\n"
    return done.stdout


def write_environment_files(
    directory: Path, report: dict | None = None, *, requested: str = "auto"
) -> list[Path]:
    """env_info.txt, torch_version.txt, cuda_check.txt, nvidia_smi.txt, pip_freeze.txt in `directory`.

    Without a report, one is collected for `requested`; a training run should pass its own device
    (e.g. "cuda:3") so that only that GPU is probed.
    """
    report = report if report is not None else collect_report(requested)
    contents = {
        "env_info.txt": env_info_text(report),
        "torch_version.txt": torch_version_text(report),
        "cuda_check.txt": cuda_check_text(report),
        "nvidia_smi.txt": nvidia_smi_text(),
        "pip_freeze.txt": pip_freeze_text(),
    }
    paths = []
    for name, text in contents.items():
        path = Path(directory) / name
        atomic_write_text(path, text)
        paths.append(path)
    return paths
