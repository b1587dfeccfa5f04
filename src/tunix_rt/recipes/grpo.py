"""GRPO, top to bottom: device, prompts and rewards, run directory, policy, optimizer, resume,
eval before, the loop, the final model, eval after, the summary.

Group Relative Policy Optimization (DeepSeekMath, arXiv 2402.03300) with verifiable rewards: each
step samples G completions for each of `training.batch_size` prompts, scores them with the reward
functions, turns each group's rewards into advantages and takes `num_iterations` clipped-surrogate
updates on those samples (docs/grpo.md). Knobs: the config's `grpo:` section (rl/config.py).

This file is the order things happen in, like recipes/sft.py, over the same components (run record,
stop signal, device, checkpoints, final model, evaluation) plus rl/ (prompts, rewards, the step's
arithmetic, its evidence). Single process for now: under torchrun it refuses to start.

With a `lora:` section GRPO trains LoRA adapters exactly as SFT's LoRA path does (train/lora.py:
frozen base in bf16 where the device runs it, adapters fp32, autocast), fresh on the starting
model or continuing a LoRA SFT run's adapter (rl/start.py); the KL reference is then no second
model (rl/reference.py). Without it every parameter is trained: float32 weights, the update under
the autocast of training.dtype (auto: bf16 where native), sampling from a bf16 copy on a CPU.
"""

from __future__ import annotations

import time
from typing import Any

from tunix_rt.config import Config
from tunix_rt.errors import ConfigError
from tunix_rt.eval.runner import evaluate, render_for_eval
from tunix_rt.evidence import COMPLETIONS, EVAL_BEFORE_DIR, EVAL_DIR, FINAL_MODEL, truncate_jsonl_after
from tunix_rt.rl import record as rl_record
from tunix_rt.rl.data import PromptSet, load_prompts, step_prompts
from tunix_rt.rl.reference import Reference
from tunix_rt.rl.rewards import Reward, build_rewards, probe_rewards
from tunix_rt.rl.sampling import refreshed, sampling_copy
from tunix_rt.rl.start import StartPoint, resolve_start
from tunix_rt.rl.state import GrpoState
from tunix_rt.rl.step import policy_update, probe_memory, sample_and_score
from tunix_rt.train import record
from tunix_rt.train.batching import plan_steps
from tunix_rt.train.checkpoint import Checkpointer, gather_full_state
from tunix_rt.train.distributed import DistContext
from tunix_rt.train.export import save_final_model
from tunix_rt.train.lora import apply_lora, enable_gradient_checkpointing, load_lora
from tunix_rt.train.model import count_parameters, load_pretrained
from tunix_rt.train.optim import build_optimizer, build_scheduler, continue_schedule
from tunix_rt.train.packing import packing_problem
from tunix_rt.train.render import template_kind
from tunix_rt.train.request import TrainRequest
from tunix_rt.train.runtime import RunDevice, quiet_library_progress_bars, resolve_run_device, seed_everything
from tunix_rt.train.step import head_only_loss
from tunix_rt.train.stop import StopSignal
from tunix_rt.train.tokenize import encode_prompt
from tunix_rt.train.trackers import missing_packages


def train(req: TrainRequest) -> dict[str, Any]:
    """Run GRPO as the request says; returns the run manifest's summary."""
    cfg = req.config
    dist = DistContext.from_env()
    problems = plan_problems(cfg, dist.world_size)
    if problems:
        raise ConfigError(problems[0])
    quiet_library_progress_bars()
    # 1. Device first. training.dtype as SFT runs it (auto: bf16 where the device has it natively):
    #    full fine-tuning keeps float32 weights and runs sampling and updates under bf16 autocast;
    #    LoRA holds the frozen base in bf16.
    dev = resolve_run_device(dist, req.device, cfg)
    # 2. Prompts, rewards and the starting point, before the run directory exists.
    prompts, rewards, start = check_inputs(cfg, req.dataset)
    # 3. The run directory, as SFT records it.
    rec = record.open_run(req, dist, dev)
    stop = StopSignal()
    with record.recorded_outcome(rec, stop, dist):
        return _grpo(req, dist, dev, rec, stop, prompts, rewards, start)


def plan_problems(cfg: Config, world_size: int) -> list[str]:
    """Settings GRPO cannot run with (train() refuses the first; --dry-run lists them all)."""
    problems = []
    if cfg.method != "grpo" or cfg.grpo is None:
        problems.append("method: recipes.grpo runs configs with method: grpo")
    if cfg.model.init == "scratch":
        problems.append("model.init: GRPO starts from a trained model (a model id, directory or SFT run)")
    if cfg.training.dtype in ("float16", "fp16", "half"):
        problems.append("training.dtype: GRPO has no float16 loss scaler; use bfloat16, float32 or auto")
    if cfg.training.gradient_accumulation_steps > 1:
        problems.append(
            "training.gradient_accumulation_steps: GRPO's update is split with grpo.micro_batch_size "
            "(completions per forward and backward; the same update in less memory)"
        )
    if world_size > 1:
        problems.append(
            f"GRPO runs in one process for now, not {world_size}: start it without torchrun / --nproc"
        )
    return problems + missing_packages(cfg.training.report_to)


def check_inputs(cfg: Config, dataset: str) -> tuple[PromptSet, list[Reward], StartPoint]:
    """Prompts, rewards and the starting point, checked before any model is loaded: a gold answer the
    scorer cannot interpret, a reward function that does not import or answer, or a
    system_instruction that contradicts the starting model's fails in a second and leaves nothing."""
    gcfg = cfg.grpo
    assert gcfg is not None  # plan_problems
    prompts = load_prompts(dataset)
    rewards = build_rewards(gcfg.rewards, length_buffer=gcfg.length_buffer)
    first = prompts.items[0]
    probe_rewards(rewards, first.prompt, first.answer, gcfg.max_completion_length)
    # The lora: keys the config sets itself: a continued adapter must not contradict them.
    lora_given = {key: getattr(cfg.lora, key) for key in cfg.lora.model_fields_set} if cfg.lora else None
    start = resolve_start(str(cfg.model.model_id), cfg.system_instruction, lora_given, gcfg.adapter)
    return prompts, rewards, start


def _grpo(
    req: TrainRequest,
    dist: DistContext,
    dev: RunDevice,
    rec: record.RunRecord,
    stop: StopSignal,
    prompts: PromptSet,
    rewards: list[Reward],
    start: StartPoint,
) -> dict[str, Any]:
    cfg, tcfg, gcfg, log = req.config, req.config.training, req.config.grpo, rec.log
    assert gcfg is not None and rec.run is not None  # checked in train(); one process
    seed_everything(tcfg.seed)
    rec.update_manifest(method="grpo")

    # 4. Policy (from the checkpoint on resume), the rendering it is asked with, the frozen reference.
    tokenizer, model = _load_policy(cfg, dev, rec, start)
    if tcfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
        log.info("activation checkpointing: each decoder layer's activations recomputed in backward")
    n_params = count_parameters(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    settings = start.render_settings(tokenizer, cfg.system_instruction)
    reference = _reference(cfg, dev, start, model) if gcfg.beta > 0 else None
    twin = sampling_copy(model, dev.compute_dtype)  # full fine-tuning in bf16 on a CPU samples from it
    if twin is not None:
        log.info(f"sampling: a {dev.dtype_name} copy of the weights, refreshed before each step's generation")
    rendered = [render_for_eval(item.prompt, tokenizer, settings) for item in prompts.items]
    longest_prompt = max(len(encode_prompt(tokenizer, text)) for text in rendered)
    log.info(
        f"rendering: {settings['template']} template, system_instruction {settings['system_instruction']!r}"
    )

    # 5. Schedule, optimizer, checkpoints: one step = batch_size prompts x G completions.
    per_epoch, total_steps = plan_steps(len(prompts.items), tcfg.batch_size, tcfg.max_steps, tcfg.num_epochs)
    optimizer = build_optimizer(model, tcfg.optimizer, tcfg.learning_rate, tcfg.weight_decay, dev.device)
    scheduler = build_scheduler(optimizer, tcfg.lr_scheduler, tcfg.warmup_steps, total_steps)
    checkpoints = Checkpointer(
        req.output, model, tokenizer, optimizer, scheduler, None,
        identity={"prompts_sha256": prompts.sha256, "batch_size": tcfg.batch_size, "dtype": dev.dtype_name},
        config_sha256=cfg.sha256(), keep=tcfg.save_total_limit, dist=dist, log=log, state_type=GrpoState,
    )  # fmt: skip

    # 6. Resume: the checkpoint restores the state, sampling generator included; lines logged
    #    after it (metrics and completions) are dropped, since those steps are redone.
    state = GrpoState.start(tcfg.seed)
    if rec.resume_from is not None:
        state = checkpoints.restore(rec.resume_from)
        # A new total (max_steps changed): the LR continues from its value here to the new end.
        lr_schedule = continue_schedule(scheduler, total_steps, state.step)
        rec.accept_resumed_config(at_step=state.step, lr_schedule=lr_schedule)
        log.info(f"resuming from {rec.resume_from.name}")
    if req.resume:
        dropped = rec.run.truncate_metrics_after(state.step)
        dropped += truncate_jsonl_after(req.output / COMPLETIONS, state.step)
        if dropped:
            log.info(f"dropped {dropped} metric / completion lines logged after step {state.step} (redone)")
    rec.update_manifest(
        dataset={"spec": req.dataset, "path": str(prompts.path), "sha256": prompts.sha256, "count": len(prompts.items)},
        model={
            "id": cfg.model.model_id, "source": start.source, "architecture": type(model).__name__,
            "parameters": n_params, "trainable_parameters": trainable, "dtype": dev.dtype_name,
            "adapter": str(start.adapter) if start.adapter is not None else None,
            "reference": reference.kind if reference is not None else None,
        },
        lora={
            **cfg.lora.model_dump(mode="json"), **(start.adapter_lora or {}), "trainable_parameters": trainable,
            "adapter": "continued" if start.adapter is not None else "new",
        } if cfg.lora else None,
        tokenizer={"class": type(tokenizer).__name__, "vocab_size": len(tokenizer), "template": template_kind(tokenizer)},
        plan={
            "prompts_per_step": tcfg.batch_size, "num_generations": gcfg.num_generations,
            "steps_per_epoch": per_epoch, "total_steps": total_steps, "start_step": state.step,
            "rewards": gcfg.rewards, "render": settings,
        },
    )  # fmt: skip

    # 7. The largest batch first (every start), then eval before training (a fresh run only).
    rows = tcfg.batch_size * gcfg.num_generations
    rows = min(rows, gcfg.micro_batch_size or rows)  # what one forward and backward of the update holds
    log.info(
        probe_memory(model, tokenizer.pad_token_id, rows, longest_prompt, gcfg, dev.device, dev.compute_dtype)
    )
    packed = _update_layout(model, dev, log)
    if tcfg.eval_set and state.step == 0:
        # The directory the starting policy came from (a continued adapter's: the SFT final model).
        where = start.adapter.parent if start.adapter is not None else start.source
        _evaluate(req, rec, dev, where, model, tokenizer, settings, EVAL_BEFORE_DIR, "eval_before", 0)

    # 8. The loop: sample, score, update; evidence at logging steps; Ctrl-C stops at a boundary.
    model.train()
    stop.arm()
    while state.step < total_steps:
        started = time.perf_counter()
        chosen = step_prompts(prompts.items, state.step, tcfg.batch_size, tcfg.seed)
        items, texts = [prompts.items[i] for i in chosen], [rendered[i] for i in chosen]
        # The policy under the update's autocast, or its bf16 copy with this step's weights.
        policy, dtype = (model, dev.compute_dtype) if twin is None else (refreshed(twin, model), None)
        scored = sample_and_score(
            policy, tokenizer, items, texts, rewards, gcfg, dev.device, state.sampler, dtype
        )
        generated = time.perf_counter()
        parts, grad_norm = policy_update(
            model, reference, optimizer, scheduler, scored, gcfg, tcfg.max_grad_norm,
            tokenizer.pad_token_id, dev.device, dev.compute_dtype, packed,
        )  # fmt: skip
        updated = time.perf_counter()
        state.step += 1
        state.generated_tokens += sum(scored.samples.lengths)
        state.updated_tokens += parts.tokens * gcfg.num_iterations
        state.loop_seconds += updated - started
        if state.step % tcfg.logging_steps == 0 or state.step == total_steps:
            seconds = (generated - started, updated - generated)
            line = rl_record.step_record(state, scored, parts, grad_norm, scheduler.get_last_lr()[0], seconds)
            rec.append_metrics(line)
            if gcfg.log_completions:
                rl_record.append_completions(req.output / COMPLETIONS, state.step, items, scored)
            log.info(
                f"step {state.step}/{total_steps} reward {line['reward_mean']:.3f} "
                f"correct {line['correctness_rate']:.3f} zero-signal {line['zero_signal_fraction']:.2f}"
            )
        if tcfg.save_every_steps and state.step % tcfg.save_every_steps == 0 and state.step < total_steps:
            checkpoints.save(state, "periodic")
        if stop.requested:
            stop.checkpoint = f"checkpoint {checkpoints.save(state, 'interrupted').name} saved"
            raise KeyboardInterrupt
    stop.disarm()
    checkpoints.save(state, "final")

    # 9. The final model, saved with the rendering it was trained under (LoRA: merged, and the
    #    adapter alone in final_model/adapter/, as SFT writes them; the reference's copy left out).
    if reference is not None:
        reference.release()
    final_dir = req.output / FINAL_MODEL
    full_state = gather_full_state(model)[0] if cfg.lora is None else None
    save_final_model(model, full_state, tokenizer, final_dir, settings["system_instruction"])
    summary = rl_record.summary(state)
    rec.update_manifest(summary=summary)

    # 10. Eval after, and the lift over eval before.
    if tcfg.eval_set:
        _evaluate(req, rec, dev, final_dir, model, tokenizer, settings, EVAL_DIR, "eval", state.step)
        lift = rl_record.lift(rec.run.manifest)
        if lift is not None:
            rec.update_manifest(eval={**rec.run.manifest["eval"], **lift})
            log.info(f"eval lift: {lift['before']:.3f} -> {lift['after']:.3f} ({lift['lift']:+.3f})")
    rec.run.set_status("completed")
    log.info(f"completed: {state.step} steps, evidence in {req.output}")
    return summary


def _load_policy(cfg: Config, dev: RunDevice, rec: record.RunRecord, start: StartPoint) -> tuple[Any, Any]:
    """(tokenizer, policy) on the device. Full fine-tuning: the checkpoint on resume, else the start.
    LoRA, as SFT's LoRA path: the base in the compute dtype with fresh adapters, or with the LoRA
    SFT run's adapter continued; on resume the checkpoint's adapters replace them (Checkpointer.restore)."""
    if cfg.lora is None:
        tokenizer, model = load_pretrained(cfg.model, dev.attention, source=rec.resume_from or start.source)
        return tokenizer, model.to(dev.device)
    if start.adapter is not None:
        rec.log.info(f"LoRA: continuing the adapter {start.adapter} on its base {start.source}")
        tokenizer, base = load_pretrained(cfg.model, dev.attention, resolved=start.base, log=rec.log)
        model = load_lora(base.to(dev.device), start.adapter, dev.compute_dtype)
    else:
        tokenizer, base = load_pretrained(cfg.model, dev.attention, source=start.source)
        model = apply_lora(base.to(dev.device), cfg.lora, dev.compute_dtype)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rec.log.info(f"LoRA: {trainable:,} trainable parameters, base in {dev.dtype_name}")
    return tokenizer, model


def _reference(cfg: Config, dev: RunDevice, start: StartPoint, policy: Any) -> Reference:
    """The starting model, never trained. Full fine-tuning: loaded from the source again (also on
    resume, when the policy comes from a checkpoint). LoRA: no second model (rl/reference.py)."""
    if cfg.lora is None:
        _, reference = load_pretrained(cfg.model, dev.attention, source=start.source)
        return Reference.frozen_copy(reference.to(dev.device))
    if start.adapter is not None:
        return Reference.starting_adapter(policy, start.adapter)
    return Reference.adapters_off(policy)


def _update_layout(model: Any, dev: RunDevice, log: Any) -> bool:
    """Whether the update's forwards run on packed rows: when the LM head can run on gathered rows
    and the model keeps packed sequences apart (train/packing.py measures it on this model)."""
    if not head_only_loss(model):
        problem = "the LM head cannot run on gathered rows (train/step.head_only_loss)"
    else:
        problem = packing_problem(model, dev.compute_dtype)
    log.info("update rows: packed" if problem is None else f"update rows: padded, since {problem}")
    return problem is None


def _evaluate(
    req: TrainRequest, rec: record.RunRecord, dev: RunDevice, model_dir: Any, model: Any, tokenizer: Any,
    settings: dict[str, Any], subdir: str, key: str, step: int,
) -> None:  # fmt: skip
    """training.eval_set with the in-memory model and the sampling rendering, into manifest[key]."""
    tcfg = req.config.training
    rec.log.info(f"{key}: evaluating on {tcfg.eval_set}")
    result = record.evaluate_or_record(
        rec.run,
        rec.log,
        lambda: evaluate(
            model_dir,
            tcfg.eval_set,
            req.output / subdir,
            device=dev.choice.device,
            batch_size=tcfg.eval_batch_size,
            max_new_tokens=tcfg.eval_max_new_tokens,
            model_obj=model,
            tokenizer=tokenizer,
            render_settings=settings,
            dtype="auto",  # as SFT's evaluations: bf16 + sdpa where native, a LoRA policy merged
        ),
        key=key,
    )
    if result is not None:
        record.record_eval(rec.run, rec.log, result, tcfg.eval_set, step, key=key)
