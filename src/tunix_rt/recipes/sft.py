"""Supervised fine-tuning, top to bottom: device, run directory, data, model, optimizer, the loop,
the final model, evaluation, the summary.

This file is the order things happen in and the training step itself; every part it calls is a
component with one job (docs/architecture.md lists them). Read `train` first, then `_loop`.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import torch
from tqdm import tqdm

from tunix_rt.data.loader import load_traces
from tunix_rt.data.resolver import resolve_dataset
from tunix_rt.errors import TrainingError
from tunix_rt.evidence import EVAL_BEFORE_DIR, EVAL_DIR, FINAL_MODEL
from tunix_rt.train import record
from tunix_rt.train.batching import epoch_batches, plan_steps
from tunix_rt.train.before_after import record_before, record_lift, render_settings
from tunix_rt.train.checkpoint import (
    CHECKPOINTS,
    Checkpointer,
    TrainState,
    checkpoint_name,
    empty_window,
    gather_full_state,
)
from tunix_rt.train.distributed import DistContext
from tunix_rt.train.export import save_final_model
from tunix_rt.train.flops import FlopCounter
from tunix_rt.train.lora import apply_lora, enable_gradient_checkpointing
from tunix_rt.train.model import (
    build_scratch_model,
    count_parameters,
    load_pretrained,
    model_source,
    train_scratch_tokenizer,
    use_fused_activations,
)
from tunix_rt.train.optim import build_optimizer, build_scheduler, continue_schedule
from tunix_rt.train.packing import packing_problem
from tunix_rt.train.render import template_kind
from tunix_rt.train.request import TrainRequest
from tunix_rt.train.runtime import RunDevice, quiet_library_progress_bars, resolve_run_device, seed_everything
from tunix_rt.train.sharded import PendingWeights, allocate, is_sharded, load_model_shards, materialise
from tunix_rt.train.step import clip_grad_norm, micro_batch_loss
from tunix_rt.train.stop import StopSignal
from tunix_rt.train.tokenize import tokenize_traces
from tunix_rt.train.trackers import check_installed
from tunix_rt.train.validation import VALIDATION_KEY, best_step, split_traces, validation_loss


def train(req: TrainRequest) -> dict[str, Any]:
    """Run SFT as the request says; returns the run manifest's summary (with the loop's details)."""
    # 0. A tracker in training.report_to whose package is missing is refused before anything starts.
    check_installed(req.config.training.report_to)
    dist = DistContext.from_env()
    quiet_library_progress_bars()
    # 1. Device first: a device we cannot use is refused before anything is loaded or written.
    dev = resolve_run_device(dist, req.device, req.config)
    # 2. The run directory (rank 0 writes the evidence; other ranks only read checkpoints).
    rec = record.open_run(req, dist, dev)
    stop = StopSignal()
    with record.recorded_outcome(rec, stop, dist):
        return _sft(req, dist, dev, rec, stop)


def _sft(
    req: TrainRequest, dist: DistContext, dev: RunDevice, rec: record.RunRecord, stop: StopSignal
) -> dict:
    cfg, tcfg, log = req.config, req.config.training, rec.log
    seed_everything(tcfg.seed)

    # 3. Data: resolve, load (no silent skipping), and keep the dataset's identity for the manifest.
    resolved = resolve_dataset(req.dataset)
    loaded = load_traces(resolved.path, skip_invalid=cfg.data.skip_invalid)
    if not loaded.traces:
        raise TrainingError(f"dataset {resolved.path} has no valid traces")
    log.info(
        f"dataset: {resolved.path} ({len(loaded.traces)} traces, {loaded.skipped} skipped, sha256 {loaded.sha256[:12]})"
    )

    # Validation examples (data.validation) are held out here, before anything sees the data.
    split = split_traces(loaded.traces, cfg.data.validation, tcfg.seed, skip_invalid=cfg.data.skip_invalid)
    if split.validation:
        log.info(f"validation: {len(split.validation)} traces from {split.source}, {len(split.train)} train")

    # 4. Tokenizer and model: from the checkpoint on resume (a LoRA checkpoint holds only the
    # adapters: its base comes from the source again), else from the source or scratch.
    # Under FSDP `model` is on the meta device and `pending` says where its weights come from.
    source = model_source(cfg.model) if cfg.model.init == "pretrained" else None
    tokenizer, model, pending = _load_model(req, dist, dev, rec, source, split.train)
    n_params = count_parameters(model)
    dist.place(model, dev.device, tcfg.strategy)
    eval_before = _eval_before(req, dist, dev, rec, model, tokenizer, pending)
    log.info(
        f"model: {cfg.model.model_id or cfg.model.architecture + ' (scratch)'}, {n_params / 1e6:.2f}M parameters"
    )
    if use_fused_activations(model):
        log.info("GELU: gelu_new runs as torch's fused tanh GELU (the same function, one kernel)")
    architecture = type(model).__name__  # before LoRA and FSDP rename the class (FSDPLlamaForCausalLM)
    model, trainable = _adapt(req, dev, log, model)

    # 5. Tokens: prompt + completion + EOS, loss on the completion only, too-long examples counted.
    data = tokenize_traces(
        split.train,
        tokenizer,
        system_instruction=cfg.system_instruction,
        max_seq_length=tcfg.max_seq_length,
    )
    val_data = _tokenize(split.validation, tokenizer, cfg) if split.validation else None
    if data.too_long:
        log.info(
            f"{data.too_long} of {len(loaded.traces)} examples are longer than max_seq_length="
            f"{tcfg.max_seq_length} and are left out whole (first: lines {[i + 1 for i in data.too_long_examples[:5]]})"
        )

    # 6. Optimizer and schedule: steps from max_steps, else from num_epochs (a float).
    effective_batch = tcfg.batch_size * tcfg.gradient_accumulation_steps * dist.world_size
    per_epoch, total_steps = plan_steps(len(data), effective_batch, tcfg.max_steps, tcfg.num_epochs)
    model = _wrap(dist, dev, model, tcfg.strategy, pending)
    # Packed rows only when the model provably keeps packed examples apart (see train/packing.py).
    # After wrapping: under FSDP the check runs sharded (every rank alike), never on a full copy.
    problem = (
        packing_problem(dist.unwrap(model), dev.compute_dtype)
        if cfg.data.packing
        else "data.packing is false"
    )
    dist.reshard(model)
    layout = "packed" if problem is None else f"padded: {problem}"
    log.info(f"batch layout: {layout}")
    if tcfg.compile:
        # dynamic=True: packed rows change shape (row count, width) from step to step; one graph serves them.
        model = torch.compile(model, dynamic=True)
    optimizer = build_optimizer(model, tcfg.optimizer, tcfg.learning_rate, tcfg.weight_decay, dev.device)
    scheduler = build_scheduler(optimizer, tcfg.lr_scheduler, tcfg.warmup_steps, total_steps)
    scaler = torch.amp.GradScaler(dev.device.type, enabled=dev.dtype_name == "float16")
    checkpoints = Checkpointer(
        req.output, model, tokenizer, optimizer, scheduler, scaler,
        identity={
            "dataset_sha256": loaded.sha256,
            "world_size": dist.world_size,
            "effective_batch": effective_batch,
            "dtype": dev.dtype_name,
        },
        config_sha256=cfg.sha256(), keep=tcfg.save_total_limit, dist=dist, log=log,
        sharded=dist.shards_first(tcfg.strategy),
    )  # fmt: skip

    # 7. Resume: the checkpoint restores the state (and refuses another dataset, batch, dtype, world size).
    state = TrainState()
    if rec.resume_from is not None:
        state = checkpoints.restore(rec.resume_from)
        rec.record_process_change(state.step, checkpoints.restored_world_size, dist.world_size)
        # A new total (max_steps / num_epochs changed): the LR continues from its value at this
        # step and decays to the new end; the same total leaves the restored schedule exact.
        lr_schedule = continue_schedule(scheduler, total_steps, state.step)
        rec.accept_resumed_config(at_step=state.step, lr_schedule=lr_schedule)
        if state.step >= total_steps:
            log.info(
                f"{rec.resume_from.name} is already at step {state.step} >= {total_steps}; nothing left to train"
            )
    if rec.run and req.resume:
        dropped = rec.run.truncate_metrics_after(state.step)
        if dropped:
            log.info(
                f"dropped {dropped} metric lines logged after step {state.step} (those steps are redone)"
            )

    flops = FlopCounter.for_model(model, n_params, dev.peak_gflops, dist.world_size)
    rec.update_manifest(
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
            "source": source.manifest() if source else None,
            "architecture": architecture,
            "parameters": n_params,
            "trainable_parameters": trainable,
            "dtype": dev.dtype_name,
            "attn_implementation": dev.attention,
            "gradient_checkpointing": tcfg.gradient_checkpointing,
        },
        lora={**cfg.lora.model_dump(mode="json"), "trainable_parameters": trainable} if cfg.lora else None,
        validation={
            "source": split.source,
            "count": len(split.validation),
            "examples": len(val_data) if val_data is not None else 0,
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
            "start_step": state.step,
            "peak_gflops": flops.peak_gflops,
            "layout": layout,
        },
    )
    log.info(
        f"plan: {len(data)} examples, effective batch {effective_batch} "
        f"({tcfg.batch_size} x {tcfg.gradient_accumulation_steps} accumulation x {dist.world_size} processes), "
        f"{total_steps} steps ({total_steps / per_epoch:.2f} epochs), {tcfg.optimizer}, lr {tcfg.learning_rate}"
    )

    # 8. The loop (below), then a final checkpoint.
    loop = _Loop(
        dist, dev, rec, stop, checkpoints, flops, data, packed=problem is None,
        per_epoch=per_epoch, total_steps=total_steps, effective_batch=effective_batch, val_data=val_data,
    )  # fmt: skip
    loop.run(req, state)
    checkpoints.save(state, "final")
    if val_data is not None:
        _record_best(rec)

    # 9. The final model: a plain save_pretrained directory, loadable without tunix-rt.
    final_dir = req.output / FINAL_MODEL
    unwrapped = dist.unwrap(model)
    # A collective under FSDP: every rank takes part. LoRA saves its adapters and a merged copy instead.
    full_state = gather_full_state(model)[0] if cfg.lora is None else None
    if dist.is_main:
        save_final_model(unwrapped, full_state, tokenizer, final_dir, cfg.system_instruction)
    dist.release()  # the last collective; what follows is rank 0's alone

    summary = record.summary(
        rec.run, state, per_epoch, checkpoints.seconds, loop.steps_this_process, dev.device, flops
    )
    if not rec.run:
        return summary
    # The summary keys exactly; the loop's own details beside them.
    loop_detail = {k: summary.pop(k) for k in ("checkpoint_s", "steps_this_process", "mfu")}
    loop_detail["first_step_s"] = round(loop.first_step_seconds, 3)  # includes torch.compile's warm-up
    loop_detail["peak_gflops_per_device"] = flops.peak_gflops
    rec.update_manifest(summary=summary, loop=loop_detail)
    summary = {**summary, **loop_detail}  # callers (tests, the demo) see both

    # 10. Evaluation (optional) joins the manifest and the metrics. It reads final_model/ the way
    #     `tunix-rt eval RUN` does (same dtype, rendering, max_new_tokens), so both give one score.
    if tcfg.eval_set:
        from tunix_rt.eval.runner import evaluate

        log.info(f"evaluating on {tcfg.eval_set}")
        result = record.evaluate_or_record(
            rec.run,
            log,
            lambda: evaluate(
                final_dir,
                tcfg.eval_set,
                req.output / EVAL_DIR,
                device=dev.choice.device,
                batch_size=tcfg.eval_batch_size,
                max_new_tokens=tcfg.eval_max_new_tokens,
            ),
        )  # fmt: skip
        if result is not None:
            record.record_eval(rec.run, log, result, tcfg.eval_set, state.step)
            _record_lift(rec, eval_before, result, tcfg.eval_set)

    rec.run.set_status("completed")
    log.info(f"completed: {state.step} steps, final loss {summary['final_loss']}, evidence in {req.output}")
    return summary


class _Loop:
    """The training loop of `_sft`, with what it needs in reach (set up once, above)."""

    def __init__(
        self,
        dist: DistContext,
        dev: RunDevice,
        rec: record.RunRecord,
        stop: StopSignal,
        checkpoints: Checkpointer,
        flops: FlopCounter,
        data: Any,
        *,
        packed: bool,
        per_epoch: int,
        total_steps: int,
        effective_batch: int,
        val_data: Any = None,
    ) -> None:
        self.dist, self.dev, self.rec, self.stop = dist, dev, rec, stop
        self.val_data = val_data
        self.checkpoints, self.flops, self.data, self.packed = checkpoints, flops, data, packed
        self.per_epoch, self.total_steps, self.effective_batch = per_epoch, total_steps, effective_batch
        self.steps_this_process = 0
        self.first_step_seconds = 0.0

    def run(self, req: TrainRequest, state: TrainState) -> None:
        """Train from `state` to total_steps, updating `state` in place.

        Host syncs (.item()) happen once per optimizer step for the NaN check; the rest of the
        numbers are read only at logging steps.
        """
        cfg, tcfg, dist = req.config, req.config.training, self.dist
        model, optimizer = self.checkpoints.model, self.checkpoints.optimizer
        scheduler, scaler = self.checkpoints.scheduler, self.checkpoints.scaler
        data, lengths, device = self.data, self.data.lengths, self.dev.device
        pad_id, accumulation = self.checkpoints.tokenizer.pad_token_id, tcfg.gradient_accumulation_steps
        shuffle_seed = cfg.data.shuffle_seed if cfg.data.shuffle_seed is not None else tcfg.seed
        model.train()
        self.stop.arm()  # from here on Ctrl-C / SIGTERM stop at the next step boundary, with a checkpoint
        bar = tqdm(
            total=self.total_steps, initial=state.step, unit="step", dynamic_ncols=True, file=sys.stderr,
            disable=not dist.is_main or not sys.stderr.isatty(),
        )  # fmt: skip
        try:
            while state.step < self.total_steps:
                batches = epoch_batches(
                    lengths, self.effective_batch, seed=shuffle_seed, epoch=state.epoch,
                    shuffle=cfg.data.shuffle, bucket_window=cfg.data.bucket_window,
                )  # fmt: skip
                while state.batch_in_epoch < len(batches) and state.step < self.total_steps:
                    started = time.perf_counter()
                    batch = batches[state.batch_in_epoch]
                    # Normalise by the completion tokens of the whole effective batch (all ranks, all
                    # micro-batches), so accumulation and data parallelism equal one big batch.
                    loss_tokens = int(data.completion_lengths[batch].sum())
                    step_loss = torch.zeros((), device=device)
                    for micro, is_last in dist.my_micro_batches(batch, lengths, accumulation):
                        with dist.sync_context(model, is_last):
                            loss_sum = micro_batch_loss(
                                model, data, micro, pad_id, self.packed, device, self.dev.compute_dtype
                            )
                            scaler.scale(loss_sum * dist.grad_scale / loss_tokens).backward()
                        step_loss += loss_sum.detach()
                    step_loss = dist.all_reduce_sum(step_loss)
                    loss_value = step_loss.item() / loss_tokens
                    if not math.isfinite(loss_value):
                        raise TrainingError(
                            f"loss is {loss_value} at step {state.step + 1} (epoch {state.epoch}, batch "
                            f"{state.batch_in_epoch}): training stopped before the update; lower "
                            "training.learning_rate or use float32"
                        )
                    scaler.unscale_(optimizer)
                    grad_norm = clip_grad_norm(model, tcfg.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)

                    self._count(state, batch, started, float(step_loss), loss_tokens)
                    bar.update(1)
                    self._after_step(state, tcfg, grad_norm, bar)
                if state.batch_in_epoch >= len(batches):
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        finally:
            bar.close()
        self.stop.disarm()

    def _count(
        self, state: TrainState, batch: Any, started: float, loss_sum: float, loss_tokens: int
    ) -> None:
        """Advance the state by one optimizer step (counters, data position, metrics window)."""
        state.step += 1
        state.batch_in_epoch += 1
        self.steps_this_process += 1
        batch_tokens = int(self.data.lengths[batch].sum())
        state.tokens_seen += batch_tokens
        state.examples_seen += len(batch)
        elapsed = time.perf_counter() - started
        if self.steps_this_process == 1:
            self.first_step_seconds = elapsed  # includes torch.compile's warm-up when enabled
        state.loop_seconds += elapsed
        window = state.window
        window["tokens"] += batch_tokens
        window["examples"] += len(batch)
        window["seconds"] += elapsed
        window["loss_sum"] += loss_sum
        window["loss_tokens"] += loss_tokens

    def _validate(self, state: TrainState, tcfg: Any) -> None:
        """Validation loss into metrics.jsonl (every rank computes it: the forwards stay in step)."""
        loss = validation_loss(
            self.checkpoints.model, self.val_data, self.checkpoints.tokenizer.pad_token_id, self.packed,
            self.dev.device, self.dev.compute_dtype, tcfg.batch_size,
        )  # fmt: skip
        self.rec.append_metrics({"step": state.step, VALIDATION_KEY: round(loss, 6)})
        self.rec.log.info(f"step {state.step}/{self.total_steps} validation loss {loss:.4f}")

    def _after_step(self, state: TrainState, tcfg: Any, grad_norm: torch.Tensor, bar: Any) -> None:
        """Log a metrics line, save a periodic checkpoint, or stop with one, as due at this step."""
        step, total = state.step, self.total_steps
        if step % tcfg.logging_steps == 0 or step == total:
            lr = self.checkpoints.scheduler.get_last_lr()[0]
            line = record.metrics_record(state, self.per_epoch, lr, grad_norm, self.flops)
            state.window = empty_window()
            bar.set_postfix(loss=f"{line['loss']:.4f}", tok_s=f"{line['tokens_per_sec']:.0f}")
            self.rec.append_metrics(line)
            self.rec.log.info(
                f"step {step}/{total} loss {line['loss']:.4f} lr {line['lr']:.2e} "
                f"grad_norm {line['grad_norm']:.3f} tok/s {line['tokens_per_sec']:.0f}"
            )
        if self.val_data is not None and (step % (tcfg.eval_steps or total) == 0 or step == total):
            self._validate(state, tcfg)
        if tcfg.save_every_steps and step % tcfg.save_every_steps == 0 and step < total:
            self.checkpoints.save(state, "periodic")
        if self.dist.any(self.stop.requested):
            bar.close()
            self.stop.checkpoint = f"checkpoint {self.checkpoints.save(state, 'interrupted').name} saved"
            raise KeyboardInterrupt


def _load_model(
    req: TrainRequest, dist: DistContext, dev: RunDevice, rec: record.RunRecord, source: Any,
    train_traces: list[Any],
) -> tuple[Any, Any, PendingWeights | None]:  # fmt: skip
    """(tokenizer, model, pending): a full-FT checkpoint on resume, else the source or scratch.

    One process and DDP: the model on the CPU, pending None. FSDP: the model on the meta device on
    every rank, and pending says where its weights come from once it is sharded: rank 0's full
    CPU model (loaded or initialised by rank 0 alone), or a sharded checkpoint.
    A LoRA checkpoint holds only the adapters: its base is loaded from the source again and the
    adapters are restored with the optimizer (train/checkpoint.load_training_state).
    """
    cfg = req.config
    shards_first = dist.shards_first(cfg.training.strategy)
    checkpoint = rec.resume_from if cfg.lora is None else None
    if checkpoint is not None:
        rec.log.info(f"resuming from {checkpoint.name}")
    elif rec.resume_from is not None:
        rec.log.info(f"resuming the LoRA adapters from {rec.resume_from.name}")
    if checkpoint is not None and is_sharded(checkpoint):
        tokenizer, model = load_pretrained(cfg.model, dev.attention, source=checkpoint, weights=False)
        if shards_first:
            return tokenizer, model, PendingWeights(checkpoint=checkpoint)
        # Another strategy or one process: every tensor whole, read from all ranks' shards.
        allocate(model, "cpu")
        load_model_shards(model, checkpoint)
        return tokenizer, model, None
    load = _loader(req, dev, rec, source, train_traces, checkpoint)
    if not shards_first:
        return (*load(True), None)
    # Rank 0 alone loads (or initialises, from the same seed as one process) the full model on the
    # CPU; then every rank builds the empty one (after rank 0: a GGUF source is converted once).
    full = load(True)[1] if dist.is_main else None
    dist.barrier()
    tokenizer, model = load(False)
    return tokenizer, model, PendingWeights(full_model=full)


def _loader(
    req: TrainRequest, dev: RunDevice, rec: record.RunRecord, source: Any, train_traces: list[Any],
    checkpoint: Any,
) -> Any:  # fmt: skip
    """`load(weights) -> (tokenizer, model)`: with weights (on the CPU) or empty (meta device),
    from a consolidated checkpoint, from scratch, or from the source."""
    cfg = req.config
    if checkpoint is None and cfg.model.init == "scratch":
        tokenizer = train_scratch_tokenizer(train_traces, cfg.system_instruction, cfg.model.vocab_size)

        def build(weights: bool) -> tuple[Any, Any]:
            max_positions = cfg.training.max_seq_length
            on_meta = not weights
            return tokenizer, build_scratch_model(
                cfg.model, tokenizer, max_positions, dev.attention, on_meta=on_meta
            )

        return build

    def load(weights: bool) -> tuple[Any, Any]:
        if checkpoint is not None:
            return load_pretrained(cfg.model, dev.attention, source=checkpoint, weights=weights)
        return load_pretrained(cfg.model, dev.attention, resolved=source, log=rec.log, weights=weights)

    return load


def _wrap(
    dist: DistContext, dev: RunDevice, model: Any, strategy: str, pending: PendingWeights | None
) -> Any:
    """DDP or FSDP as configured; under FSDP the model was sharded on the meta device, so then each
    rank's shards get their memory on the device and their weights (train/sharded.py)."""
    model = dist.wrap(model, strategy)
    if pending is not None:
        materialise(model, dev.device, pending)
    return model


def _adapt(req: TrainRequest, dev: RunDevice, log: Any, model: Any) -> tuple[Any, int]:
    """LoRA and activation checkpointing as configured, after .to(device) and before DDP wraps the
    model; returns it with its trainable parameter count."""
    cfg = req.config
    if cfg.lora is not None:
        # The frozen base in the compute dtype (bf16 where the device runs it), adapters fp32.
        model = apply_lora(model, cfg.lora, dev.compute_dtype)
    trainable = sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())
    if cfg.lora is not None:
        log.info(f"LoRA r={cfg.lora.r} alpha={cfg.lora.alpha}: {trainable:,} trainable parameters")
    if cfg.training.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    return model, trainable


def _eval_before(
    req: TrainRequest, dist: DistContext, dev: RunDevice, rec: record.RunRecord, model: Any, tokenizer: Any,
    pending: PendingWeights | None,
) -> dict | None:  # fmt: skip
    """training.eval_before: the model as loaded, scored like the trained one will be (main rank;
    not again on resume, the first start recorded it). Returns the headline, or None.

    Under FSDP `model` is still empty (meta device): rank 0 scores the full CPU model it loaded.
    """
    tcfg = req.config.training
    if not (tcfg.eval_before and tcfg.eval_set) or rec.resume_from is not None:
        return None
    if pending is not None and pending.full_model is not None:
        model = pending.full_model
    head = None
    if rec.run:
        from tunix_rt.eval.runner import evaluate

        rec.log.info(f"evaluating the model before training on {tcfg.eval_set}")
        result = record.evaluate_or_record(
            rec.run,
            rec.log,
            lambda: evaluate(
                str(req.config.model.model_id),
                tcfg.eval_set,
                req.output / EVAL_BEFORE_DIR,
                batch_size=tcfg.eval_batch_size,
                max_new_tokens=tcfg.eval_max_new_tokens,
                model_obj=model,
                tokenizer=tokenizer,
                render_settings=render_settings(tokenizer, req.config.system_instruction),
                dtype="auto",  # the dtype final_model/ is evaluated in after training
            ),
        )
        head = record_before(rec.run, rec.log, result, tcfg.eval_set) if result is not None else None
    dist.barrier()
    return head


def _tokenize(traces: list[Any], tokenizer: Any, cfg: Any) -> Any:
    return tokenize_traces(
        traces,
        tokenizer,
        system_instruction=cfg.system_instruction,
        max_seq_length=cfg.training.max_seq_length,
    )


def _record_lift(rec: record.RunRecord, before: dict | None, result: dict, eval_set: str) -> None:
    """After eval: the lift over the before-training eval (this start's, or the first start's on resume)."""
    before = before or rec.run.manifest.get("eval_before")
    if before:
        record_lift(rec.run, rec.log, before, result, eval_set)


def _record_best(rec: record.RunRecord) -> None:
    """The step with the lowest validation loss into the manifest, with its checkpoint when one
    was kept at that step (training.save_every_steps = eval_steps keeps one per validation)."""
    if not rec.run:
        return
    best = best_step(rec.run.read_metrics())
    if best is not None:
        ckpt = rec.run.path / CHECKPOINTS / checkpoint_name(best["step"])
        best["checkpoint"] = str(ckpt.relative_to(rec.run.path)) if ckpt.is_dir() else None
    rec.update_manifest(validation={**rec.run.manifest.get("validation", {}), "best": best})
