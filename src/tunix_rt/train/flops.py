"""Model FLOP utilisation: achieved training FLOP/s over the measured peak of this device.

Training FLOPs per token follow the PaLM appendix B estimate: 6 * N (forward + backward through
every weight matrix, N the parameter count with tied embeddings counted once) plus the attention
score and value products, 12 * layers * hidden * T, with T the mean sequence length of the batch.
The peak is measured, not taken from a datasheet: a large matmul in the training dtype on this very
machine (device/preflight.py), so the ratio says how close the loop runs to what the hardware
actually delivers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from tunix_rt.train.distributed import unwrap_model


@dataclass
class FlopCounter:
    n_params: int
    n_layers: int
    hidden: int
    peak_gflops: float | None
    """Of one device; the run's peak is this times the number of processes."""
    world_size: int = 1
    _tokens: int = 0
    _examples: int = 0
    _seconds: float = 0.0

    @classmethod
    def for_model(
        cls, model: Any, n_params: int, peak_gflops: float | None, world_size: int = 1
    ) -> FlopCounter:
        """`peak_gflops` is one device's, from `device_peak_gflops` (measured once per run)."""
        config = unwrap_model(model).config
        layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)
        hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0)
        return cls(n_params, int(layers), int(hidden), peak_gflops, world_size)

    def flops(self, tokens: int, examples: int) -> float:
        mean_len = tokens / max(examples, 1)
        return tokens * (6 * self.n_params + 12 * self.n_layers * self.hidden * mean_len)

    def mfu(self, tokens: int, examples: int, seconds: float) -> float | None:
        self._tokens += tokens
        self._examples += examples
        self._seconds += seconds
        if not self.peak_gflops or seconds <= 0:
            return None
        return round(self.flops(tokens, examples) / seconds / (self.peak_gflops * 1e9 * self.world_size), 4)

    def overall_mfu(self) -> float | None:
        if not self.peak_gflops or self._seconds <= 0:
            return None
        total_peak = self.peak_gflops * 1e9 * self.world_size
        return round(self.flops(self._tokens, self._examples) / self._seconds / total_peak, 4)


def device_peak_gflops(choice: Any, dtype_name: str) -> float | None:
    """One device's matmul peak in the training dtype: measured on CPU (about a second), the
    kernel probe's figure on a GPU. A recipe calls this once and hands the number to whoever needs it."""
    if choice.type == "cpu":
        return _cpu_peak(dtype_name)
    probe = choice.probe or {}
    return probe.get("gflops")


@functools.lru_cache(maxsize=8)
def _cpu_peak(dtype_name: str) -> float:
    """Cached per process: runs made one after another in one process (tests, sweeps) share it."""
    import torch

    from tunix_rt.device.preflight import measure_cpu_matmul_peak

    return measure_cpu_matmul_peak(getattr(torch, dtype_name))
