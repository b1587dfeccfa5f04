"""benchmarks/grpo_throughput.py at --tiny: both sides run GRPO on the same prompts and the report adds up.

The tiny run uses a ~100k-parameter random-init GPT-2 (no warm-start SFT), 3 steps of 2 prompts x
G=2, 12 completion tokens: seconds of compute. The TRL row needs the `bench` extra (trl,
accelerate, datasets); without it the row must come back as skipped with the reason (what
`make test` with only the dev extra sees), never as a crash and never left out.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_bench import load_benchmark
from tunix_rt.device.preflight import resolve_device

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "grpo_throughput.py"
HAVE_TRL = all(importlib.util.find_spec(p) is not None for p in ("trl", "accelerate", "datasets"))


def _load_module():
    return load_benchmark("grpo_throughput")


def test_tiny_grpo_benchmark_runs_both_sides_on_the_same_prompts(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--workdir", str(tmp_path / "work"), "--json", str(out),
         "--timeout", "400"],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    setup, fixture = result["setup"], result["fixture"]
    rows = {row["contender"]: row for row in result["rows"]}
    trl_names = ("trl-grpo", "trl-grpo-fp32")
    assert set(rows) == {"tunix-rt-grpo", "tunix-rt-grpo-fp32", *trl_names}
    assert fixture["params"] < 300_000 and fixture["render"]["template"] == "plain"
    if not HAVE_TRL:
        for name in trl_names:
            assert rows[name]["status"] == "skipped", rows[name]
            assert "not installed" in rows[name]["reason"]
    checked = [row for name, row in rows.items() if HAVE_TRL or name not in trl_names]
    bf16 = resolve_device("cpu").bf16
    assert rows["tunix-rt-grpo"]["dtype"] == ("bfloat16" if bf16 else "float32")
    assert rows["tunix-rt-grpo-fp32"]["dtype"] == "float32"
    rows_per_step = setup["prompts_per_step"] * setup["num_generations"]
    for row in checked:
        assert row["status"] == "ok", row
        steps = row["steps"]
        assert [s["step"] for s in steps] == list(range(1, setup["steps"] + 1))
        for s in steps:
            assert s["step_s"] > 0 and 0 < s["generation_s"] <= s["step_s"]
            assert (
                s["update_s"] == round(s["step_s"] - s["generation_s"], 4) or row["contender"] != "trl-grpo"
            )
            assert 0.0 <= s["reward_mean"] <= 1.0 and math.isfinite(s["loss"])
            assert 1 <= s["completion_length_mean"] <= setup["max_completion_length"]
            assert s["generated_tokens"] == round(s["completion_length_mean"] * rows_per_step)
        timed = steps[1:]
        assert row["seconds_per_step"] == round(sum(s["step_s"] for s in timed) / len(timed), 4)
        gen_tokens = sum(s["generated_tokens"] for s in timed)
        assert row["generated_tokens_per_sec"] == round(gen_tokens / sum(s["generation_s"] for s in timed), 1)
        assert (row["reward_first"], row["reward_last"]) == (
            steps[0]["reward_mean"],
            steps[-1]["reward_mean"],
        )
        assert row["peak_rss_mb"] > 0 and row["wall_s"] > row["seconds_per_step"]
    if HAVE_TRL:
        trl, ours = rows["trl-grpo"], rows["tunix-rt-grpo"]
        assert (trl["dtype"], rows["trl-grpo-fp32"]["dtype"]) == (ours["dtype"], "float32")
        assert rows["trl-grpo-fp32"]["settings"]["bf16"] is False and trl["settings"]["bf16"] is bf16
        settings = trl["settings"]
        # One generation of B prompts x G completions per optimizer step, as tunix-rt's step.
        assert settings["per_device_train_batch_size"] == settings["generation_batch_size"] == rows_per_step
        assert (
            settings["steps_per_generation"] == 1 and settings["num_generations"] == setup["num_generations"]
        )
        assert (settings["loss_type"], settings["scale_rewards"], settings["beta"]) == ("dapo", "group", 0.0)
        assert settings["use_vllm"] is False
        assert settings["gradient_checkpointing"] is False and settings["shuffle_dataset"] is False
        assert trl["global_step"] == ours["global_step"] == setup["steps"]
        fastest = max(rows[name]["steps_per_sec"] for name in trl_names)
        assert ours["ratio_to_trl"] == round(ours["steps_per_sec"] / fastest, 2)
        assert result["notes"][0].startswith(f"tunix-rt-grpo ({ours['dtype']}) vs trl-grpo")
    assert f"CPU: {result['machine']['cpu']}" in proc.stdout and "s/step" in proc.stdout
    assert "load average" in proc.stdout


def test_trl_gets_the_prompts_in_tunix_rts_step_order(tmp_path: Path) -> None:
    """The rows handed to TRL (shuffle off) are, step by step, the prompts the recipe samples."""
    module = _load_module()
    from tunix_rt.rl.data import load_prompts, step_prompts

    prompts = tmp_path / "prompts.jsonl"
    records = [
        {"trace_version": "1.0", "prompt": f"What is {k} + 1?", "final_answer": str(k + 1),
         "steps": [{"i": 0, "type": "step", "content": f"{k} + 1 = {k + 1}"}]}
        for k in range(6)
    ]  # fmt: skip
    prompts.write_text("".join(json.dumps(r) + "\n" for r in records))
    items = load_prompts(str(prompts)).items
    rendered = tmp_path / "rendered.jsonl"
    rendered.write_text(
        "".join(
            json.dumps({"id": i.id, "prompt": f"Q: {i.prompt}", "answer": i.answer}) + "\n" for i in items
        )
    )
    fixture = module.GrpoFixture(
        path=tmp_path, model_dir=tmp_path, model_name="m", params=1, prompts=prompts, rendered=rendered,
        n_prompts=len(items), render={"template": "plain", "system_instruction": None}, sft_seconds=None,
    )  # fmt: skip
    setup = module.Setup(prompts_per_step=3, num_generations=2, max_completion_length=8, steps=5)
    rows = module.step_order(fixture, setup)
    assert len(rows) == 15  # 5 steps x 3 prompts, across an epoch boundary (6 prompts)
    for step in range(5):
        chosen = step_prompts(items, step, 3, module.SEED)
        assert [r["answer"] for r in rows[step * 3 : step * 3 + 3]] == [items[k].answer for k in chosen]
    assert rows[0]["prompt"].startswith("Q: What is")
    # 4 prompts, 3 a step: the recipe's second step would take 1 prompt, which TRL cannot match.
    short = module.GrpoFixture(**{**vars(fixture), "n_prompts": 4})
    short.prompts.write_text("".join(json.dumps(r) + "\n" for r in records[:4]))
    short.rendered.write_text("".join(rendered.read_text().splitlines(keepends=True)[:4]))
    with pytest.raises(ValueError, match="step 2 would take 1 of 4 prompts, not 3"):
        module.step_order(short, setup)


def test_summary_and_verdict_arithmetic() -> None:
    module = _load_module()

    def steps(step_s: list[float], rewards: list[float]) -> list[dict]:
        return [
            {"step": k + 1, "step_s": s, "generation_s": s / 2, "update_s": s / 2, "generated_tokens": 100,
             "completion_length_mean": 50.0, "reward_mean": r}
            for k, (s, r) in enumerate(zip(step_s, rewards, strict=True))
        ]  # fmt: skip

    ours = {"contender": "tunix-rt-grpo", "status": "ok", "dtype": "bfloat16",
            "steps": steps([9.0, 2.0, 2.0], [0.1, 0.2, 0.3])}  # fmt: skip
    trl = {
        "contender": "trl-grpo",
        "status": "ok",
        "dtype": "bfloat16",
        "steps": steps([3.0, 4.0, 4.0], [0.1, 0.1, 0.4]),
    }
    slow = {
        "contender": "trl-grpo-fp32",
        "status": "ok",
        "dtype": "float32",
        "steps": steps([5.0, 8.0, 8.0], [0, 0, 0]),
    }
    for row in (ours, trl, slow):
        module.summarize(row)
    # The first step (warm-up) is left out of the timings, not out of the reward curve.
    assert ours["seconds_per_step"] == 2.0 and ours["steps_per_sec"] == 0.5 and ours["first_step_s"] == 9.0
    assert ours["generated_tokens_per_sec"] == 100.0  # 200 tokens over 2 s of sampling
    assert (ours["reward_first"], ours["reward_last"], ours["reward_mean"]) == (0.1, 0.3, 0.2)
    lines = module.verdict([ours, slow, trl])  # against TRL's fastest row, whatever the order
    assert ours["ratio_to_trl"] == 2.0 and "2.00x steps/s" in lines[0] and lines[0].endswith(": met")
    assert "vs trl-grpo (bfloat16, TRL's fastest)" in lines[0]
    assert "vs trl-grpo (same dtype): 2.00x" in lines[1] and "0.200 vs 0.200" in lines[1]
    trl["steps"] = steps([3.0, 2.5, 2.5], [0.1, 0.1, 0.4])
    module.summarize(trl)
    assert module.verdict([ours, trl])[0].endswith("NOT met")  # 1.25x < 1.5x
    assert module.verdict([ours, {"contender": "trl-grpo", "status": "skipped"}]) == []
    fp32_only = module.verdict([ours, slow])  # no TRL row of its dtype: the fastest stands in
    assert "4.00x" in fp32_only[0] and "vs trl-grpo-fp32 (no TRL row of its dtype)" in fp32_only[1]
