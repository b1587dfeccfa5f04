"""The SFT recipe, top to bottom: device, run directory, data, model, loop, final model, evidence.

Every component it calls has one job (see docs/architecture.md); this file is the order they run
in and the training step itself, so it can be read without jumping files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from tunix_rt.config import RESUME_SAFE_KEYS, Config, diff_configs
from tunix_rt.data.loader import load_traces
from tunix_rt.data.resolver import resolve_dataset
from tunix_rt.device.envfiles import write_environment_files
from tunix_rt.device.preflight import choose_dtype, resolve_device
from tunix_rt.errors import ConfigError, RunDirError, TrainingError
from tunix_rt.evidence import CONFIG, EVAL_DIR, FINAL_MODEL, RunDirectory, utc_now, versions
from tunix_rt.fsutil import atomic_write_json, atomic_write_text
from tunix_rt.train import checkpoint as ckpt
from tunix_rt.train.batching import collate, epoch_batches, micro_batches, steps_per_epoch
from tunix_rt.train.command import user_command
from tunix_rt.train.distributed import DistContext
from tunix_rt.train.flops import FlopCounter
from tunix_rt.train.model import (
    attention_for,
    build_scratch_model,
    count_parameters,
    load_pretrained,
    train_scratch_tokenizer,
    use_fused_activations,
)
from tunix_rt.train.optim import build_optimizer, build_scheduler
from tunix_rt.train.packing import packing_problem
from tunix_rt.train.render import template_kind
from tunix_rt.train.tokenize import tokenize_traces

RENDER_FILE = "tunix_rt_render.json"


@dataclass
class TrainRequest:
    """Everything `tunix-rt train` decided before training starts."""

    config: Config
    dataset: str
    output: Path
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    config_path: str | None = None
    config_sha256: str | None = None
    notes: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    stop_after_steps: int | None = None
    """Tests only: stop (as if killed) after this many optimizer steps in this process."""


def train(req: TrainRequest) -> dict[str, Any]:
    """Run SFT as the request says; returns the run manifest's summary."""
    cfg, tcfg = req.config, req.config.training
    dist = DistContext.from_env()
    _quiet_library_progress_bars()
    stop = StopSignal()

    # 1. Device first: a device we cannot use is refused before anything is loaded or written.
    choice = resolve_device(dist.device_request(req.device))
    dtype_name = choose_dtype(choice, tcfg.dtype)
    device = torch.device(choice.device)
    attention = attention_for(cfg.model.attn_implementation, device.type)
    dist.init(choice)

    # 2. The run directory (rank 0 writes the evidence; other ranks only read checkpoints).
    command = req.argv or user_command()
    run = (
        RunDirectory.open(req.output, resume=req.resume, overwrite=req.overwrite, command=command)
        if dist.is_main
        else None
    )
    dist.barrier()
    log = run.log if run else _quiet_logger()
    resume_from = ckpt.latest_checkpoint(req.output) if req.resume else None
    changed: dict[str, tuple[Any, Any]] = {}
    if run:
        for stale in ckpt.remove_partial_checkpoints(req.output):
            log.info(f"removed an incomplete checkpoint write: {stale.name}")
        for note in req.notes:
            log.info(note)
        log.info(f"device: {choice.device} ({choice.name}); {choice.reason}; dtype {dtype_name}")
        # A resume's config changes are checked now and recorded only once the checkpoint has
        # accepted the run's settings (_train): a refused resume leaves config.yaml as it was.
        changed = _check_resume_config(req.output, cfg) if req.resume else {}
        if resume_from is None:  # nothing to accept or refuse: a new run, or a resume before any checkpoint
            _accept_config(run, req, changed, at_step=0)
        write_environment_files(req.output, requested=choice.device)
        timings = dict(run.manifest.get("timings", {}))
        if req.resume:
            # The command that started the run stays the one to reproduce it; resumes are listed.
            resumes = [*run.manifest.get("resume_commands", []), command]
            run.manifest["resume_commands"] = resumes
            command = run.manifest.get("command", command)
            timings.setdefault("resumed_at", []).append(utc_now())
        else:
            timings["started_at"] = utc_now()
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
            seed=tcfg.seed,
            error=None,
        )
    else:
        dist.gather_devices(choice.device)

    try:
        with stop.installed():
            summary = _train(
                req, run, log, dist, choice, dtype_name, attention, device, resume_from, stop, changed
            )
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
    return summary


def _train(
    req: TrainRequest,
    run: RunDirectory | None,
    log: Any,
    dist: DistContext,
    choice: Any,
    dtype_name: str,
    attention: str,
    device: torch.device,
    resume_from: Path | None,
    stop: StopSignal,
    resume_config_changes: dict[str, tuple[Any, Any]] | None = None,
) -> dict[str, Any]:
    cfg, tcfg = req.config, req.config.training
    _seed_everything(tcfg.seed)

    # 3. Data: resolve, load (no silent skipping), and keep the dataset's identity for the manifest.
    resolved = resolve_dataset(req.dataset)
    loaded = load_traces(resolved.path, skip_invalid=cfg.data.skip_invalid)
    if not loaded.traces:
        raise TrainingError(f"dataset {resolved.path} has no valid traces")
    log.info(
        f"dataset: {resolved.path} ({len(loaded.traces)} traces, {loaded.skipped} skipped, sha256 {loaded.sha256[:12]})"
    )

    # 4. Tokenizer and model: from the checkpoint on resume, else from the hub/local dir or scratch.
    if resume_from is not None:
        tokenizer, model = load_pretrained(cfg.model, attention, source=resume_from)
        log.info(f"resuming from {resume_from.name}")
    elif cfg.model.init == "scratch":
        tokenizer = train_scratch_tokenizer(loaded.traces, cfg.system_instruction, cfg.model.vocab_size)
        model = build_scratch_model(
            cfg.model, tokenizer, max_positions=tcfg.max_seq_length, attention=attention
        )
    else:
        tokenizer, model = load_pretrained(cfg.model, attention)
    n_params = count_parameters(model)
    model.to(device)
    log.info(
        f"model: {cfg.model.model_id or cfg.model.architecture + ' (scratch)'}, {n_params / 1e6:.2f}M parameters"
    )
    if use_fused_activations(model):
        log.info("GELU: gelu_new runs as torch's fused tanh GELU (the same function, one kernel)")
    compute_dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype_name]
    # Packed rows only when the model provably keeps packed examples apart (see train/packing.py).
    problem = packing_problem(model, compute_dtype) if cfg.data.packing else "data.packing is false"
    packed = problem is None
    layout = "packed" if packed else f"padded: {problem}"
    log.info(f"batch layout: {layout}")

    # 5. Tokens: prompt + completion + EOS, loss on the completion only, too-long examples counted.
    data = tokenize_traces(
        loaded.traces,
        tokenizer,
        system_instruction=cfg.system_instruction,
        max_seq_length=tcfg.max_seq_length,
    )
    if data.too_long:
        log.info(
            f"{data.too_long} of {len(loaded.traces)} examples are longer than max_seq_length="
            f"{tcfg.max_seq_length} and are left out whole (first: lines {[i + 1 for i in data.too_long_examples[:5]]})"
        )

    # 6. The schedule: steps from max_steps, else from num_epochs (a float).
    effective_batch = tcfg.batch_size * tcfg.gradient_accumulation_steps * dist.world_size
    per_epoch = steps_per_epoch(len(data), effective_batch)
    total_steps = tcfg.max_steps or max(1, math.ceil(tcfg.num_epochs * per_epoch))
    shuffle_seed = cfg.data.shuffle_seed if cfg.data.shuffle_seed is not None else tcfg.seed
    lengths = data.lengths

    architecture = type(model).__name__  # before FSDP renames the class (FSDPLlamaForCausalLM)
    model = dist.wrap(model, cfg.training.strategy)
    if tcfg.compile:
        # dynamic=True: packed rows change shape (row count, width) from step to step; one graph serves them.
        model = torch.compile(model, dynamic=True)
    optimizer = build_optimizer(model, tcfg.optimizer, tcfg.learning_rate, tcfg.weight_decay, device)
    scheduler = build_scheduler(optimizer, tcfg.lr_scheduler, tcfg.warmup_steps, total_steps)

    step, epoch, batch_in_epoch, tokens_seen, examples_seen = 0, 0, 0, 0, 0
    loop_seconds = 0.0
    window = _empty_window()
    # What a checkpoint must agree on to continue the very same run.
    identity = {
        "dataset_sha256": loaded.sha256,
        "world_size": dist.world_size,
        "effective_batch": effective_batch,
        "dtype": dtype_name,
    }
    scaler = torch.amp.GradScaler(device.type, enabled=dtype_name == "float16")
    if resume_from is not None:
        state = ckpt.load_training_state(
            resume_from, model, optimizer, scheduler, rank=dist.rank, scaler=scaler
        )
        changed = {k: (state.get(k), v) for k, v in identity.items() if state.get(k) != v}
        if changed:
            lines = "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items())
            raise RunDirError(
                f"--resume: {resume_from.name} was trained with other settings ({lines}); continuing would "
                "not reproduce the run (keep the dataset, the number of processes, the batch and the dtype)"
            )
        if run:
            _accept_config(run, req, resume_config_changes or {}, at_step=int(state["step"]))
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        tokens_seen, examples_seen = state["tokens_seen"], state["examples_seen"]
        loop_seconds, window = state["loop_seconds"], state["window"]
    if run and req.resume:
        dropped = run.truncate_metrics_after(step)
        if dropped:
            log.info(f"dropped {dropped} metric lines logged after step {step} (those steps are redone)")
    if resume_from is not None and step >= total_steps:
        log.info(f"{resume_from.name} is already at step {step} >= {total_steps}; nothing left to train")

    flops = FlopCounter.for_model(model, n_params, choice, dtype_name, dist.world_size)
    if run:
        run.update_manifest(
            dataset={
                "spec": req.dataset,
                "key": resolved.key,
                "path": str(resolved.path),
                "sha256": loaded.sha256,
                "count": len(loaded.traces),
                "skipped": loaded.skipped,
                "duplicates": loaded.duplicates,
                "conversions": loaded.conversions,
                "too_long": data.too_long,
                "trained_examples": len(data),
            },
            model={
                "id": cfg.model.model_id,
                "init": cfg.model.init,
                "revision": cfg.model.revision,
                "architecture": architecture,
                "parameters": n_params,
                "dtype": dtype_name,
                "attn_implementation": attention,
            },
            tokenizer={
                "class": type(tokenizer).__name__,
                "vocab_size": len(tokenizer),
                "template": template_kind(tokenizer),
                "trained_from_scratch": cfg.model.init == "scratch",
            },
            plan={
                "examples": len(data),
                "effective_batch": effective_batch,
                "steps_per_epoch": per_epoch,
                "total_steps": total_steps,
                "start_step": step,
                "peak_gflops": flops.peak_gflops,
                "layout": layout,
            },
        )
    log.info(
        f"plan: {len(data)} examples, effective batch {effective_batch} "
        f"({tcfg.batch_size} x {tcfg.gradient_accumulation_steps} accumulation x {dist.world_size} processes), "
        f"{total_steps} steps ({total_steps / per_epoch:.2f} epochs), {tcfg.optimizer}, lr {tcfg.learning_rate}"
    )

    def save(reason: str) -> Path:
        state = {
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "tokens_seen": tokens_seen,
            "examples_seen": examples_seen,
            "loop_seconds": loop_seconds,
            "window": window,  # the metrics window in progress, so the next logged line is exact
            "config_sha256": req.config.sha256(),
            **identity,
            "saved_at": utc_now(),
            "reason": reason,
        }
        path = ckpt.save_checkpoint(
            req.output,
            model=model,
            tokenizer=tokenizer,
            optimizer=optimizer,
            scheduler=scheduler,
            state=state,
            keep=tcfg.save_total_limit,
            is_main=dist.is_main,
            scaler=scaler,
        )
        log.info(f"checkpoint: {path.relative_to(req.output)} ({reason})")
        dist.barrier()
        return path

    # 7. The loop. Host syncs (.item()) happen once per optimizer step for the NaN check, and
    #    the rest of the numbers are read only at logging steps.
    model.train()
    n_micro = tcfg.gradient_accumulation_steps * dist.world_size
    pad_id = tokenizer.pad_token_id
    steps_this_process = 0
    checkpoint_seconds, first_step_seconds = 0.0, 0.0
    stop.arm()  # from here on Ctrl-C / SIGTERM stop at the next step boundary, with a checkpoint
    bar = tqdm(
        total=total_steps,
        initial=step,
        unit="step",
        dynamic_ncols=True,
        file=sys.stderr,
        disable=not dist.is_main or not sys.stderr.isatty(),
    )
    try:
        while step < total_steps:
            batches = epoch_batches(
                lengths,
                effective_batch,
                seed=shuffle_seed,
                epoch=epoch,
                shuffle=cfg.data.shuffle,
                bucket_window=cfg.data.bucket_window,
            )
            while batch_in_epoch < len(batches) and step < total_steps:
                started = time.perf_counter()
                batch = batches[batch_in_epoch]
                # Normalise by the completion tokens of the whole effective batch (all ranks, all
                # micro-batches), so accumulation and data parallelism equal one big batch.
                loss_tokens = int(data.completion_lengths[batch].sum())
                step_loss = torch.zeros((), device=device)
                for micro, is_last in dist.my_micro_batches(micro_batches(batch, lengths, n_micro)):
                    with dist.sync_context(model, is_last):
                        loss_sum = _micro_batch_loss(
                            model, data, micro, pad_id, packed, device, compute_dtype
                        )
                        scaler.scale(loss_sum * dist.grad_scale / loss_tokens).backward()
                    step_loss += loss_sum.detach()
                step_loss = dist.all_reduce_sum(step_loss)
                loss_value = step_loss.item() / loss_tokens
                if not math.isfinite(loss_value):
                    raise TrainingError(
                        f"loss is {loss_value} at step {step + 1} (epoch {epoch}, batch {batch_in_epoch}): "
                        "training stopped before the update; lower training.learning_rate or use float32"
                    )
                scaler.unscale_(optimizer)
                grad_norm = _clip_grad_norm(model, tcfg.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)

                step += 1
                batch_in_epoch += 1
                steps_this_process += 1
                batch_tokens = int(lengths[batch].sum())
                tokens_seen += batch_tokens
                examples_seen += len(batch)
                elapsed = time.perf_counter() - started
                if steps_this_process == 1:
                    first_step_seconds = elapsed  # includes torch.compile's warm-up when enabled
                loop_seconds += elapsed
                window["tokens"] += batch_tokens
                window["examples"] += len(batch)
                window["seconds"] += elapsed
                window["loss_sum"] += float(step_loss)
                window["loss_tokens"] += loss_tokens
                bar.update(1)

                if step % tcfg.logging_steps == 0 or step == total_steps:
                    record = {
                        "step": step,
                        "epoch": round(step / per_epoch, 4),
                        "loss": window["loss_sum"] / window["loss_tokens"],
                        "lr": scheduler.get_last_lr()[0],
                        "grad_norm": float(grad_norm),
                        "tokens": tokens_seen,
                        "tokens_per_sec": window["tokens"] / window["seconds"],
                        "samples_per_sec": window["examples"] / window["seconds"],
                        "mfu": flops.mfu(window["tokens"], window["examples"], window["seconds"]),
                        "elapsed_s": round(loop_seconds, 3),
                    }
                    window = _empty_window()
                    bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_sec']:.0f}")
                    if run:
                        run.append_metrics(record)
                    log.info(
                        f"step {step}/{total_steps} loss {record['loss']:.4f} lr {record['lr']:.2e} "
                        f"grad_norm {record['grad_norm']:.3f} tok/s {record['tokens_per_sec']:.0f}"
                    )
                last_of_run = step >= total_steps
                if tcfg.save_every_steps and step % tcfg.save_every_steps == 0 and not last_of_run:
                    t0 = time.perf_counter()
                    save("periodic")
                    checkpoint_seconds += time.perf_counter() - t0
                if (
                    req.stop_after_steps is not None
                    and steps_this_process >= req.stop_after_steps
                    and not last_of_run
                ):
                    raise _SimulatedKill()
                if dist.any(stop.requested):
                    bar.close()
                    stop.checkpoint = f"checkpoint {save('interrupted').name} saved"
                    raise KeyboardInterrupt
            if batch_in_epoch >= len(batches):
                epoch, batch_in_epoch = epoch + 1, 0
    finally:
        bar.close()
    stop.disarm()
    t0 = time.perf_counter()
    save("final")
    checkpoint_seconds += time.perf_counter() - t0

    # 8. The final model: a plain save_pretrained directory, loadable without tunix-rt.
    final_dir = req.output / FINAL_MODEL
    unwrapped = dist.unwrap(model)
    full_state, _ = ckpt.gather_full_state(model)  # a collective under FSDP: every rank takes part
    if dist.is_main:
        _save_final_model(unwrapped, full_state, tokenizer, final_dir, cfg)
    dist.barrier()

    summary = _summary(
        run, step, per_epoch, loop_seconds, checkpoint_seconds, tokens_seen, examples_seen,
        steps_this_process, device, flops,
    )  # fmt: skip
    if not run:
        return summary
    # The summary keys exactly; the loop's own details beside them.
    loop_detail = {k: summary.pop(k) for k in ("checkpoint_s", "steps_this_process", "mfu")}
    loop_detail["first_step_s"] = round(first_step_seconds, 3)  # includes torch.compile's warm-up
    loop_detail["peak_gflops_per_device"] = flops.peak_gflops
    run.update_manifest(summary=summary, loop=loop_detail)
    summary = {**summary, **loop_detail}  # callers (tests, the demo) see both

    # 9. Evaluation (optional) joins the manifest and the metrics.
    if tcfg.eval_set:
        from tunix_rt.eval.runner import evaluate

        log.info(f"evaluating on {tcfg.eval_set}")
        result = _evaluate_or_record(
            run,
            log,
            lambda: evaluate(
                final_dir,
                tcfg.eval_set,
                req.output / EVAL_DIR,
                device=choice.device,
                batch_size=tcfg.eval_batch_size,
                max_new_tokens=tcfg.eval_max_new_tokens,
                # A sharded (FSDP) model cannot generate on one rank: evaluate from final_model/.
                model_obj=None if cfg.training.strategy == "fsdp" and dist.active else unwrapped,
                tokenizer=tokenizer,
            ),
        )
    if tcfg.eval_set and result is not None:
        headline = {
            "eval_set": tcfg.eval_set,
            "primary_score": result["primary_score"],
            "n_items": result["scorecard"]["n_items"],
            "format_compliance": result["scorecard"]["format_compliance"],
        }
        run.update_manifest(eval=headline)
        run.append_metrics(
            {
                "step": step,
                "eval_primary_score": result["primary_score"],
                "eval_format_compliance": headline["format_compliance"],
                "eval_set": tcfg.eval_set,
            }
        )
        log.info(f"eval: primary_score {result['primary_score']:.3f} on {headline['n_items']} items")

    run.set_status("completed")
    log.info(f"completed: {step} steps, final loss {summary['final_loss']}, evidence in {req.output}")
    return summary


# --- helpers used once by the recipe above ------------------------------------------------------


class StopSignal:
    """Ctrl-C and SIGTERM during the loop stop it at the next step boundary, with a checkpoint.

    Outside the loop (loading, the final save, evaluation) they interrupt at once, as usual.
    Stopping at a boundary keeps the checkpoint's weights and step counter consistent, and under
    torchrun every rank stops at the same step (the flag is all-reduced each step).
    """

    def __init__(self) -> None:
        self.armed = False
        self.requested = False
        self.checkpoint: str | None = None

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.armed:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signal handlers can only be installed from the main thread
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _empty_window() -> dict[str, Any]:
    return {"tokens": 0, "examples": 0, "seconds": 0.0, "loss_sum": 0.0, "loss_tokens": 0}


def _evaluate_or_record(run: RunDirectory, log: Any, evaluate: Any) -> dict[str, Any] | None:
    """The model is trained and saved whatever happens here: an eval failure is recorded, not fatal."""
    try:
        return evaluate()
    except Exception as exc:
        run.update_manifest(eval={"error": f"{type(exc).__name__}: {exc}"})
        log.info(f"evaluation failed (the trained model is saved): {type(exc).__name__}: {exc}")
        return None


def _write_readme(run: RunDirectory) -> None:
    """The evidence index, for completed, failed and interrupted runs alike."""
    from tunix_rt.runs.report import write_run_readme

    try:
        write_run_readme(run.path)
    except Exception as exc:  # the run's own outcome must not be masked by its report
        run.log.info(f"could not write README.md: {type(exc).__name__}: {exc}")


class _SimulatedKill(BaseException):
    """Raised by TrainRequest.stop_after_steps: ends the process's work like kill -9 would."""


def _micro_batch_loss(
    model: Any,
    data: Any,
    micro: np.ndarray,
    pad_id: int,
    packed: bool,
    device: torch.device,
    compute_dtype: torch.dtype | None,
) -> torch.Tensor:
    """Summed cross-entropy over the micro-batch's completion tokens (normalised by the caller)."""
    if len(micro) == 0:
        # A rank with no examples at the tail of an epoch still joins the gradient all-reduce.
        dummy = torch.full((1, 1), pad_id, device=device)
        return model(input_ids=dummy, use_cache=False).logits.sum() * 0.0
    batch = collate(data, micro, pad_id, packed=packed).to(device)
    with torch.autocast(device.type, dtype=compute_dtype or torch.float32, enabled=compute_dtype is not None):
        # use_cache=False: a training forward has no use for a KV cache (building one costs a
        # concatenation per layer), and transformers only reads packed position ids without one.
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
    labels = batch.labels
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), reduction="sum")


def _quiet_library_progress_bars() -> None:
    # transformers 5 draws a progress bar for every save_pretrained; the run log should read cleanly.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # We pad on the right and pass no attention mask on purpose (see train/batching.collate):
    # transformers' "input_ids may be padded" advice does not apply and would only add noise.
    logging.getLogger("transformers.modeling_utils").addFilter(
        lambda record: "attention_mask" not in record.getMessage()
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _clip_grad_norm(model: Any, max_norm: float | None) -> torch.Tensor:
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm is None:
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


def _check_resume_config(run_dir: Path, cfg: Config) -> dict[str, tuple[Any, Any]]:
    """The changes from the run's config.yaml that resume accepts; ConfigError on any other change."""
    import yaml

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


def _accept_config(
    run: RunDirectory, req: TrainRequest, changed: dict[str, tuple[Any, Any]], at_step: int
) -> None:
    """Make req.config the run's config: config.yaml, the manifest's `config`, and on resume each
    accepted change, logged and appended to `config_changes_on_resume` (earlier resumes kept), which
    is what leaves the run's original config recoverable. A resume calls this only once the
    checkpoint has accepted the run's settings, so a refused resume changes none of them."""
    cfg = req.config
    atomic_write_text(req.output / CONFIG, _yaml(cfg.to_dict()))
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
    if changed:
        entry = {"at_step": at_step, "changed": {key: [old, new] for key, (old, new) in changed.items()}}
        fields["config_changes_on_resume"] = [*run.manifest.get("config_changes_on_resume", []), entry]
    run.update_manifest(**fields)


def _save_final_model(model: Any, state: dict, tokenizer: Any, final_dir: Path, cfg: Config) -> None:
    """save_pretrained into a temp directory, then rename: final_model/ is complete or absent."""
    import shutil

    tmp = final_dir.with_name(f".tmp-{final_dir.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    atomic_write_json(
        tmp / RENDER_FILE,
        {"template": template_kind(tokenizer), "system_instruction": cfg.system_instruction},
    )
    if final_dir.exists():
        shutil.rmtree(final_dir)
    tmp.rename(final_dir)


def _summary(
    run: RunDirectory | None,
    step: int,
    per_epoch: int,
    loop_seconds: float,
    checkpoint_seconds: float,
    tokens_seen: int,
    examples_seen: int,
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
    return {
        "global_step": step,
        "epochs": round(step / per_epoch, 4),
        "final_loss": final_loss,
        "train_runtime_s": round(loop_seconds, 3),
        "train_tokens": tokens_seen,
        "tokens_per_sec": round(tokens_seen / loop_seconds, 1) if loop_seconds else None,
        "samples_per_sec": round(examples_seen / loop_seconds, 2) if loop_seconds else None,
        "peak_memory_mb": round(peak_mb, 1),
        "checkpoint_s": round(checkpoint_seconds, 3),
        "steps_this_process": steps_this_process,
        "mfu": flops.overall_mfu(),
    }


def _yaml(obj: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)


def _quiet_logger() -> Any:
    import logging

    logger = logging.getLogger("tunix_rt.run.worker")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger
