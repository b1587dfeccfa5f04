"""One process or many under torchrun: the few places where data parallelism changes the recipe.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; with WORLD_SIZE > 1 each process joins the default
process group (gloo on CPU, nccl on CUDA), trains on its share of every effective batch, and DDP
(or FSDP2's fully_shard) averages gradients. With one process every method here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist

from tunix_rt.device.view import MachineView, current_view
from tunix_rt.errors import DeviceError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    _device: torch.device | None = None
    _strategy: str = "single"

    @classmethod
    def from_env(cls) -> DistContext:
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device_request(self, requested: str | None, view: MachineView | None = None) -> str:
        """Under torchrun each rank takes cuda:LOCAL_RANK when CUDA is asked for, or auto sees a GPU.

        Unlike one process, auto under torchrun never steps from an unusable GPU to the CPU: the
        ranks must agree on one backend, and a GPU job quietly run on CPUs is not the job that was
        launched. So on a machine with a GPU (seen by torch or by the driver) auto asks for
        cuda:LOCAL_RANK, and resolve_device refuses an unusable one up front with doctor's reason.
        """
        requested = requested or "auto"
        if not self.active:
            return requested
        if requested.startswith("cuda:"):
            raise DeviceError(
                f"--device {requested} under torchrun: each process takes cuda:LOCAL_RANK; ask for 'cuda' "
                "and choose the GPUs with CUDA_VISIBLE_DEVICES"
            )
        if requested == "cuda" or (requested == "auto" and _machine_has_gpu(view or current_view())):
            return f"cuda:{self.local_rank}"
        return requested

    def init(self, choice: Any) -> None:
        self._device = torch.device(choice.device)
        if not self.active or torch_dist.is_initialized():
            return
        if choice.type == "cuda":
            torch.cuda.set_device(self._device)
        torch_dist.init_process_group(backend="nccl" if choice.type == "cuda" else "gloo")

    def barrier(self) -> None:
        if self.active and torch_dist.is_initialized():
            torch_dist.barrier()

    def shutdown(self) -> None:
        if self.active and torch_dist.is_initialized():
            torch_dist.destroy_process_group()

    def gather_devices(self, device: str) -> list[str]:
        return all_gather(device)

    # --- the model ----------------------------------------------------------------------------

    def wrap(self, model: Any, strategy: str) -> Any:
        if not self.active:
            return model
        if strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            # Shard each transformer block, then the root (embeddings, norm, head).
            for module in list(model.modules()):
                if type(module).__name__.endswith(("DecoderLayer", "Block")):
                    fully_shard(module)
            fully_shard(model)
            self._strategy = "fsdp"
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self._device.index] if self._device is not None and self._device.type == "cuda" else None
        self._strategy = "ddp"
        return DistributedDataParallel(model, device_ids=ids)

    def unwrap(self, model: Any) -> Any:
        """The plain transformers model under torch.compile and DDP wrappers."""
        return unwrap_model(model)

    def sync_context(self, model: Any, is_last: bool) -> contextlib.AbstractContextManager[Any]:
        """DDP all-reduces gradients only on this rank's last micro-batch of the step."""
        if self._strategy == "ddp" and not is_last:
            return model.no_sync()
        if self._strategy == "fsdp":
            model.set_requires_gradient_sync(is_last)
        return contextlib.nullcontext()

    # --- the data -----------------------------------------------------------------------------

    def my_micro_batches(self, micros: list[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
        """This rank's micro-batches (rank r takes every world_size-th), flagged is_last.

        Every rank yields the same number of micro-batches: under FSDP each forward all-gathers
        the parameters, so a rank that ran one forward fewer would leave the others waiting. At an
        epoch's short last batch some slices are empty; a rank pads its non-empty ones with empty
        micro-batches up to the busiest rank's count (the loop runs a zero-loss dummy forward for
        them), and a rank with nothing at all still yields one, to join the gradient all-reduce.
        """
        mine = rank_micro_batches(micros, self.rank, self.world_size)
        for k, micro in enumerate(mine):
            yield micro, k == len(mine) - 1

    @property
    def grad_scale(self) -> int:
        """DDP and FSDP average gradients over ranks; our loss is already a global mean, so undo it."""
        return self.world_size

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank raised the flag (so all stop at the same step)."""
        if not self.active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self._device)
        torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
        return bool(value.item())

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.active:
            torch_dist.all_reduce(value, op=torch_dist.ReduceOp.SUM)
        return value


def _machine_has_gpu(view: MachineView) -> bool:
    # CUDA_VISIBLE_DEVICES="" (or -1) hides every GPU on purpose: the driver still lists them, but
    # the user asked for none, so auto means the CPU.
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return view.cuda_available
    return view.cuda_available or bool(view.driver.gpus)


def rank_micro_batches(micros: list[np.ndarray], rank: int, world_size: int) -> list[np.ndarray]:
    """Rank `rank`'s non-empty slices of micros[rank::world_size], padded with empty ones so that
    every rank gets as many as the rank with the most non-empty slices (at least one)."""
    counts = [sum(1 for m in micros[r::world_size] if len(m)) for r in range(world_size)]
    mine = [m for m in micros[rank::world_size] if len(m)]
    empty = micros[0][:0] if micros else np.zeros(0, dtype=np.int64)
    return mine + [empty] * (max(1, *counts) - len(mine))


def unwrap_model(model: Any) -> Any:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    model = getattr(model, "module", model)  # DDP
    return getattr(model, "_orig_mod", model)


def all_gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order ([obj] without a process group)."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * torch_dist.get_world_size()
    torch_dist.all_gather_object(out, obj)
    return out
