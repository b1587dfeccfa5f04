"""`tunix-rt train`: read the config, then dry-run (print the plan), launch torchrun, or train."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tunix_rt.config import Config, load_config, resolve_config_path
from tunix_rt.errors import ConfigError, TunixError
from tunix_rt.fsutil import sha256_file
from tunix_rt.train.launch import launch_torchrun, torchrun_command
from tunix_rt.train.plan_checks import check_plan
from tunix_rt.train.request import TrainRequest, user_command
from tunix_rt.train.trackers import check_installed


def train_command(args: argparse.Namespace) -> int:
    config_path = resolve_config_path(args.config)
    config, notes = load_config(config_path, args.overrides)
    dataset = args.dataset or config.data.dataset
    if not dataset:
        raise ConfigError(
            f"{config_path}: no dataset: pass --dataset KEY|PATH or set data.dataset in the config"
        )
    nproc, nnodes = args.nproc or 1, args.nnodes or 1
    if args.dry_run:
        return dry_run(
            config, notes, dataset, Path(args.output), args.device, str(config_path), nproc * nnodes
        )
    # Refused here once rather than by each of torchrun's processes (the recipes check it too).
    check_installed(config.training.report_to)
    if nproc * nnodes > 1 and "WORLD_SIZE" not in os.environ:
        if nnodes > 1 and not args.rdzv_endpoint:
            raise ConfigError(
                "--nnodes needs --rdzv-endpoint HOST:PORT (one of the machines, the same on all)"
            )
        command = torchrun_command(
            nproc, sys.argv[1:], nnodes=nnodes, rdzv_endpoint=args.rdzv_endpoint, rdzv_id=args.rdzv_id
        )
        return launch_torchrun(command)

    if config.method == "grpo":
        from tunix_rt.recipes.grpo import train
    else:
        from tunix_rt.recipes.sft import train

    for note in notes:
        print(note, file=sys.stderr)
    request = TrainRequest(
        config=config,
        dataset=dataset,
        output=Path(args.output),
        device=args.device or config.training.device,
        resume=args.resume,
        overwrite=args.overwrite,
        config_path=str(config_path),
        config_sha256=sha256_file(config_path),
        notes=notes,
        argv=user_command(),
    )
    summary = train(request)
    if int(os.environ.get("RANK", 0)) == 0 and config.method == "grpo":
        print(
            f"done: {summary['global_step']} GRPO steps, {summary['generated_tokens_per_sec']} generated "
            f"tokens/s; evidence in {args.output}/"
        )
    elif int(os.environ.get("RANK", 0)) == 0:
        print(
            f"done: {summary['global_step']} steps, final loss {summary['final_loss']}, "
            f"{summary['tokens_per_sec']} tokens/s; evidence in {args.output}/"
        )
    return 0


def dry_run(
    config: Config,
    notes: list[str],
    dataset: str,
    output: Path,
    device: str | None,
    config_path: str,
    nproc: int | None = None,
) -> int:
    """Validate config, dataset and device; print the plan. Exit 0 when config and data are valid.

    Environment blockers (no usable GPU, a hub model that is not cached offline) are listed under
    'blockers' rather than raised, so a config can be checked on a machine other than its target.
    Plan blockers (train/plan_checks.py: settings that cannot work together) are listed too and
    exit 2: they would fail on any machine.
    """
    from tunix_rt.data.loader import load_traces
    from tunix_rt.data.resolver import resolve_dataset
    from tunix_rt.train.batching import plan_steps

    tcfg = config.training
    print(f"config: {config_path} (valid)")
    for note in notes:
        print(f"  {note}")
    if config.method == "grpo":
        return _dry_run_grpo(config, dataset, output, device, nproc)
    resolved = resolve_dataset(dataset)
    loaded = load_traces(resolved.path, skip_invalid=config.data.skip_invalid)
    print(
        f"dataset: {resolved.path} — {len(loaded.traces)} traces, {loaded.skipped} skipped, sha256 {loaded.sha256[:16]}"
    )

    blockers: list[str] = []
    device_line = _plan_device(device or tcfg.device, tcfg.dtype, config.model.attn_implementation, blockers)
    tokenizer, model_line = _plan_tokenizer(config, loaded.traces, blockers)
    print(f"model: {model_line}")
    print(f"device: {device_line}")

    n_examples, n_tokens, too_long = len(loaded.traces), None, 0
    if tokenizer is not None:
        from tunix_rt.train.tokenize import tokenize_traces

        data = tokenize_traces(
            loaded.traces,
            tokenizer,
            system_instruction=config.system_instruction,
            max_seq_length=tcfg.max_seq_length,
        )
        n_examples, n_tokens, too_long = len(data), int(data.lengths.sum()), data.too_long
    processes = nproc or int(os.environ.get("WORLD_SIZE", 1))
    plan_blockers = check_plan(config, world_size=processes, tokenizer=tokenizer)
    effective = tcfg.batch_size * tcfg.gradient_accumulation_steps * processes
    per_epoch, total = plan_steps(n_examples, effective, tcfg.max_steps, tcfg.num_epochs)
    if n_tokens is None:
        print(
            f"examples: {n_examples}; tokens and examples over max_seq_length unknown (tokenizer unavailable)"
        )
    else:
        print(
            f"examples: {n_examples} trainable, {too_long} longer than max_seq_length={tcfg.max_seq_length} (left out)"
        )
        print(f"tokens: {n_tokens} per epoch ({n_tokens / max(n_examples, 1):.0f} per example)")
    print(
        f"steps: {total} ({total / per_epoch:.2f} epochs of {per_epoch} steps); effective batch {effective} = "
        f"{tcfg.batch_size} x {tcfg.gradient_accumulation_steps} accumulation x {processes} processes; "
        f"{tcfg.optimizer}, "
        f"lr {tcfg.learning_rate} ({tcfg.lr_scheduler}, {tcfg.warmup_steps} warmup)"
    )
    print(f"output: {output.resolve()} ({'exists' if output.exists() else 'will be created'})")
    return _report_blockers(blockers, plan_blockers)


def _dry_run_grpo(config: Config, dataset: str, output: Path, device: str | None, nproc: int | None) -> int:
    """The GRPO plan: prompts, rewards, starting point and steps. Gold answers the scorer cannot
    interpret and reward functions that do not import are refused (an error, as training would)."""
    from tunix_rt.recipes.grpo import check_inputs, plan_problems
    from tunix_rt.train.batching import plan_steps
    from tunix_rt.train.model import check_model_available

    tcfg, gcfg = config.training, config.grpo
    processes = nproc or int(os.environ.get("WORLD_SIZE", 1))
    plan_blockers = plan_problems(config, processes)
    if gcfg is None or config.model.init == "scratch":
        return _report_blockers([], plan_blockers)
    prompts, _, start = check_inputs(config, dataset)
    print(
        f"prompts: {prompts.path} — {len(prompts.items)} prompts, every gold answer checked, sha256 {prompts.sha256[:16]}"
    )
    print(
        f"rewards: {', '.join(f'{name} x {weight}' for name, weight in gcfg.rewards.items())} (each probed once)"
    )
    blockers: list[str] = []
    try:
        where = check_model_available(config.model.model_copy(update={"model_id": start.source}))
        print(f"model: {start.source} ({where})")
    except TunixError as exc:
        # model_id may name an SFT run that has not been trained yet: say so before the hub's answer.
        blockers.append(
            f"model.model_id {start.source!r}: no such directory here (a finished SFT run directory or a "
            f"save_pretrained directory; train that run first); as a hub id: {exc}"
            if not Path(start.source).exists()
            else str(exc)
        )
        print(f"model: {start.source} — not available here (see blockers)")
    if config.lora is not None and start.adapter is not None:
        print(f"lora: continuing the adapter {start.adapter} (its own r, alpha and targets) on its base")
    elif config.lora is not None:
        print(
            f"lora: fresh adapters, r {config.lora.r}, alpha {config.lora.alpha}, {config.lora.target_modules}"
        )
    render = start.saved_render or {
        "system_instruction": config.system_instruction,
        "template": "the tokenizer's",
    }
    print(f"rendering: {render['template']} template, system_instruction {render['system_instruction']!r}")
    dtype = "float32" if config.lora is None else tcfg.dtype  # LoRA runs training.dtype, as SFT's LoRA
    print(f"device: {_plan_device(device or tcfg.device, dtype, config.model.attn_implementation, blockers)}")
    per_epoch, total = plan_steps(len(prompts.items), tcfg.batch_size, tcfg.max_steps, tcfg.num_epochs)
    print(
        f"steps: {total} ({total / per_epoch:.2f} epochs of {per_epoch} steps); {tcfg.batch_size} prompts x "
        f"G={gcfg.num_generations} completions of at most {gcfg.max_completion_length} tokens per step; "
        f"{gcfg.num_iterations} update(s) per step, beta {gcfg.beta}, lr {tcfg.learning_rate}"
    )
    print(
        f"eval: {tcfg.eval_set} before and after training"
        if tcfg.eval_set
        else "eval: none (training.eval_set unset)"
    )
    print(f"output: {output.resolve()} ({'exists' if output.exists() else 'will be created'})")
    return _report_blockers(blockers, plan_blockers)


def _report_blockers(blockers: list[str], plan_blockers: list[str]) -> int:
    everything = blockers + plan_blockers
    if everything:
        print(f"ready to train here: no ({len(everything)} blocker{'s' * (len(everything) > 1)})")
        for blocker in everything:
            print(f"  blocker: {blocker}")
    else:
        print("ready to train here: yes")
    return ConfigError.exit_code if plan_blockers else 0


def _plan_device(requested: str, dtype: str, attn: str, blockers: list[str]) -> str:
    from tunix_rt.device.preflight import choose_dtype, resolve_device
    from tunix_rt.train.model import attention_for

    try:
        choice = resolve_device(requested, probe=True)
        line = f"{choice.device} ({choice.name}; {choice.reason}), dtype {choose_dtype(choice, dtype)}"
    except TunixError as exc:
        blockers.append(f"device {requested!r}: {exc}")
        return f"{requested} — not usable here (see blockers)"
    try:
        return f"{line}, attention {attention_for(attn, choice.type)}"
    except TunixError as exc:
        blockers.append(str(exc))
        return f"{line}, attention {attn} — not usable here (see blockers)"


def _plan_tokenizer(config: Config, traces: list[Any], blockers: list[str]) -> tuple[Any, str]:
    from tunix_rt.train.model import check_model_available, load_tokenizer_only, train_scratch_tokenizer

    if config.model.init == "scratch":
        tokenizer = train_scratch_tokenizer(traces, config.system_instruction, config.model.vocab_size)
        m = config.model
        return tokenizer, (
            f"{m.architecture} from scratch: hidden {m.hidden_size}, {m.num_layers} layers, {m.num_heads} heads, "
            f"BPE tokenizer of {len(tokenizer)} tokens trained on the dataset"
        )
    try:
        where = check_model_available(config.model)
    except TunixError as exc:
        blockers.append(str(exc))
        return None, f"{config.model.model_id} — not available here (see blockers)"
    if where == "on the hub (will be downloaded)":
        return None, f"{config.model.model_id} ({where})"
    return load_tokenizer_only(config.model), f"{config.model.model_id} ({where})"
