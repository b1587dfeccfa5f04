"""GRPO's starting point: the model it loads and the rendering it asks with.

`model.model_id` is anything the SFT path loads (hub id, save_pretrained directory) or a finished
SFT run directory, whose final_model/ is used with its tokenizer and its saved rendering
(tunix_rt_render.json). One rendering serves sampling, eval before and eval after, and is saved
with GRPO's own final model, so every prompt is asked in the shape the model was trained on.

A LoRA SFT run (its final_model/adapter/ exists) started with a `lora:` section continues that
adapter by default (`grpo.adapter: continue`): the base it was trained on is loaded (the SFT run's
manifest records its source; peft's adapter_config.json names it otherwise) and the adapter goes
on training. `grpo.adapter: new` puts fresh adapters on the run's merged final_model/ instead.
Without a `lora:` section GRPO trains the merged final_model/ in full, as for any SFT run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt.errors import ConfigError, ModelError
from tunix_rt.eval.runner import read_render_settings, resolve_model_dir
from tunix_rt.evidence import RENDER_FILE, read_manifest
from tunix_rt.train.lora import ADAPTER_DIR
from tunix_rt.train.render import template_kind
from tunix_rt.train.sources import ModelSource, resolve_model_source

ADAPTER_CONFIG = "adapter_config.json"  # peft's record of an adapter: its base, r, alpha, targets
# lora: keys and the adapter_config.json keys peft records them under.
PEFT_KEYS = {"r": "r", "alpha": "lora_alpha", "dropout": "lora_dropout"}


@dataclass(frozen=True)
class StartPoint:
    source: str
    """What to load: an SFT run's final_model/, else model.model_id as given (with a continued
    adapter: the adapter's base, see `base`)."""
    saved_render: dict[str, Any] | None
    """The source's saved rendering (an SFT run's final_model has one), else None."""
    adapter: Path | None = None
    """The LoRA adapter GRPO continues (a LoRA SFT run's final_model/adapter/), else None."""
    base: ModelSource | None = None
    """The model that adapter was trained on (set with `adapter`)."""
    adapter_lora: dict[str, Any] | None = None
    """That adapter's LoRA settings as the SFT run recorded them (its `lora:` section), which a
    continued adapter keeps whatever the config's lora: section defaults to."""

    def render_settings(self, tokenizer: Any, system_instruction: str | None) -> dict[str, Any]:
        """The rendering to sample and evaluate with: the saved one, else this config's."""
        kind = template_kind(tokenizer)
        if self.saved_render is None:
            return {"template": kind, "system_instruction": system_instruction}
        if self.saved_render["template"] != kind:
            # The final model's saved rendering takes its template from the tokenizer (train/export.py).
            raise ModelError(
                f"{self.source}/{RENDER_FILE}: template {self.saved_render['template']!r}, but the tokenizer "
                f"saved beside it renders {kind!r}; the directory was edited after training"
            )
        return self.saved_render


def resolve_start(
    model_id: str,
    system_instruction: str | None,
    lora_given: dict[str, Any] | None = None,
    adapter_mode: str = "continue",
) -> StartPoint:
    """The starting point; ConfigError when the config's system_instruction contradicts the one the
    starting model was trained with (GRPO would ask in a shape SFT never taught), or when the
    `lora:` keys the config sets (`lora_given`; None: no lora: section) contradict the adapter it
    continues."""
    model_dir, run_dir = resolve_model_dir(model_id)
    saved = read_render_settings(model_dir) if model_dir.is_dir() else None
    if (
        saved is not None
        and system_instruction is not None
        and system_instruction != saved.get("system_instruction")
    ):
        raise ConfigError(
            f"system_instruction: {model_dir / RENDER_FILE} says the starting model was trained with "
            f"{saved.get('system_instruction')!r}, the config sets {system_instruction!r}; GRPO asks with the "
            "starting model's rendering (remove system_instruction from the config, or make them equal)"
        )
    source = str(model_dir) if model_dir.is_dir() else model_id
    adapter = model_dir / ADAPTER_DIR
    has_adapter = model_dir.is_dir() and (adapter / ADAPTER_CONFIG).is_file()
    if adapter_mode == "new" and (lora_given is None or not has_adapter):
        raise ConfigError(
            f"grpo.adapter: new puts fresh adapters on a LoRA SFT run's merged model; it needs a lora: "
            f"section and a model.model_id whose final_model has an {ADAPTER_DIR}/ ({model_id} "
            f"{'has one' if has_adapter else 'has none'})"
        )
    if lora_given is None or not has_adapter or adapter_mode == "new":
        return StartPoint(source=source, saved_render=saved)
    recorded = _adapter_record(adapter, run_dir)
    _check_lora_agrees(lora_given, recorded, adapter)
    base = _adapter_base(adapter, run_dir)
    return StartPoint(
        source=base.id_or_path, saved_render=saved, adapter=adapter, base=base, adapter_lora=recorded
    )


def _adapter_record(adapter: Path, run_dir: Path | None) -> dict[str, Any]:
    """The adapter's LoRA settings as a `lora:` section: the SFT run's manifest records them with
    the same keys; peft's adapter_config.json (r, alpha, dropout) otherwise."""
    manifest = _manifest(run_dir)
    if isinstance(manifest.get("lora"), dict):
        return manifest["lora"]
    peft_cfg = _adapter_config(adapter)
    return {key: peft_cfg[peft_key] for key, peft_key in PEFT_KEYS.items() if peft_key in peft_cfg}


def _check_lora_agrees(given: dict[str, Any], recorded: dict[str, Any], adapter: Path) -> None:
    """A continued adapter keeps its own shape: a lora: key set to something else is refused."""
    for key, value in given.items():
        if key not in recorded:
            continue
        mine = sorted(value) if isinstance(value, (list, tuple)) else value
        theirs = sorted(recorded[key]) if isinstance(recorded[key], (list, tuple)) else recorded[key]
        if mine != theirs:
            raise ConfigError(
                f"lora.{key}: the config sets {value!r}, the adapter GRPO continues ({adapter}) was trained "
                f"with {recorded[key]!r}; remove lora.{key} (a continued adapter keeps its shape) or set "
                "grpo.adapter: new for fresh adapters on the merged model"
            )


def _adapter_base(adapter: Path, run_dir: Path | None) -> ModelSource:
    """The model the adapter was trained on: the SFT run's recorded source (hub id with revision,
    directory or GGUF file), else the base_model_name_or_path peft saved in adapter_config.json."""
    recorded = _manifest(run_dir).get("model", {}).get("source")
    if isinstance(recorded, dict):
        try:
            return ModelSource(**recorded)
        except TypeError as exc:
            raise ModelError(
                f"{run_dir}/run_manifest.json: model.source is not a model source: {exc}"
            ) from exc
    name = _adapter_config(adapter).get("base_model_name_or_path")
    if not name:
        raise ModelError(
            f"{adapter / ADAPTER_CONFIG}: base_model_name_or_path is empty and there is no run manifest "
            "naming the base this adapter was trained on"
        )
    return resolve_model_source(str(name))


def _adapter_config(adapter: Path) -> dict[str, Any]:
    path = adapter / ADAPTER_CONFIG
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable adapter config: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ModelError(f"{path}: not a JSON object")
    return loaded


def _manifest(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        return read_manifest(run_dir) or {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{run_dir}/run_manifest.json: unreadable: {exc}") from exc
