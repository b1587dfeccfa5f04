"""LoRA training runs end to end on tiny local models: adapters only, exact resume, final model,
DDP, eval before and after, validation loss."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from helpers_models import make_tiny_model_dir
from helpers_train import pretrained_config, read_metrics, write_traces
from tunix_rt.config import load_config
from tunix_rt.errors import ConfigError
from tunix_rt.recipes.sft import train
from tunix_rt.train import checkpoint as ckpt
from tunix_rt.train.request import TrainRequest


class Killed(BaseException):
    """Ends a training run from outside, the way kill -9 ends its process's work."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_traces(tmp_path_factory.mktemp("data") / "traces.jsonl", n=48)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("base") / "llama", "llama")


def lora_config(model_dir: Path, lora: dict | None = None, data: dict | None = None, **training) -> dict:
    raw = pretrained_config(model_dir, **training)
    raw["lora"] = {"r": 4, **(lora or {})}
    if data:
        raw["data"] = data
    return raw


def run(raw: dict, dataset: Path, output: Path, **kwargs) -> dict:
    config, notes = load_config(raw)
    return train(TrainRequest(config=config, dataset=str(dataset), output=output, notes=notes, **kwargs))


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run_manifest.json").read_text())


def adapter_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from tunix_rt.train.checkpoint import latest_checkpoint

    return load_file(str(latest_checkpoint(run_dir) / "trainable.safetensors"))


def write_evalset(path: Path, n: int = 4) -> Path:
    rows = [
        {"id": f"q{k}", "prompt": f"What is {k} plus 1?", "expected_answer": str(k + 1),
         "section": "core", "category": "addition", "difficulty": "easy"}
        for k in range(n)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_only_the_adapters_change_and_the_run_records_its_source_and_lora(base, dataset, tmp_path) -> None:
    out = tmp_path / "r"
    run(lora_config(base, max_steps=4, dtype="float32", save_every_steps=2), dataset, out)
    m = manifest(out)
    assert m["status"] == "completed"
    assert m["model"]["source"]["kind"] == "local" and m["model"]["architecture"] == "LlamaForCausalLM"
    assert m["lora"]["r"] == 4 and m["lora"]["target_modules"] == "all-linear"
    assert (
        0 < m["lora"]["trainable_parameters"] == m["model"]["trainable_parameters"] < m["model"]["parameters"]
    )
    # A LoRA checkpoint holds the adapters (and optimizer state), not the frozen base.
    last = ckpt.latest_checkpoint(out)
    assert (last / "trainable.safetensors").is_file() and not (last / "model.safetensors").exists()
    adapters = load_file(str(last / "trainable.safetensors"))
    assert adapters and all("lora_A" in k or "lora_B" in k for k in adapters)
    assert sum(t.numel() for t in adapters.values()) == m["lora"]["trainable_parameters"]
    # The merged final model: every tensor LoRA does not adapt (embeddings, norms, head) is the base's
    # bit for bit; every adapted projection moved.
    before = load_file(str(base / "model.safetensors"))
    after = load_file(str(out / "final_model/model.safetensors"))
    adapted = {k.split(".lora_")[0].removeprefix("base_model.model.") + ".weight" for k in adapters}
    assert adapted <= after.keys()
    for name, tensor in before.items():
        if name in adapted:
            assert not torch.equal(after[name], tensor), name
        else:
            assert torch.equal(after[name], tensor), name


def test_lora_resume_reproduces_an_uninterrupted_run_exactly(base, dataset, tmp_path, monkeypatch) -> None:
    # Dropout in the adapters: the RNG state must come back too. dtype auto: a bf16 base where supported.
    raw = lora_config(base, {"dropout": 0.1}, max_steps=12, save_every_steps=4, dtype="auto")
    run(raw, dataset, tmp_path / "straight")
    real_save = ckpt.save_checkpoint

    def save_then_die(run_dir, **kwargs):
        path = real_save(run_dir, **kwargs)
        if kwargs["state"]["step"] == 8:
            raise Killed
        return path

    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(ckpt, "save_checkpoint", save_then_die)
        run(raw, dataset, tmp_path / "resumed")
    summary = run(raw, dataset, tmp_path / "resumed", resume=True)
    assert summary["global_step"] == 12 and summary["steps_this_process"] == 4
    straight, resumed = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "resumed")
    assert [m["step"] for m in resumed] == list(range(1, 13))
    assert [m["loss"] for m in resumed] == pytest.approx([m["loss"] for m in straight], abs=1e-6)
    a, b = adapter_weights(tmp_path / "straight"), adapter_weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=0, msg=name)


def test_merged_and_adapter_final_models_give_the_same_logits(base, dataset, tmp_path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "r"
    run(lora_config(base, max_steps=4, dtype="float32", learning_rate=1e-2), dataset, out)
    merged = AutoModelForCausalLM.from_pretrained(out / "final_model").eval()
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base), out / "final_model/adapter"
    ).eval()
    plain = AutoModelForCausalLM.from_pretrained(base).eval()
    ids = torch.arange(4, 40).reshape(2, 18)
    with torch.no_grad():
        a, b, c = merged(ids).logits, adapted(ids).logits, plain(ids).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert (a - c).abs().max() > 1e-3  # and the adapter did change the model


def test_eval_before_and_after_are_in_the_manifest_metrics_and_readme(base, dataset, tmp_path) -> None:
    evalset = write_evalset(tmp_path / "eval.jsonl")
    out = tmp_path / "r"
    raw = lora_config(
        base, max_steps=3, eval_set=str(evalset), eval_before=True, eval_max_new_tokens=6, eval_batch_size=4
    )
    run(raw, dataset, out)
    m = manifest(out)
    before, after, lift = m["eval_before"], m["eval_after"], m["eval_lift"]
    for head in (before, after):
        assert head["n_items"] == 4 and head["eval_set"] == str(evalset)
        assert {"primary_score", "format_compliance", "accuracy_answered"} <= head.keys()
    for key, gained in lift.items():
        assert gained == pytest.approx(after[key] - before[key])
    assert (out / "eval_before/predictions.jsonl").is_file() and (out / "eval/predictions.jsonl").is_file()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 0 and lines[0]["eval_before_primary_score"] == before["primary_score"]
    # The same rendering before and after: the eval prompts are identical.
    prompts = [
        [json.loads(x)["prompt"] for x in (out / d / "predictions.jsonl").read_text().splitlines()]
        for d in ("eval_before", "eval")
    ]
    assert prompts[0] == prompts[1]
    readme = (out / "README.md").read_text()
    assert "## Before and after" in readme and "lift" in readme


def test_validation_loss_is_logged_and_the_best_step_recorded(base, dataset, tmp_path) -> None:
    out = tmp_path / "r"
    raw = lora_config(
        base, data={"validation": 0.25}, max_steps=6, eval_steps=2, save_every_steps=2, save_total_limit=None
    )
    run(raw, dataset, out)
    m = manifest(out)
    assert m["validation"]["count"] == 12 and m["dataset"]["trained_examples"] <= 36
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    val = {x["step"]: x["validation_loss"] for x in lines if "validation_loss" in x}
    assert sorted(val) == [2, 4, 6]
    best = min(val, key=val.get)
    assert m["validation"]["best"]["step"] == best
    assert m["validation"]["best"]["checkpoint"] == f"checkpoints/{ckpt.checkpoint_name(best)}"


def test_validation_does_not_change_the_training_steps(base, dataset, tmp_path) -> None:
    """A validation set used whole (a dataset spec) leaves the training data, and so every training
    loss, exactly as without it: validation draws no random numbers."""
    other = write_traces(tmp_path / "val.jsonl", n=8, seed=3)
    run(lora_config(base, {"dropout": 0.1}, max_steps=4), dataset, tmp_path / "plain")
    with_val = lora_config(base, {"dropout": 0.1}, data={"validation": str(other)}, max_steps=4, eval_steps=1)
    run(with_val, dataset, tmp_path / "val")
    losses = [m["loss"] for m in read_metrics(tmp_path / "val")]
    assert losses == [m["loss"] for m in read_metrics(tmp_path / "plain")]
    assert manifest(tmp_path / "val")["validation"]["count"] == 8


@pytest.mark.parametrize(
    ("lora", "extra", "message"),
    [
        ({"rank": 8}, {}, "did you mean 'lora.r'"),
        ({"r": 0}, {}, "lora.r"),
        ({}, {"strategy": "fsdp"}, "fsdp"),
    ],
)
def test_lora_config_is_validated(base, lora, extra, message) -> None:
    raw = pretrained_config(base, **extra)
    raw["lora"] = lora
    with pytest.raises(ConfigError, match=message):
        load_config(raw)


def test_lora_needs_a_pretrained_model_and_a_sane_validation_fraction(base) -> None:
    with pytest.raises(ConfigError, match="pretrained"):
        load_config({"model": {"init": "scratch"}, "lora": {}})
    with pytest.raises(ConfigError, match=r"data\.validation"):
        load_config({**pretrained_config(base), "data": {"validation": 0.9}})
    assert load_config(pretrained_config(base))[0].lora is None  # no lora section: full fine-tuning
    assert load_config({**pretrained_config(base), "lora": {}})[0].lora.r == 16
    assert load_config(pretrained_config(base), ["lora.r=8"])[0].lora.r == 8


def test_ddp_with_lora_on_two_ranks_equals_one_process(base, tmp_path) -> None:
    write_traces(tmp_path / "d.jsonl", n=40)
    # With an eval set: rank 0 evaluates after every rank has destroyed the process group.
    evalset = write_evalset(tmp_path / "eval.jsonl")
    common = {"max_steps": 4, "dtype": "float32", "learning_rate": 1e-2, "eval_set": str(evalset),
              "eval_max_new_tokens": 6, "eval_batch_size": 4}  # fmt: skip
    for batch in (4, 8):
        (tmp_path / f"b{batch}.yaml").write_text(
            yaml.safe_dump(lora_config(base, batch_size=batch, **common))
        )

    def launch(config: str, output: str, *extra: str) -> None:
        cmd = [sys.executable, "-m", "tunix_rt", "train", *extra, "--config", str(tmp_path / config),
               "--dataset", str(tmp_path / "d.jsonl"), "--output", str(tmp_path / output)]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    launch("b8.yaml", "single")
    launch("b4.yaml", "ddp", "--nproc", "2")
    single, ddp = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "ddp")
    assert [m["loss"] for m in ddp] == pytest.approx([m["loss"] for m in single], rel=1e-4)
    a, b = adapter_weights(tmp_path / "single"), adapter_weights(tmp_path / "ddp")
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-4, rtol=1e-4, msg=name)
    ddp_manifest = manifest(tmp_path / "ddp")
    assert ddp_manifest["status"] == "completed" and ddp_manifest["eval"]["n_items"] == 4  # not an error
    predictions = (tmp_path / "ddp/eval/predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 4  # rank 0 alone wrote them, once
