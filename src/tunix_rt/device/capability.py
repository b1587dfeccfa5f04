"""Which PyTorch CUDA builds can drive which NVIDIA GPU: one table and the rules that read it.

This module imports no torch, so it can be tested and used anywhere.

Sources for the table (checked 2026):
- compute capability per GPU family: NVIDIA "CUDA GPUs" list (developer.nvidia.com/cuda-gpus).
- minimum CUDA toolkit per capability: the CUDA toolkit release notes of the release that added
  the architecture (8.0 in 11.0, 8.6 in 11.1, 8.9 and 9.0 in 11.8, 10.0 and 12.0 in 12.8,
  10.3 and 12.1 in 12.9).
- minimum driver per CUDA toolkit (Linux x86_64; Windows numbers are slightly higher, e.g.
  570.65 for 12.8): the table "CUDA Toolkit and Corresponding Driver Versions" in the CUDA
  toolkit release notes (docs.nvidia.com/cuda/cuda-toolkit-release-notes), e.g. 12.8 GA >= 570.26,
  12.9 GA >= 575.51.03, 13.0 GA >= 580.65.06, 11.8 GA >= 520.61.05.
- PyTorch wheels: PyTorch 2.7 release blog (pytorch.org/blog/pytorch-2-7): first release with
  Blackwell support, shipped as CUDA 12.8 ("cu128") wheels. CUDA 13.0 release notes: offline
  compilation for Maxwell, Pascal and Volta was removed, so those GPUs stay on cu126 builds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WHEEL_INDEX = "https://download.pytorch.org/whl"
NEWEST_INDEX = "cu130"  # the newest CUDA wheel index named in remedies for GPUs newer than the table


@dataclass(frozen=True)
class ArchInfo:
    capability: tuple[int, int]
    architecture: str
    examples: str
    min_cuda: str  # first CUDA toolkit whose PyTorch builds can carry kernels for it
    min_driver: str  # Linux driver that CUDA toolkit needs
    torch_index: str  # the PyTorch wheel index to recommend (cuXYZ)
    min_torch: str | None = None  # first PyTorch release with such wheels, where it matters
    note: str = ""


# One row per capability. Keep it sorted; tests check every row is well-formed.
ARCH_TABLE: tuple[ArchInfo, ...] = (
    ArchInfo(
        (6, 0),
        "Pascal",
        "Tesla P100",
        "8.0",
        "367.48",
        "cu126",
        note="CUDA 13 builds carry no Pascal kernels; stay on cu126",
    ),
    ArchInfo(
        (6, 1),
        "Pascal",
        "GeForce GTX 1080, Tesla P40",
        "8.0",
        "367.48",
        "cu126",
        note="CUDA 13 builds carry no Pascal kernels; stay on cu126",
    ),
    ArchInfo(
        (7, 0),
        "Volta",
        "Tesla V100, Titan V",
        "9.0",
        "384.81",
        "cu126",
        note="CUDA 13 builds carry no Volta kernels; stay on cu126",
    ),
    ArchInfo((7, 5), "Turing", "GeForce RTX 2080, Tesla T4", "10.0", "410.48", "cu126"),
    ArchInfo((8, 0), "Ampere", "A100, A30", "11.0", "450.51.05", "cu126"),
    ArchInfo((8, 6), "Ampere", "GeForce RTX 3090, RTX A6000, A40", "11.1", "455.23", "cu126"),
    ArchInfo((8, 9), "Ada Lovelace", "GeForce RTX 4090, L4, L40S", "11.8", "520.61.05", "cu126"),
    ArchInfo((9, 0), "Hopper", "H100, H200, GH200", "11.8", "520.61.05", "cu126"),
    ArchInfo((10, 0), "Blackwell", "B200, GB200", "12.8", "570.26", "cu128", min_torch="2.7"),
    ArchInfo(
        (10, 3),
        "Blackwell",
        "B300, GB300",
        "12.9",
        "575.51.03",
        "cu128",
        min_torch="2.7",
        note="cu128 builds run it through their sm_100 kernels",
    ),
    ArchInfo(
        (12, 0),
        "Blackwell",
        "GeForce RTX 5090/5080, RTX PRO 6000 Blackwell",
        "12.8",
        "570.26",
        "cu128",
        min_torch="2.7",
    ),
    ArchInfo(
        (12, 1),
        "Blackwell",
        "GB10 (DGX Spark)",
        "12.9",
        "575.51.03",
        "cu128",
        min_torch="2.7",
        note="cu128 builds run it through their sm_120 kernels",
    ),
)

_BY_CAPABILITY = {row.capability: row for row in ARCH_TABLE}
_ARCH_RE = re.compile(r"^(sm|compute)_(\d+)([af]?)$")


def format_sm(major: int, minor: int) -> str:
    """(12, 0) -> "sm_120": NVIDIA's spelling, the one PyTorch's arch list uses."""
    return f"sm_{major}{minor}"


def parse_capability(value: tuple[int, int] | str) -> tuple[int, int]:
    """Accept (12, 0), "12.0", "sm_120" or "compute_120"; the last digit is always the minor."""
    if isinstance(value, tuple):
        return int(value[0]), int(value[1])
    text = value.strip().lower()
    if "." in text:
        major, minor = text.split(".", 1)
        return int(major), int(minor)
    digits = re.sub(r"^(sm|compute)_", "", text).rstrip("af")
    if not digits.isdigit() or len(digits) < 2:
        raise ValueError(f"not a compute capability: {value!r}")
    return int(digits[:-1]), int(digits[-1])


def lookup(capability: tuple[int, int] | str) -> ArchInfo | None:
    return _BY_CAPABILITY.get(parse_capability(capability))


def _parse_arch(entry: str) -> tuple[str, tuple[int, int], str] | None:
    """'sm_90a' -> ('sm', (9, 0), 'a'); entries that are not CUDA targets (e.g. gfx942) -> None."""
    match = _ARCH_RE.match(entry.strip().lower())
    if not match:
        return None
    kind, digits, suffix = match.groups()
    return kind, (int(digits[:-1]), int(digits[-1])), suffix


def describe_arch_list(arch_list: list[str] | tuple[str, ...]) -> str:
    """Short form for messages: 'sm_50…sm_90' (+ PTX entries), as PyTorch users recognise it."""
    sass = sorted(
        (cap, entry) for entry in arch_list if (p := _parse_arch(entry)) and p[0] == "sm" for cap in [p[1]]
    )
    ptx = [entry for entry in arch_list if (p := _parse_arch(entry)) and p[0] == "compute"]
    if not sass and not ptx:
        return "(empty)"
    parts = []
    if sass:
        names = [entry for _, entry in sass]
        parts.append(f"{names[0]}…{names[-1]}" if len(names) > 2 else " ".join(names))
    if ptx:
        parts.append("PTX " + " ".join(ptx))
    return " + ".join(parts)


def arch_supported(
    capability: tuple[int, int] | str, arch_list: list[str] | tuple[str, ...], *, name: str | None = None
) -> tuple[bool, str]:
    """Can a build with this arch list run kernels on this GPU? Returns (ok, reason).

    SASS (sm_XY) runs on a GPU of the same major with minor >= Y; arch-specific 'a' targets
    only on exactly that capability. PTX (compute_XY) with XY <= the device's capability is
    JIT-compiled by the driver at first use.
    """
    major, minor = parse_capability(capability)
    sm = format_sm(major, minor)
    label = f"{sm} ({name})" if name else sm
    if not arch_list:
        return False, f"{label}: this PyTorch build lists no CUDA architectures (is it a CPU-only build?)"
    parsed = [(entry, p) for entry in arch_list if (p := _parse_arch(entry))]
    sass = [
        (a_minor, entry)
        for entry, (kind, (a_major, a_minor), suffix) in parsed
        if kind == "sm"
        and a_major == major
        and a_minor <= minor
        and (suffix != "a" or a_minor == minor)  # 'a' (arch-specific) code runs only on its own capability
    ]
    if sass:
        a_minor, entry = max(sass)  # the closest kernels are the ones the runtime loads
        if a_minor == minor:
            return True, f"{label} kernels are in this PyTorch build ({entry})"
        return True, f"{label} runs this build's {entry} kernels (same major, binary compatible)"
    ptx = [(cap, entry) for entry, (kind, cap, _) in parsed if kind == "compute" and cap <= (major, minor)]
    if ptx:
        _, entry = max(ptx)
        return True, (
            f"{label} has no native kernels in this build, but its PTX {entry} is JIT-compiled by the "
            "driver (slow first start; a build with native kernels is faster)"
        )
    return False, f"{label} is not in this PyTorch build's arch list {describe_arch_list(arch_list)}"


def pip_command(index: str) -> str:
    return f"pip install --upgrade torch --index-url {WHEEL_INDEX}/{index}"


def remedy_for(capability: tuple[int, int] | str) -> str:
    """What to install for this GPU: the CUDA builds that carry its kernels, the command, the driver."""
    major, minor = parse_capability(capability)
    sm = format_sm(major, minor)
    info = lookup((major, minor))
    if info is None:
        newest = max(ARCH_TABLE, key=lambda row: row.capability)
        if (major, minor) > newest.capability:
            return (
                f"{sm} is newer than tunix-rt's capability table; install the newest CUDA build of PyTorch "
                f"in a dedicated venv (`{pip_command(NEWEST_INDEX)}`) with the newest NVIDIA driver, "
                "then rerun `tunix-rt doctor`; see docs/gpu.md"
            )
        return (
            f"{sm} is not in tunix-rt's capability table; install a CUDA build of PyTorch whose arch list "
            f"includes it (see pytorch.org/get-started/locally), then rerun `tunix-rt doctor`"
        )
    torch_req = f", PyTorch >= {info.min_torch}" if info.min_torch else ""
    text = (
        f"{sm} ({info.architecture}, e.g. {info.examples}) needs a PyTorch build for CUDA {info.min_cuda} "
        f"or newer ({info.torch_index}{torch_req}): `{pip_command(info.torch_index)}` in a dedicated venv, "
        f"with NVIDIA driver >= {info.min_driver}"
    )
    if info.note:
        text += f"; {info.note}"
    if info.torch_index == "cu128":
        # Newer PyTorch releases may stop publishing cu128; the next index up needs a newer driver.
        text += f" (if your PyTorch release has no cu128 wheels, use {NEWEST_INDEX} with driver >= 580.65.06)"
    return text + "; see docs/gpu.md"
