"""Cross-field checks of a training plan, run before any weights are loaded (and by --dry-run).

Each check compares settings that pydantic validates one by one but that only mean something
together: the eval set named by `training.eval_set` must exist and load, `training.max_seq_length`
must fit the model's position limit, the longest eval prompt plus `training.eval_max_new_tokens`
must fit it too, `training.strategy: fsdp` (or `ddp`) needs several processes, and each tracker
in `training.report_to` needs its package installed (train/trackers.py). Without these a
typo in the eval set, or a generation past the model's positions, surfaces only after training.

Cheap by design: the position limit is read from the model's config (config.json of a local
directory or the Hugging Face cache; for a hub model not cached, only config.json is fetched), or
for a scratch model from the config itself (it is built with `training.max_seq_length` positions);
no weights are read. Each blocker is one sentence naming the key and its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt.config import Config, ModelConfig
from tunix_rt.errors import TunixError
from tunix_rt.train.trackers import missing_packages

# Config attributes that hold a model's position limit, in the order transformers' configs use them.
_POSITION_ATTRS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


@dataclass(frozen=True)
class PositionLimit:
    positions: int
    source: str  # where the number comes from, for the message


def check_plan(config: Config, *, world_size: int = 1, tokenizer: Any = None) -> list[str]:
    """Blockers (sentences naming key and value) that would make this plan fail or mislead; [] if none.

    world_size: the number of training processes (torchrun's WORLD_SIZE, or --nproc).
    tokenizer: the run's tokenizer when the caller has it (a scratch model's is trained on the data);
    otherwise a pretrained model's tokenizer is read from local files, and the eval-prompt check is
    left out when none can be read (the model's availability is reported by its own check).
    """
    blockers = _check_strategy(config, world_size) + missing_packages(config.training.report_to)
    limit = position_limit(config.model, config.training.max_seq_length)
    if limit is not None and config.training.max_seq_length > limit.positions:
        blockers.append(
            f"training.max_seq_length = {config.training.max_seq_length} is more than the model's "
            f"{limit.positions} positions ({limit.source}): lower it to at most {limit.positions}"
        )
    if config.training.eval_set:
        blockers += _check_eval_set(config, limit, tokenizer)
    return blockers


def _check_strategy(config: Config, world_size: int) -> list[str]:
    strategy = config.training.strategy
    if strategy == "auto" or world_size > 1:
        return []
    return [
        f"training.strategy = {strategy!r} needs several processes, but this is one process, where "
        f"{strategy} would do nothing and the run would train unsharded on one device: launch with "
        "--nproc N (or torchrun), or set training.strategy: auto"
    ]


def position_limit(model: ModelConfig, max_seq_length: int) -> PositionLimit | None:
    """The model's position limit, or None when its config cannot be read here (or names none)."""
    if model.init == "scratch":
        # train.loop builds a scratch model with max_positions = training.max_seq_length.
        return PositionLimit(
            max_seq_length, "a scratch model is built with training.max_seq_length positions"
        )
    hf_config = _read_model_config(model)
    if hf_config is None:
        return None
    text_config = hf_config.get_text_config() if hasattr(hf_config, "get_text_config") else hf_config
    for attr in _POSITION_ATTRS:
        value = getattr(text_config, attr, None)
        if isinstance(value, int) and value > 0:
            return PositionLimit(value, f"{attr} in {model.model_id}'s config.json")
    return None


def _read_model_config(model: ModelConfig) -> Any:
    """AutoConfig of a local directory or hub id (cache first; config.json only when online)."""
    from transformers import AutoConfig

    from tunix_rt.train.model import hub_reachable

    name = str(model.model_id)
    kwargs: dict[str, Any] = {"trust_remote_code": model.trust_remote_code}
    if model.revision and not Path(name).is_dir():
        kwargs["revision"] = model.revision
    try:
        return AutoConfig.from_pretrained(name, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        if Path(name).is_dir() or not hub_reachable():
            return None  # not readable here: the model's availability check says why
    try:
        return AutoConfig.from_pretrained(name, **kwargs)
    except (OSError, ValueError):
        return None


def _check_eval_set(config: Config, limit: PositionLimit | None, tokenizer: Any) -> list[str]:
    from tunix_rt.data.evalsets import load_eval_set

    tcfg = config.training
    try:
        evalset = load_eval_set(tcfg.eval_set)
    except TunixError as exc:
        return [f"training.eval_set = {tcfg.eval_set!r} cannot be used: {exc}"]
    if limit is None:
        return []
    tokenizer = tokenizer if tokenizer is not None else _local_tokenizer(config.model)
    if tokenizer is None:
        return []
    longest, item_id = _longest_prompt(evalset.items, tokenizer, config.system_instruction)
    if longest + tcfg.eval_max_new_tokens <= limit.positions:
        return []
    room = limit.positions - longest
    if room >= 1:
        remedy = f"lower training.eval_max_new_tokens to at most {room}"
    else:
        remedy = "the prompt alone does not fit: shorten the eval set's prompts"
    if config.model.init == "scratch":
        remedy += ", or raise training.max_seq_length (the scratch model's positions)"
    return [
        f"training.eval_max_new_tokens = {tcfg.eval_max_new_tokens}: the longest prompt of eval set "
        f"{tcfg.eval_set!r} (item {item_id}, {longest} tokens) plus {tcfg.eval_max_new_tokens} new tokens "
        f"needs {longest + tcfg.eval_max_new_tokens} positions, more than the model's {limit.positions} "
        f"({limit.source}): {remedy}"
    ]


def _longest_prompt(items: list[Any], tokenizer: Any, system_instruction: str | None) -> tuple[int, str]:
    """(tokens, item id) of the longest prompt, rendered and encoded exactly as evaluation does."""
    from tunix_rt.train.render import render_prompt
    from tunix_rt.train.tokenize import encode_prompt

    lengths = [
        (len(encode_prompt(tokenizer, render_prompt(item.prompt, tokenizer, system_instruction))), item.id)
        for item in items
    ]
    return max(lengths, key=lambda pair: pair[0])


def _local_tokenizer(model: ModelConfig) -> Any:
    """A pretrained model's tokenizer from local files only (no weights), or None."""
    if model.init == "scratch":
        return None  # trained on the dataset: only the caller that trained it can pass it
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": model.trust_remote_code, "local_files_only": True}
    if model.revision and not Path(str(model.model_id)).is_dir():
        kwargs["revision"] = model.revision
    try:
        return AutoTokenizer.from_pretrained(str(model.model_id), **kwargs)
    except (OSError, ValueError):
        return None
