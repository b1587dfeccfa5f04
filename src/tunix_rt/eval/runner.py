"""evaluate(model, eval_set, output): generate, score, write predictions.jsonl + eval_summary.json.

The model is asked each question through `train.render.render_prompt` with the settings training
saved in `MODEL_DIR/tunix_rt_render.json`, so evaluation sees prompts in exactly the trained shape.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunix_rt.data.evalsets import EvalSet, load_eval_set
from tunix_rt.errors import ModelError, TunixError
from tunix_rt.eval.score import score
from tunix_rt.eval.scorecard import build_scorecard
from tunix_rt.evidence import (
    EVAL_SUMMARY_FILE,
    FINAL_MODEL,
    MANIFEST,
    PREDICTIONS_FILE,
    RENDER_FILE,
    read_manifest,
)
from tunix_rt.fsutil import atomic_write_json, atomic_write_text
from tunix_rt.train.render import CHAT, PLAIN, render_prompt


def resolve_model_dir(model: str | Path) -> tuple[Path, Path | None]:
    """(model directory, run directory or None): a RUN_DIR means its final_model/."""
    path = Path(model).expanduser()
    if (path / FINAL_MODEL).is_dir():
        return path / FINAL_MODEL, path
    run_dir = path.parent if (path.parent / MANIFEST).is_file() else None
    return path, run_dir


DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_NEW_TOKENS = 256


def _run_manifest(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        return read_manifest(run_dir) or {}
    except (OSError, ValueError):
        return {}  # a run without a readable manifest is still evaluable; its id is unknown


def read_run_id(run_dir: Path | None) -> str | None:
    return _run_manifest(run_dir).get("run_id")


def generation_settings(
    run_dir: Path | None, batch_size: int | None, max_new_tokens: int | None
) -> tuple[int, int, str]:
    """(batch_size, max_new_tokens, where they came from): as given, else the run's own
    training.eval_batch_size / eval_max_new_tokens, else the defaults. So `tunix-rt eval RUN`
    generates exactly as the run's in-training evaluation did, and scores the same."""
    training = (_run_manifest(run_dir).get("config") or {}).get("resolved", {}).get("training", {})
    source = "given"
    if batch_size is None or max_new_tokens is None:
        source = "the run's config" if training else "defaults"
    batch_size = batch_size or training.get("eval_batch_size") or DEFAULT_BATCH_SIZE
    max_new_tokens = max_new_tokens or training.get("eval_max_new_tokens") or DEFAULT_MAX_NEW_TOKENS
    return int(batch_size), int(max_new_tokens), source


def read_render_settings(model_dir: Path) -> dict[str, Any] | None:
    """The saved {"template", "system_instruction"}, or None when training did not write one."""
    path = model_dir / RENDER_FILE
    if not path.is_file():
        return None
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable render settings: {exc}") from exc
    if not isinstance(settings, dict) or settings.get("template") not in (PLAIN, CHAT):
        raise ModelError(f"{path}: template: expected 'plain' or 'chat', got {settings!r}")
    return settings


def render_for_eval(question: str, tokenizer: Any, settings: dict[str, Any] | None) -> str:
    if settings is None:
        return render_prompt(question, tokenizer, None)
    # "plain" must stay plain even when the tokenizer happens to carry a chat template.
    use_tokenizer = tokenizer if settings["template"] == CHAT else None
    return render_prompt(question, use_tokenizer, settings.get("system_instruction"))


def _resolve_device(requested: str) -> tuple[str, Any]:
    """(torch device string, DeviceChoice) via the device preflight: no silent fallback."""
    from tunix_rt.device.preflight import resolve_device

    choice = resolve_device(requested)
    return choice.device, choice


def eval_dtype(choice: Any, requested: str = "auto") -> str:
    """The dtype evaluation generates in: auto is bf16 where the device has native bf16 (a GPU from
    sm_80, a CPU with AVX512-BF16 or AMX), else float32; float16 is never chosen for you, since
    some models (Gemma) overflow in it.

    bf16 on CPU because decoding is most of an evaluation's time and it is twice as fast: SmolLM2-135M,
    64 prompts x 72 tokens, 2-core AMD EPYC (avx512_bf16), eager attention: 291 tok/s in bf16
    against 149 in float32 (benchmarks/eval_generation.py; sdpa in bf16: 345). Its cost: bf16 rounds differently at different batch shapes, so a
    row's tokens can depend on the batch it sat in. The dtype and batch size are recorded in
    eval_summary.json; `tunix-rt eval --dtype float32` gives batch-invariant output.
    """
    from tunix_rt.device.preflight import choose_dtype

    dtype = choose_dtype(choice, requested)
    return "float32" if dtype == "float16" and requested == "auto" else dtype


def load_model(model_dir: Path, device: str, dtype: str) -> tuple[Any, Any]:
    """AutoModelForCausalLM + AutoTokenizer from a save_pretrained directory; ModelError if not."""
    if not model_dir.exists():
        raise ModelError(f"{model_dir}: no such model or run directory")
    if not (model_dir / "config.json").is_file():
        raise ModelError(
            f"{model_dir}: not a model directory (no config.json); pass a run directory with "
            "final_model/ or a save_pretrained directory"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunix_rt.train.model import use_fused_activations

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{model_dir}: cannot load model/tokenizer: {exc}") from exc
    use_fused_activations(model)  # the same function as training ran, one kernel (GPT-2's GELU)
    return model.to(device), tokenizer


def evaluate(
    model: str | Path,
    eval_set: str,
    output: Path,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    limit: int | None = None,
    model_obj: Any = None,
    tokenizer: Any = None,
    render_settings: dict[str, Any] | None = None,
    dtype: str | None = None,
) -> dict[str, Any]:
    """Generate and score every item; write OUTPUT/predictions.jsonl and OUTPUT/eval_summary.json.

    batch_size / max_new_tokens: None means the run's own eval settings (see generation_settings).
    model_obj / tokenizer: an already-loaded model; it stays on its own device and dtype, and
    `model` then only names where it came from. Training does not pass one after training: it
    evaluates its final_model/ exactly as `tunix-rt eval` does, so the two scores are the same number.
    render_settings: how to ask ({"template", "system_instruction"}): a recipe passes the rendering it
    trains with (eval before training, GRPO); default: the model directory's saved settings.
    dtype: auto | float32 | bfloat16 (see `eval_dtype`); None means auto for a model loaded here and
    "as it is" for model_obj. Given with model_obj, a copy in that dtype is evaluated when the model's
    differs, so "before training" generates exactly as the loaded final_model/ will after it.
    """
    from tunix_rt.eval.generate import generate

    if (batch_size is not None and batch_size < 1) or (max_new_tokens is not None and max_new_tokens < 1):
        raise TunixError("--batch-size and --max-new-tokens must be at least 1")
    if limit is not None and limit < 1:
        raise TunixError("--limit must be at least 1")
    output = Path(output)
    model_dir, run_dir = resolve_model_dir(model)
    batch_size, max_new_tokens, settings_source = generation_settings(run_dir, batch_size, max_new_tokens)
    evalset = load_eval_set(eval_set)  # before the model: a typo in the set fails in a second
    items = evalset.items[:limit] if limit is not None else evalset.items

    if model_obj is None:
        device_str, choice = _resolve_device(device)
        dtype = eval_dtype(choice, dtype or "auto")
        model_obj, loaded_tokenizer = load_model(model_dir, device_str, dtype)
        tokenizer = loaded_tokenizer if tokenizer is None else tokenizer
    else:
        model_obj, device_str, dtype = _in_eval_dtype(model_obj, dtype)
        if tokenizer is None:
            tokenizer = load_model_tokenizer(model_dir)

    settings = render_settings
    if settings is None and model_dir.is_dir():
        settings = read_render_settings(model_dir)
    prompts = [render_for_eval(item.prompt, tokenizer, settings) for item in items]
    started = time.perf_counter()
    generations = generate(
        model_obj, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, device=device_str
    )
    runtime = time.perf_counter() - started

    rows = []
    for item, gen in zip(items, generations, strict=True):
        judged = score(gen.text, item.expected_answer)
        rows.append(
            {
                "id": item.id,
                "prompt": item.prompt,
                "prediction": gen.text,
                "answer": judged.answer,
                "expected": item.expected_answer,
                "correct": judged.correct,
                "rule": judged.rule,
                "section": item.section,
                "category": item.category,
                "difficulty": item.difficulty,
                "n_tokens": gen.n_tokens,
                "stopped_at_eos": gen.stopped_at_eos,
            }
        )
    scorecard = build_scorecard([{**row, "scored": bool(row["expected"])} for row in rows])
    tokens = sum(gen.n_tokens for gen in generations)
    summary = {
        "eval_set": _eval_set_block(evalset, len(items)),
        "model": {"path": str(model_dir), "run_id": read_run_id(run_dir)},
        "metrics": {"answer_correctness": scorecard["accuracy"]},
        "primary_score": scorecard["accuracy"],
        "scorecard": scorecard,
        "generation": {
            "tokens": tokens,
            "tokens_per_sec": round(tokens / runtime, 2) if runtime > 0 else None,
            "runtime_s": round(runtime, 3),
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "settings_from": settings_source,
            "device": device_str,
            "dtype": dtype,
            "template": settings["template"] if settings else None,
        },
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    output.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    atomic_write_text(output / PREDICTIONS_FILE, lines)
    atomic_write_json(output / EVAL_SUMMARY_FILE, summary)
    return summary


def _in_eval_dtype(model: Any, requested: str | None) -> tuple[Any, str, str]:
    """(model, device, dtype) for an in-memory model: as it is, or a copy in the eval dtype with the
    attention `load_model` gives (sdpa where the architecture has it), so it generates as final_model/
    loaded from disk does. The caller's model (e.g. the one about to train) is never changed."""
    import copy

    import torch

    from tunix_rt.train.lora import is_peft_model, merged_copy
    from tunix_rt.train.model import cast_as_loading_does

    first = next(model.parameters())
    device_str, dtype = str(first.device), str(first.dtype).removeprefix("torch.")
    if requested is None:
        return model, device_str, dtype
    wanted = eval_dtype(_resolve_device(device_str)[1], requested)
    copied = is_peft_model(model)
    if copied:
        # A LoRA policy generates as its final_model/ does: the adapter merged in float32, then cast.
        model, dtype = merged_copy(model, torch.float32, device_str), "float32"
    attention = "sdpa" if getattr(model, "_supports_sdpa", False) else None
    if wanted == dtype and attention in (None, model.config._attn_implementation):
        return model, device_str, dtype
    evaluated = cast_as_loading_does(model if copied else copy.deepcopy(model), getattr(torch, wanted))
    if attention is not None:
        evaluated.set_attn_implementation(attention)
    return evaluated, device_str, wanted


def load_model_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{model_dir}: cannot load tokenizer: {exc}") from exc


def _eval_set_block(evalset: EvalSet, n_items: int) -> dict[str, Any]:
    return {
        "spec": evalset.spec,
        "key": evalset.key,
        "path": str(evalset.path),
        "sha256": evalset.sha256,
        "n_items": n_items,
        "n_available": len(evalset.items),
    }
