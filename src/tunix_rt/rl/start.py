"""GRPO's starting point: the model it loads and the rendering it asks with.

`model.model_id` is anything the SFT path loads (hub id, save_pretrained directory) or a finished
SFT run directory, whose final_model/ is used with its tokenizer and its saved rendering
(tunix_rt_render.json). One rendering serves sampling, eval before and eval after, and is saved
with GRPO's own final model, so every prompt is asked in the shape the model was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunix_rt.errors import ConfigError, ModelError
from tunix_rt.eval.runner import read_render_settings, resolve_model_dir
from tunix_rt.evidence import RENDER_FILE
from tunix_rt.train.render import template_kind


@dataclass(frozen=True)
class StartPoint:
    source: str
    """What to load: an SFT run's final_model/, else model.model_id as given."""
    saved_render: dict[str, Any] | None
    """The source's saved rendering (an SFT run's final_model has one), else None."""

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


def resolve_start(model_id: str, system_instruction: str | None) -> StartPoint:
    """The starting point; ConfigError when the config's system_instruction contradicts the one the
    starting model was trained with (GRPO would ask in a shape SFT never taught)."""
    model_dir, _ = resolve_model_dir(model_id)
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
    return StartPoint(source=str(model_dir) if model_dir.is_dir() else model_id, saved_render=saved)
