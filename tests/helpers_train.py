"""Small datasets and configs for training tests: seconds per run on a 2-core CPU."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def write_traces(path: Path, n: int = 48, seed: int = 0) -> Path:
    """n arithmetic traces whose lengths vary (so batches need padding)."""
    rng = random.Random(seed)
    lines = []
    for k in range(n):
        a, b = rng.randint(1, 10 ** rng.randint(1, 4)), rng.randint(1, 99)
        steps = [{"i": 0, "type": "setup", "content": f"We add {a} and {b}."}]
        steps += [{"i": j, "type": "note", "content": "Carry the tens."} for j in range(1, 1 + k % 3)]
        steps.append({"i": len(steps), "type": "result", "content": f"{a} + {b} = {a + b}"})
        lines.append(
            json.dumps(
                {
                    "trace_version": "1.0",
                    "prompt": f"What is {a} plus {b}?",
                    "steps": steps,
                    "final_answer": str(a + b),
                    "meta": {"index": k},
                }
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scratch_config(**training: Any) -> dict[str, Any]:
    """A tiny from-scratch Llama; training keys override the defaults."""
    base = {
        "device": "cpu",
        "dtype": "float32",
        "batch_size": 4,
        "max_seq_length": 128,
        "max_steps": 6,
        "learning_rate": 3e-3,
        "warmup_steps": 1,
        "logging_steps": 1,
        "seed": 7,
    }
    base.update(training)
    return {
        "model": {"init": "scratch", "hidden_size": 32, "num_layers": 2, "num_heads": 2, "vocab_size": 300},
        "training": base,
    }


def pretrained_config(model_dir: Path, **training: Any) -> dict[str, Any]:
    config = scratch_config(**training)
    config["model"] = {"model_id": str(model_dir)}
    return config


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and "loss" in json.loads(line)]


def read_weights(run_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "final_model" / "model.safetensors"))


def tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in RUN/tensorboard/ (training.report_to), read the way TensorBoard reads
    it: events an earlier process logged past a resume's step are purged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def metric_series(run_dir: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) of every metrics.jsonl line that has `key` (not null)."""
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [(row["step"], row[key]) for row in rows if row.get(key) is not None]
