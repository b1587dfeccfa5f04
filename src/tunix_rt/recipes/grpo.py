"""The GRPO recipe, top to bottom: device, run directory, prompts, policy, loop, final model, eval.

Group Relative Policy Optimization (DeepSeekMath, arXiv 2402.03300) with verifiable rewards: each
step samples G completions for each of `training.batch_size` prompts, scores them with the reward
functions (rl/rewards.py), turns each group's rewards into advantages (rl/loss.py) and takes
`num_iterations` clipped-surrogate updates on those samples. Knobs: rl/config.py (`grpo:`).

The components are the SFT recipe's (run directory and evidence, checkpoints, model loading,
device preflight, generation, scoring, evaluation) plus rl/ (data, rewards, loss, sampling).
Single process only for now; under torchrun it refuses to start.
"""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunix_rt.device.preflight import resolve_device
from tunix_rt.errors import ConfigError, RunDirError, TrainingError
from tunix_rt.eval.runner import read_render_settings, render_for_eval, resolve_model_dir
from tunix_rt.evidence import EVAL_DIR, FINAL_MODEL, RunDirectory, utc_now, versions
from tunix_rt.fsutil import atomic_write_json, atomic_write_text, jsonl_lines
from tunix_rt.rl.config import GrpoConfig
from tunix_rt.rl.data import PromptItem, PromptSet, load_prompts
from tunix_rt.rl.loss import LossParts, group_advantages, grpo_loss, zero_signal_groups
from tunix_rt.rl.rewards import Reward, build_rewards, format_checks, probe_rewards, score_completions
from tunix_rt.rl.sampling import (
    Samples,
    batch_from_samples,
    probe_longest_batch,
    sample_groups,
    sequence_logprobs,
)
from tunix_rt.train import checkpoint as ckpt
from tunix_rt.train.distributed import DistContext
from tunix_rt.train.loop import (  # the coordinator moves these with the SFT refactor (issue 15)
    StopSignal,
    TrainRequest,
    _accept_config,
    _check_resume_config,
    _clip_grad_norm,
    _quiet_library_progress_bars,
    _seed_everything,
    _write_readme,
)
from tunix_rt.train.model import attention_for, count_parameters, load_pretrained
from tunix_rt.train.optim import build_optimizer, build_scheduler
from tunix_rt.train.render import template_kind
from tunix_rt.train.tokenize import encode_prompt

COMPLETIONS = "completions.jsonl"
EVAL_BEFORE_DIR = "eval_before"
RENDER_FILE = "tunix_rt_render.json"


def grpo_config(cfg: Any) -> GrpoConfig:
    """The config's `grpo:` section (defaults when the config has none)."""
    found = getattr(cfg, "grpo", None)
    return found if isinstance(found, GrpoConfig) else GrpoConfig()


@dataclass
class GrpoState:
    """What a checkpoint saves besides weights, optimizer and global RNGs."""

    step: int = 0
    generated_tokens: int = 0
    updated_tokens: int = 0
    loop_seconds: float = 0.0
    sampling_rng: str = ""  # base64 of the sampling torch.Generator's state
    identity: dict[str, Any] = field(default_factory=dict)


def train(req: TrainRequest) -> dict[str, Any]:
    """Run GRPO as the request says; returns the run manifest's summary."""
    cfg, tcfg, gcfg = req.config, req.config.training, grpo_config(req.config)
    if DistContext.from_env().active:
        raise TrainingError("GRPO runs in one process for now; start it without torchrun")
    if cfg.model.init == "scratch":
        raise ConfigError("model.init: GRPO starts from a trained model (a model id, directory or SFT run)")
    _quiet_library_progress_bars()
    stop = StopSignal()

    # 1. Device first: a device we cannot use is refused before anything is loaded or written.
    choice = resolve_device(req.device)
    # GRPO computes in float32 for now (no autocast yet): a dtype that would not be applied is
    # refused rather than recorded.
    if tcfg.dtype not in ("float32", "auto"):
        raise ConfigError(f"training.dtype: GRPO runs in float32 for now, not {tcfg.dtype}")
    dtype_name = "float32"
    device = torch.device(choice.device)
    attention = attention_for(cfg.model.attn_implementation, device.type)

    # 2. Prompts and rewards, checked before the run directory exists: a bad gold answer or reward
    #    function fails in a second and leaves nothing behind.
    prompts = load_prompts(req.dataset)
    rewards = build_rewards(gcfg.rewards, length_buffer=gcfg.length_buffer)
    first = prompts.items[0]
    probe_rewards(rewards, first.prompt, first.answer, gcfg.max_completion_length)

    # 3. The run directory, its config and the device block (as SFT records them).
    run = _open_run(req, choice, dtype_name)
    try:
        with stop.installed():
            summary = _train(req, run, gcfg, prompts, rewards, device, dtype_name, attention, stop)
    except KeyboardInterrupt:
        run.set_status("interrupted")
        run.log.info(f"interrupted: {stop.checkpoint or 'no new checkpoint'}; continue with --resume")
        raise
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        run.log.info(f"failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        _write_readme(run)
        run.close()
    return summary


def _train(
    req: TrainRequest,
    run: RunDirectory,
    gcfg: GrpoConfig,
    prompts: PromptSet,
    rewards: list[Reward],
    device: torch.device,
    dtype_name: str,
    attention: str,
    stop: StopSignal,
) -> dict[str, Any]:
    cfg, tcfg, log = req.config, req.config.training, run.log
    _seed_everything(tcfg.seed)
    resume_from = ckpt.latest_checkpoint(req.output) if req.resume else None

    # 4. Policy (from the checkpoint on resume), its render settings, and the frozen reference.
    source_dir, _ = resolve_model_dir(cfg.model.model_id)
    tokenizer, model = load_pretrained(
        cfg.model, attention, source=resume_from or _source(cfg.model.model_id)
    )
    settings = _render_settings(source_dir, tokenizer, cfg.system_instruction)
    model.to(device)
    reference = _reference(cfg, attention, device) if gcfg.beta > 0 else None
    rendered = [render_for_eval(item.prompt, tokenizer, settings) for item in prompts.items]
    prompt_lengths = [len(encode_prompt(tokenizer, text)) for text in rendered]

    # 5. Schedule and optimizer: one step = batch_size prompts x G completions.
    per_epoch = math.ceil(len(prompts.items) / tcfg.batch_size)
    total_steps = tcfg.max_steps or max(1, math.ceil(tcfg.num_epochs * per_epoch))
    optimizer = build_optimizer(model, tcfg.optimizer, tcfg.learning_rate, tcfg.weight_decay, device)
    scheduler = build_scheduler(optimizer, tcfg.lr_scheduler, tcfg.warmup_steps, total_steps)
    sampler = torch.Generator().manual_seed(tcfg.seed)
    identity = {"prompts_sha256": prompts.sha256, "batch_size": tcfg.batch_size, "dtype": dtype_name}
    state = GrpoState(identity=identity)
    if resume_from is not None:
        state = _resume(req, run, resume_from, model, optimizer, scheduler, sampler, identity)
    _record_plan(run, req, prompts, model, tokenizer, gcfg, per_epoch, total_steps, state.step, dtype_name)

    # 6. The memory probe at the largest shape (every start, before anything slow), then eval
    #    before training (a fresh run only).
    _probe_memory(
        model, tokenizer, tcfg.batch_size * gcfg.num_generations, max(prompt_lengths), gcfg, device, log
    )
    if tcfg.eval_set and state.step == 0:
        _evaluate(run, req, source_dir, model, tokenizer, device, EVAL_BEFORE_DIR, "eval_before")

    # 7. The loop: sample, score, advantages, update; evidence at logging steps.
    model.train()
    stop.arm()
    while state.step < total_steps:
        started = time.perf_counter()
        items, texts = _step_prompts(prompts.items, rendered, state.step, tcfg.batch_size, tcfg.seed)
        sampled = _sample_and_score(model, tokenizer, items, texts, rewards, gcfg, device, sampler)
        generated = time.perf_counter()
        parts, grad_norm = _update(
            model, reference, optimizer, scheduler, sampled, gcfg, tcfg, tokenizer, device
        )
        updated = time.perf_counter()
        state.step += 1
        state.generated_tokens += sum(sampled.samples.lengths)
        state.updated_tokens += parts.tokens * gcfg.num_iterations
        state.loop_seconds += updated - started
        if state.step % tcfg.logging_steps == 0 or state.step == total_steps:
            record = _step_record(state, sampled, parts, grad_norm, scheduler, started, generated, updated)
            run.append_metrics(record)
            if gcfg.log_completions:
                _append_completions(req.output / COMPLETIONS, state.step, items, sampled)
            log.info(
                f"step {state.step}/{total_steps} reward {record['reward_mean']:.3f} "
                f"correct {record['correctness_rate']:.3f} zero-signal {record['zero_signal_fraction']:.2f}"
            )
        if tcfg.save_every_steps and state.step % tcfg.save_every_steps == 0 and state.step < total_steps:
            _save(req, model, tokenizer, optimizer, scheduler, sampler, state, "periodic")
        if stop.requested:  # Ctrl-C / SIGTERM: stop here, at a step boundary, with a checkpoint
            saved = _save(req, model, tokenizer, optimizer, scheduler, sampler, state, "interrupted")
            stop.checkpoint = f"checkpoint {saved.name} saved"
            raise KeyboardInterrupt
    stop.disarm()
    _save(req, model, tokenizer, optimizer, scheduler, sampler, state, "final")

    # 8. The final model (with the render settings it was trained under), then eval after.
    final_dir = req.output / FINAL_MODEL
    _save_final_model(model, tokenizer, final_dir, settings)
    summary = _summary(state)
    run.update_manifest(summary=summary)
    if tcfg.eval_set:
        _evaluate(run, req, final_dir, model, tokenizer, device, EVAL_DIR, "eval_after")
        _record_lift(run)
    run.set_status("completed")
    log.info(f"completed: {state.step} steps, evidence in {req.output}")
    return summary


# --- set-up helpers -------------------------------------------------------------------------


def _open_run(req: TrainRequest, choice: Any, dtype_name: str) -> RunDirectory:
    from tunix_rt.train.command import user_command

    command = req.argv or user_command()
    changed = _check_resume_config(req.output, req.config) if req.resume else {}
    run = RunDirectory.open(req.output, resume=req.resume, overwrite=req.overwrite, command=command)
    for stale in ckpt.remove_partial_checkpoints(req.output):
        run.log.info(f"removed an incomplete checkpoint write: {stale.name}")
    latest = ckpt.latest_checkpoint(req.output) if req.resume else None
    _accept_config(run, req, changed, at_step=ckpt.read_state(latest)["step"] if latest else 0)
    timings = dict(run.manifest.get("timings", {}))
    if req.resume:  # the command that started the run stays the one to reproduce it
        run.manifest["resume_commands"] = [*run.manifest.get("resume_commands", []), command]
        command = run.manifest.get("command", command)
        timings["resumed_at"] = [*timings.get("resumed_at", []), utc_now()]
    else:
        timings["started_at"] = utc_now()
    run.update_manifest(
        status="running",
        method="grpo",
        command=command,
        timings=timings,
        device={"type": choice.type, "name": choice.name, "reason": choice.reason, "dtype": dtype_name},
        versions=versions(),
        seed=req.config.training.seed,
        error=None,
    )
    run.log.info(f"device: {choice.device} ({choice.name}); {choice.reason}; dtype {dtype_name}")
    return run


def _source(model_id: str | None) -> str:
    """A finished SFT run directory means its final_model/; anything else is passed through."""
    model_dir, _ = resolve_model_dir(model_id or "")
    return str(model_dir) if model_dir.is_dir() else str(model_id)


def _render_settings(source_dir: Path, tokenizer: Any, system_instruction: str | None) -> dict[str, Any]:
    """The source's saved rendering (an SFT run's final_model has one), else this config's."""
    saved = read_render_settings(source_dir) if source_dir.is_dir() else None
    return saved or {"template": template_kind(tokenizer), "system_instruction": system_instruction}


def _reference(cfg: Any, attention: str, device: torch.device) -> Any:
    """The starting model, frozen: loaded from the source again (also on resume, when the policy
    comes from a checkpoint). With LoRA it will be the base with adapters disabled instead."""
    _, reference = load_pretrained(cfg.model, attention, source=_source(cfg.model.model_id))
    reference.to(device).eval()
    for param in reference.parameters():
        param.requires_grad_(False)
    return reference


def _resume(
    req: TrainRequest,
    run: RunDirectory,
    checkpoint: Path,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    sampler: torch.Generator,
    identity: dict[str, Any],
) -> GrpoState:
    saved = ckpt.load_training_state(checkpoint, model, optimizer, scheduler)
    state = GrpoState(**{k: saved[k] for k in GrpoState.__dataclass_fields__})
    changed = {k: (state.identity.get(k), v) for k, v in identity.items() if state.identity.get(k) != v}
    if changed:
        lines = "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items())
        raise RunDirError(f"--resume: {checkpoint.name} was trained with other settings ({lines})")
    sampler.set_state(torch.frombuffer(bytearray(base64.b64decode(state.sampling_rng)), dtype=torch.uint8))
    dropped = run.truncate_metrics_after(state.step)
    dropped_completions = _truncate_completions(req.output / COMPLETIONS, state.step)
    run.log.info(
        f"resuming from {checkpoint.name}; redoing the steps after it "
        f"({dropped} metric lines, {dropped_completions} completion lines dropped)"
    )
    return state


def _record_plan(
    run: RunDirectory,
    req: TrainRequest,
    prompts: PromptSet,
    model: Any,
    tokenizer: Any,
    gcfg: GrpoConfig,
    per_epoch: int,
    total_steps: int,
    start_step: int,
    dtype_name: str,
) -> None:
    run.update_manifest(
        dataset={
            "spec": req.dataset,
            "path": str(prompts.path),
            "sha256": prompts.sha256,
            "count": len(prompts.items),
        },
        model={
            "id": req.config.model.model_id,
            "architecture": type(model).__name__,
            "parameters": count_parameters(model),
            "dtype": dtype_name,
            "reference": "starting model, frozen" if gcfg.beta > 0 else None,
        },
        tokenizer={"class": type(tokenizer).__name__, "vocab_size": len(tokenizer)},
        plan={
            "prompts_per_step": req.config.training.batch_size,
            "num_generations": gcfg.num_generations,
            "steps_per_epoch": per_epoch,
            "total_steps": total_steps,
            "start_step": start_step,
            "rewards": gcfg.rewards,
        },
    )


# --- the step -------------------------------------------------------------------------------


def _probe_memory(
    model: Any,
    tokenizer: Any,
    rows: int,
    longest_prompt: int,
    gcfg: GrpoConfig,
    device: torch.device,
    log: Any,
) -> None:
    """The largest batch first: positions the model cannot hold, or memory it lacks, fail now."""
    length = longest_prompt + gcfg.max_completion_length
    limit = _max_positions(model)
    if limit is not None and length > limit:
        raise ConfigError(
            f"grpo.max_completion_length: the longest prompt ({longest_prompt} tokens) + "
            f"{gcfg.max_completion_length} completion tokens = {length} exceeds the model's {limit} positions"
        )
    try:
        probe_longest_batch(model, rows, length, tokenizer.pad_token_id, device)
    except torch.OutOfMemoryError as exc:
        raise TrainingError(
            f"out of memory at the largest batch this run reaches ({rows} rows x {length} tokens); lower "
            "training.batch_size, grpo.num_generations or grpo.max_completion_length"
        ) from exc
    log.info(f"memory probe: {rows} rows x {length} tokens fit")


def _max_positions(model: Any) -> int | None:
    config = model.config
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _step_prompts(
    items: list[PromptItem], rendered: list[str], step: int, batch_size: int, seed: int
) -> tuple[list[PromptItem], list[str]]:
    """This step's prompts: a fresh permutation per epoch (derived from the step, so resume needs
    no data-order state)."""
    per_epoch = math.ceil(len(items) / batch_size)
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(len(items))
    chosen = order[k * batch_size : (k + 1) * batch_size].tolist()
    return [items[i] for i in chosen], [rendered[i] for i in chosen]


@dataclass
class Scored:
    samples: Samples
    per_fn: dict[str, list[float]]
    totals: list[float]
    correct: list[bool]
    group_size: int
    resampled_groups: int = 0
    zero_signal_sampled: int = 0  # groups without signal as first sampled, before any resampling


def _score(
    samples: Samples, items: list[PromptItem], texts: list[str], rewards: list[Reward], gcfg: GrpoConfig
) -> Scored:
    from tunix_rt.eval.score import score

    g = gcfg.num_generations
    answers = [item.answer for item in items for _ in range(g)]
    columns = {
        "answer": answers,
        "prompt_id": [item.id for item in items for _ in range(g)],
        "completion_lengths": samples.lengths,
        "stopped": samples.stopped,
        "max_completion_length": gcfg.max_completion_length,
    }
    prompts = [text for text in texts for _ in range(g)]
    per_fn, totals = score_completions(rewards, prompts, samples.texts, columns)
    correct = [score(text, gold).correct for text, gold in zip(samples.texts, answers, strict=True)]
    return Scored(samples, per_fn, totals, correct, group_size=g)


def _sample_and_score(
    model: Any,
    tokenizer: Any,
    items: list[PromptItem],
    texts: list[str],
    rewards: list[Reward],
    gcfg: GrpoConfig,
    device: torch.device,
    sampler: torch.Generator,
) -> Scored:
    """All prompts x G in one generate() call; then up to resample_zero_signal rounds for groups
    whose rewards are all equal, keeping a round's group when it has a spread."""

    def sample(sub_texts: list[str]) -> Samples:
        return sample_groups(
            model, tokenizer, sub_texts, num_generations=gcfg.num_generations,
            max_completion_length=gcfg.max_completion_length, temperature=gcfg.temperature,
            top_p=gcfg.top_p, device=device, generator=sampler,
        )  # fmt: skip

    scored = _score(sample(texts), items, texts, rewards, gcfg)
    g = gcfg.num_generations
    scored.zero_signal_sampled = int(zero_signal_groups(torch.tensor(scored.totals), g).sum())
    for _ in range(gcfg.resample_zero_signal):
        flat = zero_signal_groups(torch.tensor(scored.totals), g).nonzero().flatten().tolist()
        if not flat:
            break
        again = _score(
            sample([texts[k] for k in flat]),
            [items[k] for k in flat],
            [texts[k] for k in flat],
            rewards,
            gcfg,
        )
        for j, k in enumerate(flat):
            rows = slice(j * g, (j + 1) * g)
            if len(set(again.totals[rows])) > 1:
                _replace_group(scored, again, k * g, rows)
                scored.resampled_groups += 1
    return scored


def _replace_group(scored: Scored, again: Scored, start: int, rows: slice) -> None:
    n = rows.stop - rows.start
    scored.samples.generations[start : start + n] = again.samples.generations[rows]
    scored.samples.prompt_ids[start : start + n] = again.samples.prompt_ids[rows]
    scored.totals[start : start + n] = again.totals[rows]
    scored.correct[start : start + n] = again.correct[rows]
    for name in scored.per_fn:
        scored.per_fn[name][start : start + n] = again.per_fn[name][rows]


def _update(
    model: Any,
    reference: Any,
    optimizer: Any,
    scheduler: Any,
    scored: Scored,
    gcfg: GrpoConfig,
    tcfg: Any,
    tokenizer: Any,
    device: torch.device,
) -> tuple[LossParts, float]:
    """num_iterations clipped-surrogate updates on one batch of samples.

    Old log-probs: with one iteration the current ones, detached (ratio 1, as TRL does); with more,
    computed once before the first update, so later iterations are measured against the policy
    that sampled. The reference's log-probs are computed once too.
    """
    batch = batch_from_samples(scored.samples, tokenizer.pad_token_id, device)
    advantages, _ = group_advantages(
        torch.tensor(scored.totals), gcfg.num_generations, scale=gcfg.scale_rewards
    )
    advantages = advantages.to(device)
    with torch.no_grad():
        old = _eval_logprobs(model, batch) if gcfg.num_iterations > 1 else None
        ref = _eval_logprobs(reference, batch) if reference is not None else None
    parts, grad_norm = None, 0.0
    for _ in range(gcfg.num_iterations):
        logps = sequence_logprobs(model, batch)
        parts = grpo_loss(
            logps, old if old is not None else logps.detach(), advantages, batch.mask,
            epsilon=gcfg.epsilon, beta=gcfg.beta, ref_logps=ref,
            aggregation=gcfg.loss_aggregation, max_completion_length=gcfg.max_completion_length,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        parts.loss.backward()
        grad_norm = float(_clip_grad_norm(model, tcfg.max_grad_norm))
        if not math.isfinite(grad_norm):
            raise TrainingError(f"non-finite gradient norm ({grad_norm}); lower training.learning_rate")
        optimizer.step()
    scheduler.step()
    assert parts is not None
    return parts, grad_norm


def _eval_logprobs(model: Any, batch: Any) -> torch.Tensor:
    """Log-probs without dropout (the policy as it sampled, or the frozen reference)."""
    was_training = model.training
    model.eval()
    try:
        return sequence_logprobs(model, batch)
    finally:
        model.train(was_training)


# --- evidence -------------------------------------------------------------------------------


def _step_record(
    state: GrpoState,
    scored: Scored,
    parts: LossParts,
    grad_norm: float,
    scheduler: Any,
    started: float,
    generated: float,
    updated: float,
) -> dict[str, Any]:
    """One metrics.jsonl line: this step's rewards, group signal, KL, clipping and speeds."""
    lengths = scored.samples.lengths
    totals = torch.tensor(scored.totals)
    record: dict[str, Any] = {
        "step": state.step,
        "reward_mean": float(totals.mean()),
        "reward_std": _std(totals),
    }
    for name, values in scored.per_fn.items():
        tensor = torch.tensor(values)
        record[f"reward/{name}/mean"] = float(tensor.mean())
        record[f"reward/{name}/std"] = _std(tensor)
    formats = [
        all(format_checks(t, s)) for t, s in zip(scored.samples.texts, scored.samples.stopped, strict=True)
    ]
    gen_s, upd_s = generated - started, updated - generated
    record.update(
        correctness_rate=sum(scored.correct) / len(scored.correct),
        format_rate=sum(formats) / len(formats),
        completion_length_mean=sum(lengths) / len(lengths),
        completion_length_max=max(lengths),
        zero_signal_fraction=scored.zero_signal_sampled / (len(scored.totals) // scored.group_size),
        zero_signal_fraction_trained=_zero_signal_fraction(scored),
        resampled_groups=scored.resampled_groups,
        kl=parts.kl,
        clip_fraction=parts.clip_fraction,
        loss=float(parts.loss.detach()),
        grad_norm=grad_norm,
        lr=scheduler.get_last_lr()[0],
        generation_tokens_per_sec=sum(lengths) / gen_s if gen_s > 0 else None,
        update_tokens_per_sec=parts.tokens / upd_s if upd_s > 0 else None,
        generation_s=round(gen_s, 4),
        update_s=round(upd_s, 4),
        step_s=round(updated - started, 4),
        elapsed_s=round(state.loop_seconds, 3),
    )
    return record


def _std(values: torch.Tensor) -> float:
    return float(values.std()) if values.numel() > 1 else 0.0


def _zero_signal_fraction(scored: Scored) -> float:
    flags = zero_signal_groups(torch.tensor(scored.totals), scored.group_size)
    return float(flags.float().mean())


def _append_completions(path: Path, step: int, items: list[PromptItem], scored: Scored) -> None:
    """Append this step's completions: a line per completion, never rewriting earlier steps."""
    g = scored.group_size
    lines = []
    for k, gen in enumerate(scored.samples.generations):
        item = items[k // g]
        row = {
            "step": step,
            "prompt_id": item.id,
            "sample": k % g,
            "completion": gen.text,
            "n_tokens": gen.n_tokens,
            "stopped": gen.stopped_at_eos,
            "rewards": {name: values[k] for name, values in scored.per_fn.items()},
            "reward": scored.totals[k],
            "correct": scored.correct[k],
        }
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))
        handle.flush()


def _truncate_completions(path: Path, step: int) -> int:
    """Drop lines of steps after `step` (written after the checkpoint resumed from; they are redone)."""
    if not path.is_file():
        return 0
    lines = jsonl_lines(path.read_text(encoding="utf-8"))
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError):
            continue  # a torn last line from a kill mid-write
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)


def _save(
    req: TrainRequest,
    model: Any,
    tokenizer: Any,
    optimizer: Any,
    scheduler: Any,
    sampler: torch.Generator,
    state: GrpoState,
    reason: str,
) -> Path:
    state.sampling_rng = base64.b64encode(sampler.get_state().numpy().tobytes()).decode("ascii")
    payload = {
        **state.__dict__,
        "config_sha256": req.config.sha256(),
        "saved_at": utc_now(),
        "reason": reason,
    }
    return ckpt.save_checkpoint(
        req.output, model=model, tokenizer=tokenizer, optimizer=optimizer, scheduler=scheduler,
        state=payload, keep=req.config.training.save_total_limit,
    )  # fmt: skip


def _save_final_model(model: Any, tokenizer: Any, final_dir: Path, settings: dict[str, Any]) -> None:
    """save_pretrained into a temp directory, then rename: final_model/ is complete or absent."""
    import shutil

    tmp = final_dir.with_name(f".tmp-{final_dir.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    atomic_write_json(tmp / RENDER_FILE, settings)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    tmp.rename(final_dir)


def _summary(state: GrpoState) -> dict[str, Any]:
    seconds = state.loop_seconds
    return {
        "global_step": state.step,
        "train_runtime_s": round(seconds, 3),
        "generated_tokens": state.generated_tokens,
        "updated_tokens": state.updated_tokens,
        "generated_tokens_per_sec": round(state.generated_tokens / seconds, 1) if seconds else None,
    }


def _evaluate(
    run: RunDirectory, req: TrainRequest, model_dir: Path, model: Any, tokenizer: Any, device: torch.device,
    subdir: str, key: str,
) -> None:  # fmt: skip
    """evaluate() on training.eval_set with the in-memory model; the headline goes to manifest[key].
    A failure is recorded, not fatal: the model is trained and saved whatever happens here."""
    from tunix_rt.eval.runner import evaluate

    tcfg = req.config.training
    try:
        result = evaluate(
            model_dir, tcfg.eval_set, req.output / subdir, device=str(device), batch_size=tcfg.eval_batch_size,
            max_new_tokens=tcfg.eval_max_new_tokens, model_obj=model, tokenizer=tokenizer,
        )  # fmt: skip
    except Exception as exc:
        run.update_manifest(**{key: {"error": f"{type(exc).__name__}: {exc}"}})
        run.log.info(f"{key} failed: {type(exc).__name__}: {exc}")
        return
    headline = {
        "eval_set": tcfg.eval_set,
        "primary_score": result["primary_score"],
        "n_items": result["scorecard"]["n_items"],
        "format_compliance": result["scorecard"]["format_compliance"],
    }
    run.update_manifest(**{key: headline})
    run.log.info(f"{key}: primary_score {headline['primary_score']:.3f} on {headline['n_items']} items")


def _record_lift(run: RunDirectory) -> None:
    before, after = run.manifest.get("eval_before") or {}, run.manifest.get("eval_after") or {}
    if "primary_score" in before and "primary_score" in after:
        lift = after["primary_score"] - before["primary_score"]
        run.update_manifest(
            eval={"before": before["primary_score"], "after": after["primary_score"], "lift": lift}
        )
