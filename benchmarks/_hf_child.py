"""One Hugging Face contender of train_throughput.py, run in its own process.

    python benchmarks/_hf_child.py SPEC.json

SPEC (written by the parent) names the recipe (`trl` or `original`), the fixture, the dtype, the
shared hyperparameters and where to write the result JSON. Both recipes train one epoch of the
fixture's pairs with `Trainer.train()` and report its `train_runtime` (the training loop alone).

- trl: TRL's SFTTrainer on a prompt-completion dataset (loss on the completion only), dynamic
  padding to the longest row of each batch (or padding_free / length-grouped batches when the spec
  says so), gradient checkpointing explicitly off (SFTConfig turns it on by default), bf16 autocast
  or fp32. With `ids` in the spec (the LoRA benchmark) the dataset is pre-tokenised: input_ids plus
  a completion_mask, the very ids tunix-rt trains on, and the eval loss is taken on `eval_ids`.
  With `lora` in the spec the model gets peft LoRA adapters (SFTTrainer's peft_config).
- original: the original tunix-rt recipe (training_pt/train.py): plain HF Trainer, every row padded
  to max_length=128 with an attention mask, fp32. The original trained on the question alone; here
  it trains on prompt + completion (loss on the completion) so its tokens and loss compare.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    result: dict[str, Any] = {"contender": spec["contender"], "status": "failed"}
    started = time.perf_counter()
    try:
        result.update(run(spec))
        result["status"] = "ok"
    except Exception as exc:  # the parent reports it as a failed row; the traceback goes to the log
        import traceback

        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["child_seconds"] = round(time.perf_counter() - started, 3)
    Path(spec["result"]).write_text(json.dumps(result, indent=2))
    return 0 if result["status"] == "ok" else 1


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(spec["threads"]))
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    pairs = _read_jsonl(spec["ids"] if spec.get("ids") else spec["pairs"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(
        spec["model_dir"], dtype=torch.float32, attn_implementation=spec.get("attn", "eager")
    )
    common = dict(
        output_dir=str(Path(spec["workdir"]) / "hf_out"),
        per_device_train_batch_size=spec["batch_size"],
        num_train_epochs=1,
        learning_rate=spec["learning_rate"],
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=spec["max_grad_norm"],
        seed=spec["seed"],
        data_seed=spec["seed"],
        logging_steps=spec["logging_steps"],
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        fp16=False,
        bf16=spec["dtype"] == "bfloat16",
    )
    if spec["recipe"] == "trl":
        trainer, settings = _trl_trainer(spec, model, tokenizer, pairs, common)
        tokens, examples = _trl_token_count(trainer)
    elif spec["recipe"] == "original":
        trainer, settings = _original_trainer(spec, model, tokenizer, pairs, common)
        rows = trainer.train_dataset
        tokens, examples = sum(sum(r["attention_mask"]) for r in rows), len(rows)
    else:
        raise ValueError(f"unknown recipe {spec['recipe']!r}")

    output = trainer.train()
    metrics = output.metrics
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    runtime = float(metrics["train_runtime"])
    final_eval = _eval_loss(spec, trainer.model, tokenizer)
    return {
        "train_runtime_s": round(runtime, 3),
        "train_tokens": tokens,
        "examples": examples,
        "steps": int(trainer.state.global_step),
        "final_loss": round(float(losses[-1]), 6) if losses else None,
        "first_loss": round(float(losses[0]), 6) if losses else None,
        "eval_loss": round(final_eval, 6),
        "tokens_per_sec": round(tokens / runtime, 1) if runtime > 0 else None,
        "dtype": spec["dtype"],
        "threads": torch.get_num_threads(),
        "settings": settings,
        "optimizer": str(trainer.args.optim),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "versions": _versions(),
    }


def _read_jsonl(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _eval_loss(spec: dict[str, Any], model: Any, tokenizer: Any) -> float:
    """The fixture's fixed eval loss: on eval_ids (pre-tokenised) or on the first text pairs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _fixture import eval_loss, eval_loss_ids

    if spec.get("eval_ids"):
        rows = [(r["input_ids"], r["n_prompt"]) for r in _read_jsonl(spec["eval_ids"])]
        return eval_loss_ids(model, rows, spec["pad_id"])
    return eval_loss(model, tokenizer, Path(spec["pairs"]))


def _trl_trainer(spec: dict[str, Any], model: Any, tokenizer: Any, pairs: list[dict], common: dict) -> tuple:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    padding_free = bool(spec.get("padding_free"))
    extra: dict[str, Any] = {}
    if spec.get("group_by_length"):
        extra["train_sampling_strategy"] = "group_by_length"
    args = SFTConfig(
        **common,
        **extra,
        **_no_checkpointing(SFTConfig),
        completion_only_loss=True,
        padding_free=padding_free,
        # padding_free refuses a max_length (it cannot enforce it); no fixture row exceeds 128 anyway.
        max_length=None if padding_free else spec["max_length"],
        dataset_num_proc=None,
    )
    if spec.get("ids"):  # pre-tokenised: TRL builds the labels from completion_mask, tokenises nothing
        dataset = Dataset.from_list(
            [{"input_ids": p["input_ids"], "completion_mask": [0] * p["n_prompt"] + [1] * (len(p["input_ids"]) - p["n_prompt"])}
             for p in pairs]
        )  # fmt: skip
    else:
        dataset = Dataset.from_list([{"prompt": p["prompt"], "completion": p["completion"]} for p in pairs])
    peft_config = _peft_config(spec["lora"]) if spec.get("lora") else None
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    settings = {
        "trainer": "trl.SFTTrainer",
        "bf16": args.bf16,
        "gradient_checkpointing": args.gradient_checkpointing,
        "model_is_activation_checkpointing": bool(
            getattr(model, "is_activation_checkpointing", None)
            if hasattr(model, "is_activation_checkpointing")
            else getattr(model, "is_gradient_checkpointing", False)
        ),
        "completion_only_loss": trainer.completion_only_loss,
        "padding_free": trainer.padding_free,
        "max_length": args.max_length,
        "train_sampling_strategy": getattr(args, "train_sampling_strategy", "random"),
        "attn_implementation": model.config._attn_implementation,
        "pretokenized": bool(spec.get("ids")),
        "lora": spec.get("lora"),
    }
    return trainer, settings


def _peft_config(lora: dict[str, Any]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"], task_type="CAUSAL_LM",
    )  # fmt: skip


def _trl_token_count(trainer: Any) -> tuple[int, int]:
    """Non-pad tokens of the epoch: every prepared example is trained on, without padding."""
    ids = trainer.train_dataset["input_ids"]
    return int(sum(len(x) for x in ids)), len(ids)


def _original_trainer(
    spec: dict[str, Any], model: Any, tokenizer: Any, pairs: list[dict], common: dict
) -> tuple:
    """HF Trainer + rows padded to max_length (a plain list dataset: no `datasets` needed)."""
    from transformers import Trainer, TrainingArguments, default_data_collator

    max_length = spec["max_length"]
    texts = [p["prompt"] + p["completion"] + tokenizer.eos_token for p in pairs]
    encoded = tokenizer(
        texts, padding="max_length", max_length=max_length, truncation=True, add_special_tokens=False
    )
    rows = []
    for ids, mask, pair in zip(encoded["input_ids"], encoded["attention_mask"], pairs, strict=True):
        labels = [t if m else -100 for t, m in zip(ids, mask, strict=True)]
        labels[: pair["n_prompt"]] = [-100] * pair["n_prompt"]  # loss on the completion, like the others
        rows.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    args = TrainingArguments(**common, **_no_checkpointing(TrainingArguments))
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=default_data_collator)
    settings = {
        "trainer": "transformers.Trainer",
        "padding": f"max_length={max_length}",
        "bf16": args.bf16,
        "gradient_checkpointing": args.gradient_checkpointing,
        "attn_implementation": model.config._attn_implementation,
    }
    return trainer, settings


def _no_checkpointing(config_cls: Any) -> dict[str, bool]:
    """Activation (gradient) checkpointing explicitly off.

    TRL's SFTConfig defaults `gradient_checkpointing` to True; it recomputes every layer's forward
    during backward (~1/3 more compute) to save memory this benchmark does not need. transformers 5.x
    renamed the field `activation_checkpointing` and keeps the old name as a deprecated alias:
    setting both leaves no doubt and no deprecation warning.
    """
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    return {name: False for name in ("activation_checkpointing", "gradient_checkpointing") if name in names}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
