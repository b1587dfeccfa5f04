"""Fabricated run directories (manifest, metrics, eval files written by hand) for the runs tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def make_run(
    root: Path,
    name: str,
    *,
    lr: float = 3e-4,
    final_loss: float | None = 1.0,
    score: float | None = 0.5,
    correct: dict[str, bool] | None = None,
    status: str = "completed",
    steps: int = 10,
    created_at: str = "2026-01-01T10:00:00+00:00",
) -> Path:
    run = root / name
    (run / "eval").mkdir(parents=True)
    manifest: dict[str, Any] = {
        "run_id": f"id-{name}",
        "created_at": created_at,
        "status": status,
        "command": ["tunix-rt", "train", "--config", "c.yaml", "--set", f"training.lr={lr}", "-o", str(run)],
        "config": {"path": "c.yaml", "sha256": "ab" * 32,
                   "resolved": {"training": {"lr": lr, "max_steps": steps}, "model": {"id": "tiny"}}},
        "dataset": {"key": "reasoning-mix", "path": "/x/dataset.jsonl", "sha256": "cd" * 32, "count": 100,
                    "skipped": 0},
        "model": {"id": "tiny-gpt2", "revision": None, "parameters": 1000, "dtype": "float32"},
        "device": {"type": "cpu", "name": "Test CPU"},
        "summary": {"global_step": steps, "epochs": 1, "final_loss": final_loss, "train_runtime_s": 12.5,
                    "train_tokens": 5000, "tokens_per_sec": 400.0, "samples_per_sec": 8.0,
                    "peak_memory_mb": 300},
        "eval": None if score is None else {"eval_set": "set", "primary_score": score, "n_items": 4},
    }  # fmt: skip
    (run / "run_manifest.json").write_text(json.dumps(manifest))
    metrics = [
        {"step": s, "epoch": 0, "loss": 3.0 / s + (final_loss or 0), "lr": lr, "grad_norm": 1.0, "tokens": 100,
         "tokens_per_sec": 400.0, "samples_per_sec": 8.0, "elapsed_s": s}
        for s in range(1, steps + 1)
    ]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics) + '{"step": 11, "lo')
    if correct is not None:
        rows = [{"id": i, "correct": ok, "section": "core", "category": "c", "difficulty": "easy"}
                for i, ok in correct.items()]  # fmt: skip
        (run / "eval" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        n = len(correct)
        n_ok = sum(correct.values())
        summary = {"eval_set": {"spec": "set", "n_items": n}, "primary_score": n_ok / n,
                   "scorecard": {"n_items": n, "n_scored": n, "n_skipped": 0, "n_correct": n_ok,
                                 "format_compliance": 1.0,
                                 "section_scores": {"core": {"accuracy": n_ok / n, "n": n, "correct": n_ok}},
                                 "category_scores": {}, "difficulty_scores": {}}}  # fmt: skip
        (run / "eval" / "eval_summary.json").write_text(json.dumps(summary))
    return run
