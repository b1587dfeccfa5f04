"""TRL's GRPOTrainer as one contender of grpo_throughput.py, run in its own process.

    python benchmarks/_trl_grpo_child.py SPEC.json

SPEC (written by the parent, through train_throughput.launch_hf) names the starting model, the
step-ordered prompts (`rows`: {"prompt", "answer"}, already rendered by tunix-rt, in the order
tunix-rt's recipe takes them: step k uses rows k*B .. k*B+B-1), the shared hyperparameters and
where to write the result JSON. The trainer is stock GRPOTrainer; this file only adds timing:

- a TrainerCallback stamps every optimizer step (on_step_begin .. on_step_end: sampling, rewards,
  forward, backward and the optimizer step, the whole step);
- `_generate_and_score_completions` is timed by a subclass calling the stock method, which is the
  step's sampling + reward half (tunix-rt's `generation_s` is its sample_and_score);
  the rest of the step is the update.

Rewards, generated tokens and the rest per step come from TRL's own log (logging_steps 1).
"""

from __future__ import annotations

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


def correctness(prompts: list[str], completions: list[str], answer: list[str], **_: Any) -> list[float]:
    """tunix-rt's scorer on the completion's answer line, as the recipe's `correctness` reward."""
    from tunix_rt.eval.score import score

    return [1.0 if score(text, gold).correct else 0.0 for text, gold in zip(completions, answer, strict=True)]


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(spec["threads"]))
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _hf_child import _no_checkpointing, _versions

    transformers.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(
        spec["model_dir"], dtype=torch.float32, attn_implementation=spec.get("attn", "eager")
    )
    rows = json.loads(Path(spec["rows"]).read_text())
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])
    prompts_per_step, g = spec["prompts_per_step"], spec["num_generations"]
    args = GRPOConfig(
        output_dir=str(Path(spec["workdir"]) / "trl_out"),
        # Per-device batch counts completions, not prompts: B prompts x G completions per optimizer
        # step, one generation batch per step (steps_per_generation = gradient_accumulation_steps = 1).
        per_device_train_batch_size=prompts_per_step * g,
        gradient_accumulation_steps=1,
        num_generations=g,
        max_completion_length=spec["max_completion_length"],
        temperature=spec["temperature"],
        top_p=spec["top_p"],
        top_k=0,
        num_iterations=spec["num_iterations"],
        beta=spec["beta"],
        epsilon=spec["epsilon"],
        loss_type=spec["loss_type"],
        scale_rewards=True,
        mask_truncated_completions=False,
        shuffle_dataset=False,  # the rows are already in tunix-rt's step order
        max_steps=spec["max_steps"],
        learning_rate=spec["learning_rate"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        optim="adamw_torch",
        max_grad_norm=spec["max_grad_norm"],
        seed=spec["seed"],
        data_seed=spec["seed"],
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        log_completions=False,
        use_cpu=True,
        use_vllm=False,
        bf16=bool(spec.get("bf16")),  # autocast; the weights stay float32, as tunix-rt's
        fp16=False,
        dataloader_num_workers=0,
        **_no_checkpointing(GRPOConfig),
    )
    stamps: list[dict[str, float]] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            stamps.append({"begin": time.perf_counter(), "sample": 0.0})

        def on_step_end(self, *_: Any, **__: Any) -> None:
            stamps[-1]["end"] = time.perf_counter()

    class TimedGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs: Any) -> Any:
            begin = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            if stamps and self.model.training:
                stamps[-1]["sample"] += time.perf_counter() - begin
            return out

    trainer = TimedGRPOTrainer(
        model=model, reward_funcs=[correctness], args=args, train_dataset=dataset,
        processing_class=tokenizer, callbacks=[StepClock()],
    )  # fmt: skip
    output = trainer.train()
    logs = [r for r in trainer.state.log_history if "reward" in r]
    steps = []
    for k, (stamp, log) in enumerate(zip(stamps, logs, strict=True), start=1):
        step_s, sample_s = round(stamp["end"] - stamp["begin"], 4), round(stamp["sample"], 4)
        steps.append({
            "step": k,
            "step_s": step_s,
            "generation_s": sample_s,
            "update_s": round(step_s - sample_s, 4),
            "generated_tokens": round(log["completions/mean_length"] * prompts_per_step * g),
            "completion_length_mean": log["completions/mean_length"],
            "reward_mean": log["reward"],
            "correctness_rate": log.get("rewards/correctness/mean", log["reward"]),
            "zero_signal_fraction": log.get("frac_reward_zero_std"),
            "loss": log.get("loss"),
        })  # fmt: skip
    return {
        "steps": steps,
        "train_runtime_s": round(float(output.metrics["train_runtime"]), 3),
        "global_step": int(trainer.state.global_step),
        "dtype": "bfloat16" if args.bf16 else "float32",
        "threads": torch.get_num_threads(),
        "settings": {
            "trainer": "trl.GRPOTrainer",
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "generation_batch_size": args.generation_batch_size,
            "steps_per_generation": args.steps_per_generation,
            "num_generations": args.num_generations,
            "loss_type": args.loss_type,
            "scale_rewards": args.scale_rewards,
            "beta": args.beta,
            "epsilon": args.epsilon,
            "num_iterations": args.num_iterations,
            "use_vllm": args.use_vllm,
            "bf16": args.bf16,
            "gradient_checkpointing": args.gradient_checkpointing,
            "shuffle_dataset": args.shuffle_dataset,
            "attn_implementation": model.config._attn_implementation,
        },
        "versions": _versions(),
    }


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
