"""The final model: a plain save_pretrained directory, loadable without tunix-rt."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tunix_rt.evidence import RENDER_FILE
from tunix_rt.fsutil import atomic_write_json
from tunix_rt.train.lora import is_peft_model, save_final
from tunix_rt.train.render import template_kind


def save_final_model(
    model: Any, state: dict | None, tokenizer: Any, final_dir: Path, system_instruction: str | None
) -> None:
    """save_pretrained into a temp directory, then rename: final_model/ is complete or absent.

    A LoRA model (state unused) is saved merged, with its adapter in final_model/adapter/
    (train/lora.save_final). Beside the weights, RENDER_FILE records how prompts were rendered in
    training, so evaluation (eval/runner.py) renders them the same way.
    """
    tmp = final_dir.with_name(f".tmp-{final_dir.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    if is_peft_model(model):
        save_final(model, tokenizer, tmp)
    else:
        model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    atomic_write_json(
        tmp / RENDER_FILE,
        {"template": template_kind(tokenizer), "system_instruction": system_instruction},
    )
    if final_dir.exists():
        shutil.rmtree(final_dir)
    tmp.rename(final_dir)
