"""The configs shipped in configs/: each dry-runs as written, and configs/cpu-grpo.yaml trains
end to end through `tunix-rt train` (scaled down) from a finished SFT run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from helpers_rl import write_digit_prompts
from helpers_train import write_traces
from tunix_rt.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Relative model paths (runs/demo) resolve against an empty directory, not the checkout's runs/.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNIX_RT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub model must be reported unavailable, not fetched
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_cpu_grpo_dry_run_as_shipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = CONFIGS / "cpu-grpo.yaml"
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert raw["method"] == "grpo" and raw["training"]["eval_set"]  # held-out eval before and after
    # The config's own dataset key, smaller (the same generator; the shipped 51200 only take longer).
    code = main(["train", "--config", str(config), "--output", str(tmp_path / "run"), "--dry-run",
                 "--dataset", "reasoning-mix:40"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "40 prompts, every gold answer checked" in out
    grpo, training = raw["grpo"], raw["training"]
    assert f"G={grpo['num_generations']} completions of at most {grpo['max_completion_length']} tokens" in out
    assert f"steps: {training['max_steps']}" in out
    assert "eval: reasoning-mix-heldout before and after training" in out
    # The LoRA SFT run it starts from (runs/demo, made by `make demo`) is not here: a named
    # blocker, not a crash.
    assert raw["model"]["model_id"] == "runs/demo" and raw["lora"] == {}  # its adapter, continued
    assert "blocker: model.model_id 'runs/demo': no such directory here" in out
    assert not (tmp_path / "run").exists()


def test_cpu_grpo_dry_run_refuses_a_bad_gold_answer_before_loading(tmp_path: Path, capsys) -> None:
    bad = write_digit_prompts(tmp_path / "bad.jsonl", 3, answer="?!")
    code = main(["train", "--config", str(CONFIGS / "cpu-grpo.yaml"), "--output", str(tmp_path / "run"),
                 "--dry-run", "--dataset", str(bad)])  # fmt: skip
    assert code != 0
    assert f"{bad}:1: expected_answer" in capsys.readouterr().err


def test_cpu_grpo_trains_from_a_finished_sft_run(tmp_path: Path, capsys) -> None:
    traces = write_traces(tmp_path / "traces.jsonl", n=24)
    sft = tmp_path / "sft"
    assert main(["train", "--config", str(CONFIGS / "cpu-smoke.yaml"), "--dataset", str(traces),
                 "--output", str(sft), "--set", "training.max_steps=2"]) == 0  # fmt: skip
    heldout = write_traces(tmp_path / "heldout.jsonl", n=6, seed=9)
    grpo = tmp_path / "grpo"
    args = ["train", "--config", str(CONFIGS / "cpu-grpo.yaml"), "--dataset", str(traces), "--output", str(grpo),
            "--set", f"model.model_id={sft}", "--set", "training.max_steps=2", "--set", "training.batch_size=2",
            "--set", "grpo.num_generations=2", "--set", "grpo.max_completion_length=12",
            "--set", f"training.eval_set={heldout}", "--set", "training.eval_max_new_tokens=12",
            "--set", "training.save_every_steps=1"]  # fmt: skip
    assert main([*args, "--dry-run"]) == 0
    assert "ready to train here: yes" in capsys.readouterr().out
    assert main(args) == 0
    assert "done: 2 GRPO steps" in capsys.readouterr().out
    manifest = json.loads((grpo / "run_manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["method"] == "grpo"
    assert manifest["model"]["source"] == str(sft / "final_model")
    assert manifest["eval_before"]["n_items"] == 6 and manifest["eval"]["n_items"] == 6
    assert manifest["eval"]["lift"] == pytest.approx(manifest["eval"]["after"] - manifest["eval"]["before"])
    assert (grpo / "eval_before" / "predictions.jsonl").is_file() and (
        grpo / "eval" / "predictions.jsonl"
    ).is_file()
    # The SFT run's rendering travels on into GRPO's final model.
    sft_render = json.loads((sft / "final_model" / "tunix_rt_render.json").read_text())
    assert json.loads((grpo / "final_model" / "tunix_rt_render.json").read_text()) == sft_render
