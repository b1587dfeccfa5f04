"""One process or many under torchrun: the few places where data parallelism changes the recipe.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; with WORLD_SIZE > 1 each process joins the default
process group (gloo on CPU, nccl on CUDA), trains on its share of every effective batch, and DDP
(or FSDP2's fully_shard) averages gradients. With one process every method here is a no-op.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist

from tunix_rt.device.view import MachineView, current_view
from tunix_rt.errors import DeviceError
from tunix_rt.train.batching import micro_batches


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
        if requested == "cuda" or (
            requested == "auto" and _machine_has_gpu(view or current_view(only_gpu=self.local_rank))
        ):
            return f"cuda:{self.local_rank}"
        return requested

    def local_view(self) -> MachineView | None:
        """The machine as this rank may touch it: under torchrun only GPU LOCAL_RANK is asked about
        (no CUDA context on the other ranks' GPUs). None for one process, which may use any
        visible GPU: resolve_device then builds the machine-wide view itself."""
        return current_view(only_gpu=self.local_rank) if self.active else None

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

    def release(self) -> None:
        """After a run's last collective: every rank waits for the others, then all destroy the
        process group together, before rank 0's work alone (evaluation, the evidence). Until this,
        the other ranks destroyed their group and exited while rank 0 still had its own, and once
        in CI a rank aborted in that exit ("terminate called without an active exception") after a
        completed run, failing the job. A gloo barrier also waits for the collectives this rank
        started. The group lives as long as collectives need it, so no rank waits through rank 0's
        evaluation (which could outlast the collectives' timeout)."""
        self.barrier()
        self.shutdown()

    def shutdown(self) -> None:
        """Whatever the outcome, the process group goes (no barrier: a failed peer never reaches it)."""
        if self.active and torch_dist.is_initialized():
            torch_dist.destroy_process_group()

    def gather_devices(self, device: str) -> list[str]:
        return all_gather(device)

    # --- the model ----------------------------------------------------------------------------

    def shards_first(self, strategy: str) -> bool:
        """FSDP under torchrun: the model is built on the meta device, sharded, and only then given
        memory (this rank's shards) and weights (train/sharded.py): no rank holds the full model
        on its device, and no rank but 0 holds it anywhere."""
        return self.active and strategy == "fsdp"

    def place(self, model: Any, device: torch.device, strategy: str) -> None:
        """Put the model on its device, except under FSDP: there the model is still on the meta
        device, and train/sharded.materialise allocates each rank's shards on the device after
        `wrap` has sharded it."""
        if not self.shards_first(strategy):
            model.to(device)

    def wrap(self, model: Any, strategy: str) -> Any:
        if not self.active:
            return model
        if strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            # Shard each transformer block, then the root (embeddings, norm, head).
            for block in fsdp_blocks(model):
                fully_shard(block)
            fully_shard(model)
            self._strategy = "fsdp"
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self._device.index] if self._device is not None and self._device.type == "cuda" else None
        self._strategy = "ddp"
        return DistributedDataParallel(model, device_ids=ids)

    def reshard(self, model: Any) -> None:
        """Back to sharded parameters after a forward outside training (the packing check).

        FSDP2 leaves the root module's parameters unsharded after a forward (its backward would
        gather them again at once); an optimizer built then would hold those unsharded tensors
        instead of the registered shards.
        """
        if self._strategy != "fsdp":
            return
        from torch.distributed.fsdp import FSDPModule

        for module in model.modules():
            if isinstance(module, FSDPModule):
                module.reshard()

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

    def my_micro_batches(
        self, batch: np.ndarray, lengths: np.ndarray, accumulation: int
    ) -> Iterator[tuple[np.ndarray, bool]]:
        """This rank's micro-batches of the effective batch `batch`, flagged is_last.

        The batch is dealt to the ranks by tokens (deal_by_tokens), so no rank is a built-in
        straggler; each rank cuts its share into `accumulation` length-sorted micro-batches. The
        loss stays exact however examples are dealt: the loop normalises every rank's summed loss
        by the completion tokens of the whole effective batch.

        Every rank yields the same number of micro-batches: under FSDP each forward all-gathers
        the parameters, so a rank that ran one forward fewer would leave the others waiting. When
        a rank's share has fewer examples than `accumulation` some slices are empty; a rank pads
        its non-empty ones with empty micro-batches up to the busiest rank's count (the loop runs a
        zero-loss dummy forward for them), and a rank with nothing at all still yields one, to
        join the gradient all-reduce.
        """
        mine = rank_micro_batches(batch, lengths, accumulation, self.rank, self.world_size)
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


def deal_by_tokens(batch: np.ndarray, lengths: np.ndarray, world_size: int) -> list[np.ndarray]:
    """Each rank's share of `batch` (example indices), near-equal in tokens rather than in rows.

    Longest example first, each to the rank holding the fewest tokens so far (LPT scheduling;
    ties to the lower rank). The busiest rank then carries at most the mean plus one example:
    within ~10% of the mean once the longest example is under a tenth of a rank's mean share.
    Every rank computes the same deal from the same batch, with no communication.
    """
    if world_size == 1:
        return [batch]
    loads = [(0, r) for r in range(world_size)]  # (tokens, rank): a heap of the ranks' loads
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for k in batch[np.argsort(-lengths[batch], kind="stable")]:
        tokens, r = heapq.heappop(loads)
        shares[r].append(int(k))
        heapq.heappush(loads, (tokens + int(lengths[k]), r))
    return [np.asarray(share, dtype=batch.dtype) for share in shares]


def rank_micro_batches(
    batch: np.ndarray, lengths: np.ndarray, accumulation: int, rank: int, world_size: int
) -> list[np.ndarray]:
    """Rank `rank`'s non-empty micro-batches of its token-balanced share, padded with empty ones so
    that every rank gets as many as the rank with the most non-empty micro-batches (at least one)."""
    shares = deal_by_tokens(batch, lengths, world_size)
    counts = [min(len(share), accumulation) for share in shares]
    mine = [m for m in micro_batches(shares[rank], lengths, accumulation) if len(m)]
    return mine + [batch[:0]] * (max(1, *counts) - len(mine))


def fsdp_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules FSDP shards one by one: the model's own `_no_split_modules` (transformers names
    there the blocks that must stay whole on one device: LlamaDecoderLayer, GPT2Block, ...).

    Read from every module of the tree, so a wrapper (a PEFT model) finds its base model's blocks.
    A model that names none is sharded as one unit at the root: correct, but each forward then
    gathers all parameters at once.
    """
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    return [module for module in model.modules() if type(module).__name__ in names]


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
