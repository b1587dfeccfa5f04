"""Run real kernels: a matmul checked against the CPU, and the CPU's matmul peak for MFU.

`torch.cuda.is_available()` can be True for a GPU the build has no kernels for; the failure then
comes at the first kernel launch ("no kernel image is available for execution on the device").
Launching one small matmul before anything else turns that mid-run crash into a preflight answer.
"""

from __future__ import annotations

import time
from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Max |device - cpu| relative to max |cpu|; low-precision inputs round to ~3 significant digits.
TOLERANCE = {"float32": 1e-3, "bfloat16": 3e-2, "float16": 1e-2}
BENCH_SIZE = 4096  # GPU throughput figure: 3 x 32 MB in bf16, about a millisecond per matmul


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _operands(size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random size² matrices from a private generator: measuring a peak inside a training run
    must not move the global RNG, or dropout (and resume exactness) would depend on whether this
    process had measured a peak before."""
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(size, size, generator=generator).to(device, dtype) for _ in range(2))


def _device_gflops(dev: torch.device, dtype: torch.dtype, size: int, repeats: int) -> float | None:
    """Best-of-`repeats` GFLOP/s of a size² matmul on the device; None if it does not fit in memory."""
    try:
        x, y = _operands(size, dtype, dev)
    except torch.cuda.OutOfMemoryError:
        return None  # a GPU busy with other work still passed the correctness probe; no peak figure
    _ = x @ y
    _sync(dev)
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        _ = x @ y
        _sync(dev)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / max(best, 1e-9) / 1e9


def matmul_probe(device: str, dtype: str, size: int = 256, repeats: int = 3) -> dict[str, Any]:
    """Allocate, multiply, synchronise, compare with a float32 CPU result. Raises on kernel errors."""
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    # Round the inputs to the probe dtype first, so the reference measures the device, not rounding.
    a = a.to(DTYPES[dtype])
    b = b.to(DTYPES[dtype])
    reference = a.float() @ b.float()
    x, y = a.to(dev), b.to(dev)
    out = x @ y  # warm-up; the first launch is where a missing kernel image fails
    _sync(dev)
    start = time.perf_counter()
    for _ in range(repeats):
        out = x @ y
    _sync(dev)
    seconds = (time.perf_counter() - start) / repeats
    rel_error = float((out.float().cpu() - reference).abs().max() / reference.abs().max())
    gflops, gflops_size = 2 * size**3 / max(seconds, 1e-9) / 1e9, size
    if dev.type in ("cuda", "mps") and rel_error <= TOLERANCE[dtype]:
        # A 256² matmul measures launch latency, not the GPU; training's MFU divides by this number.
        bench = _device_gflops(dev, DTYPES[dtype], BENCH_SIZE, repeats)
        if bench is not None:
            gflops, gflops_size = bench, BENCH_SIZE
    memory = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else None
    return {
        "device": device,
        "dtype": dtype,
        "size": size,
        "seconds": round(seconds, 6),
        "gflops": float(f"{gflops:.4g}"),
        "gflops_size": gflops_size,
        "max_rel_error": rel_error,
        "tolerance": TOLERANCE[dtype],
        "memory_allocated_mb": round(memory / 2**20, 1) if memory is not None else None,
    }


def measure_cpu_matmul_peak(dtype: str | torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best-of-`repeats` GFLOP/s of one size x size CPU matmul: the denominator for CPU MFU.

    Best of 10 by default: on a shared 2-core machine a best of 3 read anywhere from 1.5 to 2.0
    TFLOP/s (bf16) from run to run, which moved every MFU with it.
    """
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    a, b = _operands(size, torch_dtype, torch.device("cpu"))
    _ = a @ b  # warm-up: thread pool start and oneDNN kernel selection are not the peak
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        _ = a @ b
        best = min(best, time.perf_counter() - start)
    return float(f"{2 * size**3 / max(best, 1e-9) / 1e9:.4g}")
