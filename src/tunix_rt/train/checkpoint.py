"""Atomic checkpoints: everything needed to continue a run as if it had never stopped.

A checkpoint is written into `checkpoints/.tmp-step-N-PID/` and renamed to `checkpoints/step-N/`
only when every file is on disk, so a directory named `step-*` is always complete; a kill at any
instant leaves at worst a `.tmp-*` directory, which is ignored and cleaned up on the next start.

Contents: the model (safetensors, `save_pretrained`; under LoRA only the trainable tensors,
`trainable.safetensors`, since the frozen base is reloaded from its source) and tokenizer, optimizer and scheduler state,
the fp16 loss scaler's state (float16 runs only), RNG states (python, numpy, torch, cuda), and `trainer_state.json` (step, data-order position,
config hash, dataset sha256).

Under FSDP the model and optimizer are not gathered: every rank writes its own shards with
torch.distributed.checkpoint into `shards/` (train/sharded.py) and rank 0 writes the rest, with the
model's config.json in place of its weights. All ranks write into the one `.tmp-*` directory, and
rank 0 renames it only after every rank is done, so such a checkpoint too is complete or absent.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunix_rt.errors import RunDirError
from tunix_rt.evidence import utc_now
from tunix_rt.fsutil import atomic_write_json
from tunix_rt.train.distributed import DistContext, all_gather, unwrap_model
from tunix_rt.train.lora import is_peft_model, load_trainable_file, save_trainable_file
from tunix_rt.train.sharded import SHARDS, is_sharded, load_optimizer_shards, save_shards

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
SCALER_FILE = "grad_scaler.pt"
# Identity keys a resume may change: the process count, as long as the effective batch stays.
RESHARDABLE = ("world_size",)


def empty_window() -> dict[str, Any]:
    """The running sums between two metrics lines."""
    return {"tokens": 0, "examples": 0, "seconds": 0.0, "loss_sum": 0.0, "loss_tokens": 0}


@dataclass
class TrainState:
    """Where a run is: all the training loop changes besides tensors, and what trainer_state.json saves.

    Restoring it (with the tensors and RNGs) puts the loop back at the very same step: the data
    order is a pure function of (seed, epoch), so (epoch, batch_in_epoch) is the data position.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens_seen: int = 0
    examples_seen: int = 0
    loop_seconds: float = 0.0
    window: dict[str, Any] = field(default_factory=empty_window)
    """The metrics window in progress, so the first line logged after a resume is exact."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> TrainState:
        return cls(**{f.name: saved[f.name] for f in fields(cls)})


@dataclass
class Checkpointer:
    """Saves and restores one run's checkpoints: the objects it holds plus a TrainState.

    `identity` is what a checkpoint must agree on to continue the very same run (dataset sha256,
    effective batch, dtype); a resume with another identity is refused. The number of processes
    may change when the effective batch does not: the data order depends on the effective batch
    alone, a consolidated checkpoint holds the full state, which any number of ranks loads, and
    torch.distributed.checkpoint reshards a sharded one onto any number of ranks.
    """

    run_dir: Path
    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    identity: dict[str, Any]
    config_sha256: str
    keep: int | None
    dist: DistContext
    log: Any
    seconds: float = 0.0
    """Time spent writing periodic and final checkpoints (kept out of the loop's throughput)."""
    state_type: Any = TrainState
    """The recipe's state dataclass (to_json / from_json / step): TrainState for SFT, GrpoState for GRPO."""
    restored_world_size: int | None = None
    """How many processes wrote the checkpoint `restore` read (None before a restore)."""
    sharded: bool = False
    """Write each rank's shards with torch.distributed.checkpoint (FSDP) instead of a consolidated model."""

    def save(self, state: Any, reason: str) -> Path:
        """Every rank calls this; returns the checkpoint directory once every rank is done."""
        started = time.perf_counter()
        record = {
            **state.to_json(),
            "config_sha256": self.config_sha256,
            **self.identity,
            "saved_at": utc_now(),
            "reason": reason,
        }
        path = save_checkpoint(
            self.run_dir,
            model=self.model,
            tokenizer=self.tokenizer,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            state=record,
            keep=self.keep,
            is_main=self.dist.is_main,
            scaler=self.scaler,
            sharded=self.sharded,
        )
        self.log.info(f"checkpoint: {path.relative_to(self.run_dir)} ({reason})")
        self.dist.barrier()
        self.seconds += time.perf_counter() - started
        return path

    def restore(self, checkpoint: Path) -> Any:
        """Optimizer, scheduler, scaler and RNGs in place; RunDirError if the run's identity changed."""
        saved = load_training_state(
            checkpoint, self.model, self.optimizer, self.scheduler, rank=self.dist.rank, scaler=self.scaler
        )
        changed = {
            k: (saved.get(k), v)
            for k, v in self.identity.items()
            if saved.get(k) != v and k not in RESHARDABLE
        }
        if changed:
            lines = "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items())
            raise RunDirError(
                f"--resume: {checkpoint.name} was trained with other settings ({lines}); continuing would "
                "not reproduce the run (keep the dataset, the effective batch and the dtype)"
            )
        self.restored_world_size = int(saved.get("world_size", self.dist.world_size))
        return self.state_type.from_json(saved)


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def remove_partial_checkpoints(run_dir: Path) -> list[Path]:
    """Delete `.tmp-*` leftovers of checkpoint writes that were killed; returns what was removed."""
    root = run_dir / CHECKPOINTS
    stale = [p for p in root.glob(".tmp-*")] if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path)
    return stale


def gather_full_state(model: Any, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, dict | None]:
    """Unsharded model (and optimizer) state on CPU, keyed by parameter name.

    Under FSDP this is a collective: every rank must call it (rank 0 receives the full tensors).
    One code path serves one process, DDP and FSDP alike.
    """
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    module = unwrap_model(model)
    model_state = get_model_state_dict(module, options=options)
    optim_state = (
        get_optimizer_state_dict(module, optimizer, options=options) if optimizer is not None else None
    )
    return model_state, optim_state


def _optimizer_state(model: Any, optimizer: torch.optim.Optimizer) -> dict:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(unwrap_model(model), optimizer, options=options)


def save_checkpoint(
    run_dir: Path,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    keep: int | None,
    is_main: bool = True,
    scaler: torch.amp.GradScaler | None = None,
    sharded: bool = False,
) -> Path:
    """Every rank calls this. Consolidated: FSDP gathers the full state and only the main process
    writes. Sharded: every rank writes its own shards into the same temp directory."""
    step = int(state["step"])
    root = run_dir / CHECKPOINTS
    final = root / checkpoint_name(step)
    if final.is_dir() and (final / STATE_FILE).is_file():
        return final  # this exact step is already saved (e.g. a periodic save that was also the last)
    if sharded:
        return _save_sharded(
            root, final, model, tokenizer, optimizer, scheduler, state, keep, is_main, scaler
        )
    lora = is_peft_model(unwrap_model(model))
    if lora:  # the adapters only (FSDP is refused with LoRA, so nothing is sharded)
        model_state, optim_state = None, _optimizer_state(model, optimizer)
    else:
        model_state, optim_state = gather_full_state(model, optimizer)
    rng_states = all_gather(capture_rng_state())  # every rank's own RNG streams (dropout differs per rank)
    if not is_main:
        return final
    tmp = _fresh(_tmp_dir(root, step, os.getpid()))
    if lora:
        save_trainable_file(unwrap_model(model), tmp)
    else:
        unwrap_model(model).save_pretrained(tmp, state_dict=model_state, safe_serialization=True)
    torch.save(optim_state, tmp / "optimizer.pt")
    _write_common(tmp, tokenizer, scheduler, scaler, rng_states)
    _publish(tmp, final, run_dir, state, keep)
    return final


def _save_sharded(
    root: Path, final: Path, model: Any, tokenizer: Any, optimizer: torch.optim.Optimizer, scheduler: Any,
    state: dict[str, Any], keep: int | None, is_main: bool, scaler: torch.amp.GradScaler | None,
) -> Path:  # fmt: skip
    """Each rank's model and optimizer shards (torch.distributed.checkpoint) plus rank 0's files.

    The ranks agree on rank 0's temp directory, write into it, and rank 0 renames it once every
    rank has finished (dcp.save returns on all ranks only after all have written; the barrier
    says so explicitly): a kill at any moment leaves a complete checkpoint or none.
    """
    rng_states = all_gather(capture_rng_state())
    step = int(state["step"])
    tmp = _tmp_dir(root, step, all_gather(os.getpid())[0])  # named after rank 0's process
    if is_main:
        _fresh(tmp)
    _barrier()  # the directory exists before any rank writes into it
    save_shards(model, optimizer, tmp / SHARDS)
    _barrier()
    if is_main:
        module = unwrap_model(model)
        module.config.save_pretrained(tmp)  # what --resume builds the empty model from
        if getattr(module, "generation_config", None) is not None:
            module.generation_config.save_pretrained(tmp)
        _write_common(tmp, tokenizer, scheduler, scaler, rng_states)
        _publish(tmp, final, root.parent, state, keep)
    return final


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _tmp_dir(root: Path, step: int, pid: int) -> Path:
    return root / f".tmp-{checkpoint_name(step)}-{pid}"


def _fresh(tmp: Path) -> Path:
    """An empty `tmp` (a leftover of a killed write with the same name is removed first)."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def _write_common(
    tmp: Path, tokenizer: Any, scheduler: Any, scaler: torch.amp.GradScaler | None, rng_states: list
) -> None:
    """What every checkpoint holds besides the model and optimizer (rank 0 writes it)."""
    tokenizer.save_pretrained(tmp)
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    if scaler is not None and scaler.is_enabled():
        # float16's loss scale and its growth tracker: without them a resumed run starts scaling
        # from scratch (skipped steps, a different trajectory) instead of continuing.
        torch.save(scaler.state_dict(), tmp / SCALER_FILE)
    torch.save(rng_states, tmp / "rng_state.pt")


def _publish(tmp: Path, final: Path, run_dir: Path, state: dict[str, Any], keep: int | None) -> None:
    """Mark `tmp` complete, rename it to `final`, and drop checkpoints beyond `keep`."""
    root = final.parent
    # trainer_state.json last: its presence is what marks a checkpoint as complete.
    atomic_write_json(tmp / STATE_FILE, state)
    _fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)  # an incomplete leftover under the final name (no trainer_state.json)
    os.replace(tmp, final)
    _fsync_dir(root)
    if keep is not None:
        for old in list_checkpoints(run_dir)[:-keep]:
            # Unmark it first: a kill during rmtree must not leave a "complete" checkpoint without weights.
            (old / STATE_FILE).unlink()
            shutil.rmtree(old)


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))


def load_training_state(
    checkpoint: Path,
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rank: int = 0,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Restore optimizer, scheduler and RNGs in place (every rank); returns trainer_state.json.

    A full model is loaded from the checkpoint directory before training starts; a LoRA model's
    base is loaded from its source and its adapters here (every rank reads the same file). The
    optimizer of a sharded checkpoint is read shard by shard (each FSDP rank its own), of a
    consolidated one whole by every rank.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    if is_peft_model(unwrap_model(model)):
        load_trainable_file(unwrap_model(model), checkpoint)
    if is_sharded(checkpoint):
        load_optimizer_shards(model, optimizer, checkpoint)
    else:
        set_optimizer_state_dict(
            unwrap_model(model),
            optimizer,
            optim_state_dict=torch.load(checkpoint / "optimizer.pt", weights_only=True),
            options=StateDictOptions(full_state_dict=True),
        )
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
    if scaler is not None and scaler.is_enabled():
        if not (checkpoint / SCALER_FILE).is_file():
            raise RunDirError(
                f"{checkpoint}: no {SCALER_FILE}; this float16 checkpoint was written without its loss "
                "scale (by tunix-rt before it saved one), so resuming would not continue the run exactly"
            )
        scaler.load_state_dict(torch.load(checkpoint / SCALER_FILE, weights_only=True))
    rng_states = torch.load(checkpoint / "rng_state.pt", weights_only=False)
    # On another process count rank r takes saved rank r's streams (rank 0's where there was none).
    restore_rng_state(rng_states[rank] if rank < len(rng_states) else rng_states[0])
    return read_state(checkpoint)


def capture_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # This process's GPU only (a torchrun rank's cuda:LOCAL_RANK): *_all would open a CUDA
        # context on every visible GPU.
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if isinstance(cuda, list):  # older checkpoints saved get_rng_state_all: one state per GPU
            cuda = cuda[torch.cuda.current_device()]
        torch.cuda.set_rng_state(cuda)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
