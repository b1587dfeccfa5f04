"""The device a run trains on, decided once at start-up, and the process-wide settings of a run.

A recipe calls `resolve_run_device` first: a device that cannot be used is refused before anything
is loaded or written, and the answer (device, dtype, attention kernel, matmul peak) is handed to
every component that needs it instead of being worked out again.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tunix_rt.config import Config
from tunix_rt.device.preflight import DeviceChoice, choose_dtype, resolve_device
from tunix_rt.train.distributed import DistContext
from tunix_rt.train.flops import device_peak_gflops
from tunix_rt.train.model import attention_for

COMPUTE_DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast(device_type: str, compute_dtype: torch.dtype | None) -> torch.autocast:
    """The region a forward runs in: autocast to compute_dtype, or plain float32 when it is None."""
    return torch.autocast(
        device_type, dtype=compute_dtype or torch.float32, enabled=compute_dtype is not None
    )


@dataclass(frozen=True)
class RunDevice:
    choice: DeviceChoice
    dtype_name: str
    """float32 | bfloat16 | float16: the training dtype, from training.dtype and the device."""
    attention: str
    peak_gflops: float | None
    """One device's matmul peak in the training dtype (the MFU denominator)."""

    @property
    def device(self) -> torch.device:
        return torch.device(self.choice.device)

    @property
    def compute_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for plain float32."""
        return COMPUTE_DTYPES[self.dtype_name]


def resolve_run_device(dist: DistContext, requested: str, cfg: Config) -> RunDevice:
    """Resolve the device (DeviceError when unusable), join the process group, measure the peak."""
    view = dist.local_view()
    choice = resolve_device(dist.device_request(requested, view), view=view)
    dtype_name = choose_dtype(choice, cfg.training.dtype)
    attention = attention_for(cfg.model.attn_implementation, choice.type)
    dist.init(choice)
    return RunDevice(choice, dtype_name, attention, device_peak_gflops(choice, dtype_name))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet_library_progress_bars() -> None:
    # transformers 5 draws a progress bar for every save_pretrained; the run log should read cleanly.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # We pad on the right and pass no attention mask on purpose (see train/batching.collate):
    # transformers' "input_ids may be padded" advice does not apply and would only add noise.
    logging.getLogger("transformers.modeling_utils").addFilter(
        lambda record: "attention_mask" not in record.getMessage()
    )


def quiet_logger() -> Any:
    """The log of a rank that writes no evidence (every rank but 0)."""
    logger = logging.getLogger("tunix_rt.run.worker")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger
