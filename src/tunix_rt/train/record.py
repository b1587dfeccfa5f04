"""What a training recipe records in its run directory, beside the arithmetic of the loop.

The run directory itself (file names, atomic manifest, metrics, log) is `tunix_rt.evidence`; this
module says *what* a training run puts there and when: the start of a run (device, versions, env
files, the resume list), the accepted config (and on resume each accepted change), the plan, a
metrics line, the summary, the eval headline, and the outcome (completed, failed, interrupted).
Every recipe (SFT today, GRPO next) records through these, so its evidence has one shape.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from tunix_rt.config import RESUME_SAFE_KEYS, Config, diff_configs
from tunix_rt.device.doctor import collect_report
from tunix_rt.device.envfiles import write_environment_files
from tunix_rt.errors import ConfigError, RunDirError
from tunix_rt.evidence import CONFIG, RunDirectory, utc_now, versions
from tunix_rt.fsutil import atomic_write_text
from tunix_rt.train import checkpoint as ckpt
from tunix_rt.train.distributed import DistContext
from tunix_rt.train.flops import FlopCounter
from tunix_rt.train.request import TrainRequest, user_command
from tunix_rt.train.runtime import RunDevice, quiet_logger
from tunix_rt.train.stop import StopSignal
from tunix_rt.train.trackers import Trackers


@dataclass
class RunRecord:
    """A training run's handle on its evidence. `run` is None on every rank but 0 (they write nothing)."""

    req: TrainRequest
    run: RunDirectory | None
    log: Any
    resume_from: Path | None
    """The checkpoint a --resume continues from (None: a new run, or nothing saved yet)."""
    config_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """Safe config changes of this resume, recorded once the checkpoint accepted the run."""

    def accept_resumed_config(self, at_step: int, lr_schedule: dict[str, Any] | None = None) -> None:
        """Record the resume's accepted config changes (and how the LR schedule continues, when the
        total changed) now that the checkpoint has accepted the run."""
        if self.run and self.resume_from is not None:
            accept_config(self.run, self.req, self.config_changes, at_step=at_step, lr_schedule=lr_schedule)

    def record_process_change(self, at_step: int, before: int | None, now: int) -> None:
        """A resume on another number of processes (same effective batch): logged, and listed in the
        manifest's `process_changes`."""
        if before is None or before == now:
            return
        self.log.info(
            f"resuming at step {at_step} on {now} process(es); the checkpoint was written by {before} "
            "(same effective batch, so the same data order)"
        )
        if self.run:
            changes = [*self.run.manifest.get("process_changes", [])]
            changes.append({"at_step": at_step, "from": before, "to": now})
            self.run.update_manifest(process_changes=changes)

    def update_manifest(self, **fields: Any) -> None:
        if self.run:
            self.run.update_manifest(**fields)

    def append_metrics(self, record: dict[str, Any]) -> None:
        if self.run:
            self.run.append_metrics(record)


def open_run(req: TrainRequest, dist: DistContext, dev: RunDevice) -> RunRecord:
    """Create (or reopen for --resume) the run directory and record how the run starts."""
    command = req.argv or user_command()
    run = (
        RunDirectory.open(req.output, resume=req.resume, overwrite=req.overwrite, command=command)
        if dist.is_main
        else None
    )
    dist.barrier()
    resume_from = ckpt.latest_checkpoint(req.output) if req.resume else None
    if run is None:
        dist.gather_devices(dev.choice.device)  # the collective rank 0 makes in _record_start
        return RunRecord(req, None, quiet_logger(), resume_from)
    try:
        return _start(run, req, dist, dev, command, resume_from)
    except BaseException:
        run.close()  # a refused start (e.g. an unsafe config change) releases the run's lock
        raise


def _start(
    run: RunDirectory,
    req: TrainRequest,
    dist: DistContext,
    dev: RunDevice,
    command: list[str],
    resume_from: Path | None,
) -> RunRecord:
    log = run.log
    for stale in ckpt.remove_partial_checkpoints(req.output):
        log.info(f"removed an incomplete checkpoint write: {stale.name}")
    for note in req.notes:
        log.info(note)
    choice = dev.choice
    log.info(f"device: {choice.device} ({choice.name}); {choice.reason}; dtype {dev.dtype_name}")
    # A resume's config changes are checked now and recorded only once the checkpoint has
    # accepted the run's settings (accept_resumed_config): a refused resume leaves config.yaml as it was.
    changed = check_resume_config(req.output, req.config) if req.resume else {}
    if resume_from is None:  # nothing to accept or refuse: a new run, or a resume before any checkpoint
        accept_config(run, req, changed, at_step=0)
    # The device resolved and the peak measured at start-up, not worked out again for the report.
    matmul = {dev.dtype_name: dev.peak_gflops} if choice.type == "cpu" else {}
    write_environment_files(req.output, collect_report(choice.device, choice=choice, matmul_gflops=matmul))
    _record_start(run, req, dist, dev, command)
    if req.config.training.report_to:  # every metrics line from here on also goes to the trackers
        run.metrics_sinks.append(Trackers(req.output, req.config.training.report_to, req.config.to_dict()))
        log.info(f"metrics also go to: {', '.join(req.config.training.report_to)} (training.report_to)")
    return RunRecord(req, run, log, resume_from, changed)


def _record_start(
    run: RunDirectory, req: TrainRequest, dist: DistContext, dev: RunDevice, command: list[str]
) -> None:
    timings = dict(run.manifest.get("timings", {}))
    if req.resume:
        # The command that started the run stays the one to reproduce it; resumes are listed.
        run.manifest["resume_commands"] = [*run.manifest.get("resume_commands", []), command]
        command = run.manifest.get("command", command)
        timings.setdefault("resumed_at", []).append(utc_now())
    else:
        timings["started_at"] = utc_now()
    choice = dev.choice
    run.update_manifest(
        status="running",
        timings=timings,
        command=command,
        device={
            "type": choice.type,
            "name": choice.name,
            "capability": choice.capability,
            "count": choice.count,
            "world_size": dist.world_size,
            "reason": choice.reason,
            "rank_devices": dist.gather_devices(choice.device),
        },
        versions=versions(),
        seed=req.config.training.seed,
        error=None,
    )


@contextlib.contextmanager
def recorded_outcome(record: RunRecord, stop: StopSignal, dist: DistContext) -> Iterator[None]:
    """Around a recipe's body: the manifest says interrupted or failed when it ends that way, the
    run's README is written whatever happened, and the process group is shut down."""
    run, log = record.run, record.log
    try:
        with stop.installed():
            yield
    except KeyboardInterrupt:
        if run:
            run.set_status("interrupted")
            saved = stop.checkpoint or "no new checkpoint (stopped outside the training loop)"
            log.info(f"interrupted: {saved}; continue with --resume")
        raise
    except BaseException as exc:
        if run:
            run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
            log.info(f"failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        if run:
            _write_readme(run)
            run.close()
        dist.shutdown()


def check_resume_config(run_dir: Path, cfg: Config) -> dict[str, tuple[Any, Any]]:
    """The changes from the run's config.yaml that resume accepts; ConfigError on any other change."""
    saved_path = run_dir / CONFIG
    if not saved_path.is_file():
        raise RunDirError(f"--resume: {saved_path} is missing; the run cannot be checked against this config")
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    changed = diff_configs(saved, cfg.to_dict())
    unsafe = {
        k: v for k, v in changed.items() if k not in RESUME_SAFE_KEYS and not k.startswith("provenance")
    }
    if unsafe:
        lines = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in unsafe.items())
        raise ConfigError(
            f"--resume refused: the config changed in ways that would not reproduce the run ({lines}). "
            f"Safe to change on resume: {', '.join(sorted(RESUME_SAFE_KEYS))}"
        )
    return changed


def accept_config(
    run: RunDirectory,
    req: TrainRequest,
    changed: dict[str, tuple[Any, Any]],
    at_step: int,
    lr_schedule: dict[str, Any] | None = None,
) -> None:
    """Make req.config the run's config: config.yaml, the manifest's `config`, and on resume each
    accepted change, logged and appended to `config_changes_on_resume` (earlier resumes kept), which
    is what leaves the run's original config recoverable. A resume calls this only once the
    checkpoint has accepted the run's settings, so a refused resume changes none of them."""
    cfg = req.config
    atomic_write_text(req.output / CONFIG, yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))
    fields: dict[str, Any] = {
        "config": {
            "path": req.config_path,
            "sha256": cfg.sha256(),
            "file_sha256": req.config_sha256,
            "resolved": cfg.to_dict(),
            "notes": req.notes,
        }
    }
    for key, (old, new) in changed.items():
        run.log.info(f"resume: config {key} changed {old!r} -> {new!r} (safe to change on resume)")
    if lr_schedule:
        run.log.info(
            f"resume: the learning rate continues from {lr_schedule['lr_at_step']:.3g} at step {at_step} and "
            f"decays to the new end, step {lr_schedule['total_steps'][1]} (warmup is not repeated)"
        )
    if changed:
        entry: dict[str, Any] = {
            "at_step": at_step,
            "changed": {key: [old, new] for key, (old, new) in changed.items()},
        }
        if lr_schedule:
            entry["lr_schedule"] = {"continued": True, **lr_schedule}
        fields["config_changes_on_resume"] = [*run.manifest.get("config_changes_on_resume", []), entry]
    run.update_manifest(**fields)


def metrics_record(
    state: ckpt.TrainState, per_epoch: int, lr: float, grad_norm: torch.Tensor, flops: FlopCounter
) -> dict[str, Any]:
    """One metrics.jsonl line from the window since the last one (the caller starts a new window)."""
    window = state.window
    return {
        "step": state.step,
        "epoch": round(state.step / per_epoch, 4),
        "loss": window["loss_sum"] / window["loss_tokens"],
        "lr": lr,
        "grad_norm": float(grad_norm),
        "tokens": state.tokens_seen,
        "tokens_per_sec": window["tokens"] / window["seconds"],
        "samples_per_sec": window["examples"] / window["seconds"],
        "mfu": flops.mfu(window["tokens"], window["examples"], window["seconds"]),
        "elapsed_s": round(state.loop_seconds, 3),
    }


def summary(
    run: RunDirectory | None,
    state: ckpt.TrainState,
    per_epoch: int,
    checkpoint_seconds: float,
    steps_this_process: int,
    device: torch.device,
    flops: FlopCounter,
) -> dict[str, Any]:
    """The manifest's summary: cumulative over resumes, the loop alone (checkpoint writes apart)."""
    final_loss = None
    if run:
        losses = [r["loss"] for r in run.read_metrics() if "loss" in r]
        final_loss = round(losses[-1], 6) if losses else None
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:  # ru_maxrss is KiB on Linux: the process's peak resident memory
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loop_seconds = state.loop_seconds
    return {
        "global_step": state.step,
        "epochs": round(state.step / per_epoch, 4),
        "final_loss": final_loss,
        "train_runtime_s": round(loop_seconds, 3),
        "train_tokens": state.tokens_seen,
        "tokens_per_sec": round(state.tokens_seen / loop_seconds, 1) if loop_seconds else None,
        "samples_per_sec": round(state.examples_seen / loop_seconds, 2) if loop_seconds else None,
        "peak_memory_mb": round(peak_mb, 1),
        "checkpoint_s": round(checkpoint_seconds, 3),
        "steps_this_process": steps_this_process,
        "mfu": flops.overall_mfu(),
    }


def evaluate_or_record(
    run: RunDirectory, log: Any, evaluate: Any, key: str = "eval"
) -> dict[str, Any] | None:
    """The model is trained and saved whatever happens here: an eval failure is recorded (under
    manifest[key]), not fatal."""
    try:
        return evaluate()
    except Exception as exc:
        run.update_manifest(**{key: {"error": f"{type(exc).__name__}: {exc}"}})
        log.info(f"evaluation failed (the trained model is saved): {type(exc).__name__}: {exc}")
        return None


def record_eval(
    run: RunDirectory, log: Any, result: dict[str, Any], eval_set: str, step: int, key: str = "eval"
) -> None:
    """The eval headline into manifest[key] and a metrics line (`{key}_primary_score`, ...; eval/
    holds the full record). GRPO records its starting model's evaluation under eval_before."""
    headline = {
        "eval_set": eval_set,
        "primary_score": result["primary_score"],
        "n_items": result["scorecard"]["n_items"],
        "format_compliance": result["scorecard"]["format_compliance"],
    }
    run.update_manifest(**{key: headline})
    run.append_metrics(
        {
            "step": step,
            f"{key}_primary_score": result["primary_score"],
            f"{key}_format_compliance": headline["format_compliance"],
            "eval_set": eval_set,
        }
    )
    log.info(f"{key}: primary_score {result['primary_score']:.3f} on {headline['n_items']} items")


def _write_readme(run: RunDirectory) -> None:
    """The evidence index, for completed, failed and interrupted runs alike."""
    from tunix_rt.runs.report import write_run_readme

    try:
        write_run_readme(run.path)
    except Exception as exc:  # the run's own outcome must not be masked by its report
        run.log.info(f"could not write README.md: {type(exc).__name__}: {exc}")
