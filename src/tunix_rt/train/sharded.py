"""FSDP2 without a full model per rank: built on the meta device, sharded, then filled shard by shard.

Under `training.strategy: fsdp` every rank builds the model on the meta device (shapes, no
storage), `fully_shard` splits each parameter into per-rank DTensor shards, and `to_empty` gives
only those shards memory, on the rank's own device. The weights then come from one of two places:

- a full model that rank 0 alone loaded (or initialised, for `init: scratch`) on the CPU:
  `set_model_state_dict(..., full_state_dict=True, broadcast_from_rank0=True)` sends it one tensor
  at a time and every rank keeps its own shard of each;
- a sharded checkpoint (`torch.distributed.checkpoint`, written by `save_shards`): every rank reads
  the parts of the files that hold its own shards.

Non-persistent buffers (a rotary embedding's `inv_freq`) are in no state dict: after `to_empty`
they hold garbage. torchtune re-runs each rotary module's `rope_init()` after sharding (its
recipes/full_finetune_distributed.py); transformers models have no common hook like that, so the
values are taken from where the weights come from instead: broadcast from rank 0's full model, or
saved beside the shards in the checkpoint.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist

from tunix_rt.train.distributed import unwrap_model

SHARDS = "shards"
"""The checkpoint subdirectory that torch.distributed.checkpoint writes (one .distcp file per rank)."""


@dataclass
class PendingWeights:
    """Where a model built on the meta device gets its weights once it is sharded.

    Exactly one is set: `full_model` is rank 0's full model on the CPU (None on the other ranks,
    which receive their shards by broadcast), `checkpoint` a sharded checkpoint every rank reads.
    """

    full_model: Any = None
    checkpoint: Path | None = None


def is_sharded(checkpoint: Path) -> bool:
    """True for a checkpoint written per rank with torch.distributed.checkpoint."""
    return (checkpoint / SHARDS / ".metadata").is_file()


def non_persistent_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The buffers a state dict leaves out (registered with persistent=False), by qualified name."""
    return {
        f"{prefix}.{name}" if prefix else name: buffer
        for prefix, module in model.named_modules()
        for name, buffer in module._buffers.items()
        if buffer is not None and name in module._non_persistent_buffers_set
    }


@torch.no_grad()
def materialise(model: Any, device: torch.device, weights: PendingWeights) -> None:
    """Give a sharded meta model its memory on `device` (this rank's shards only) and its weights."""
    module = unwrap_model(model)
    allocate(module, device)
    if weights.checkpoint is not None:
        load_model_shards(module, weights.checkpoint)
    else:
        fill_from_rank0(module, weights.full_model)
    weights.full_model = None  # rank 0's full copy is no longer needed: let it go


def allocate(model: torch.nn.Module, device: torch.device | str) -> None:
    """Uninitialised memory on `device` for a meta model's parameters and buffers (under FSDP,
    this rank's shards only), its tied parameters still one tensor.

    `to_empty` gives each module its own new tensor: a plain model's tied LM head would become a
    separate, untrained copy of the embeddings (FSDP's DTensor parameters keep the tie, and
    re-tying them is a no-op), so transformers' `tie_weights` ties them again.
    """
    model.to_empty(device=device)
    tie = getattr(model, "tie_weights", None)
    if tie is not None:
        tie()


@torch.no_grad()
def fill_from_rank0(model: torch.nn.Module, full_model: torch.nn.Module | None) -> None:
    """Every rank calls this; rank 0 passes its full CPU model, the others None.

    Each tensor is broadcast from rank 0 and every rank keeps its own shard of it, so a non-zero
    rank holds at most one full tensor at a time (the one in flight), never the model.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    full_state = full_model.state_dict() if full_model is not None else {}
    set_model_state_dict(
        model, full_state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    )
    source = non_persistent_buffers(full_model) if full_model is not None else {}
    for name, buffer in non_persistent_buffers(model).items():
        if full_model is not None:
            buffer.copy_(source[name])
        torch_dist.broadcast(buffer, src=0)


def _dcp() -> Any:
    import torch.distributed.checkpoint as dcp

    return dcp


def _no_dist() -> bool:
    # One process (a 2-rank run resumed on 1) has no process group: DCP then reads every shard itself.
    return not (torch_dist.is_available() and torch_dist.is_initialized())


@contextlib.contextmanager
def _single_process_is_intended() -> Iterator[None]:
    # Without a process group DCP warns that it "assumes the intent is to save/load in a single
    # process": here it is.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield


def _load(state: dict[str, Any], path: Path) -> None:
    with _single_process_is_intended():
        _dcp().load(state, checkpoint_id=str(path), no_dist=_no_dist())


def save_shards(model: Any, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Model, optimizer and non-persistent buffers into `path`, each rank writing its own shards.

    A collective: every rank calls it with the same `path` (on storage every rank sees); it
    returns once every rank's file and rank 0's `.metadata` are written (and fsynced).
    """
    from torch.distributed.checkpoint.state_dict import get_state_dict

    module = unwrap_model(model)
    model_state, optim_state = get_state_dict(module, optimizer)
    state = {"model": model_state, "optim": optim_state, "buffers": non_persistent_buffers(module)}
    with _single_process_is_intended():
        _dcp().save(state, checkpoint_id=str(path), no_dist=_no_dist())


@torch.no_grad()
def load_model_shards(model: torch.nn.Module, checkpoint: Path) -> None:
    """The weights and non-persistent buffers of a sharded checkpoint, in place.

    Under FSDP each rank reads its own shards; a plain model (another strategy, or one process)
    reads every shard of each tensor: DCP reshards to whatever the model's tensors are.
    """
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    state = {"model": get_model_state_dict(model), "buffers": non_persistent_buffers(model)}
    _load(state, checkpoint / SHARDS)
    set_model_state_dict(model, state["model"])


def load_optimizer_shards(model: Any, optimizer: torch.optim.Optimizer, checkpoint: Path) -> None:
    """The optimizer state of a sharded checkpoint, in place (each rank its own shards)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    module = unwrap_model(model)
    state = {"optim": get_optimizer_state_dict(module, optimizer)}
    _load(state, checkpoint / SHARDS)
    set_optimizer_state_dict(module, optimizer, optim_state_dict=state["optim"])
