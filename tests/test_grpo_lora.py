"""GRPO with LoRA on tiny models: only adapters learn, the reference is the same model with its
adapters off (no second model), resume is exact, and a LoRA SFT run's adapter is continued."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from helpers_rl import make_digit_model, write_digit_prompts
from helpers_train import pretrained_config, write_traces
from tunix_rt.config import LoraConfig, load_config
from tunix_rt.errors import ConfigError
from tunix_rt.recipes import grpo as grpo_recipe
from tunix_rt.recipes import sft as sft_recipe
from tunix_rt.rl.config import GrpoConfig
from tunix_rt.rl.data import load_prompts
from tunix_rt.rl.reference import ADAPTERS_OFF, Reference
from tunix_rt.rl.rewards import build_rewards
from tunix_rt.rl.sampling import batch_from_samples, sequence_logprobs
from tunix_rt.rl.step import policy_update, sample_and_score
from tunix_rt.train.checkpoint import latest_checkpoint
from tunix_rt.train.lora import apply_lora
from tunix_rt.train.render import render_prompt
from tunix_rt.train.request import TrainRequest

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_digit_model(tmp_path_factory.mktemp("digit") / "model")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is far faster on a shared 2-core machine
    yield
    torch.set_num_threads(threads)


def _request(model: Path, data: Path, out: Path, *, resume: bool = False, lora: dict | None = None,
             grpo: dict | None = None, **training: Any) -> TrainRequest:  # fmt: skip
    base = {
        "device": "cpu", "dtype": "float32", "batch_size": 4, "max_steps": 4, "learning_rate": 2e-2,
        "lr_scheduler": "constant", "warmup_steps": 0, "logging_steps": 1, "seed": 3,
    }  # fmt: skip
    base.update(training)
    knobs = {"num_generations": 6, "max_completion_length": 5, "rewards": {"correctness": 1.0, "format": 0.1}}
    knobs.update(grpo or {})
    raw = {"model": {"model_id": str(model)}, "method": "grpo", "training": base, "grpo": knobs,
           "lora": {"r": 4} if lora is None else lora}  # fmt: skip
    cfg, _ = load_config(raw)
    return TrainRequest(config=cfg, dataset=str(data), output=out, device="cpu", resume=resume, argv=["test"])


def _steps(run: Path) -> list[dict[str, Any]]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if "reward_mean" in line]


def _policy(model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)


def _scored_step(model: Any, tokenizer: Any, data: Path, gcfg: GrpoConfig) -> Any:
    items = load_prompts(str(data)).items[:3]
    texts = [render_prompt(item.prompt) for item in items]
    rewards = build_rewards(gcfg.rewards, length_buffer=gcfg.length_buffer)
    return sample_and_score(
        model, tokenizer, items, texts, rewards, gcfg, CPU, torch.Generator().manual_seed(0)
    )


def test_gradients_reach_the_adapters_only(digit_model: Path, tmp_path: Path) -> None:
    tokenizer, model = _policy(digit_model)
    base = {name: p.detach().clone() for name, p in model.named_parameters()}
    policy = apply_lora(model, LoraConfig(r=4), None)
    gcfg = GrpoConfig(num_generations=6, max_completion_length=5, rewards={"correctness": 1.0, "format": 0.1})
    scored = _scored_step(policy, tokenizer, write_digit_prompts(tmp_path / "p.jsonl", 3), gcfg)
    assert len(set(scored.totals)) > 1  # some signal, so the update has a gradient
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    policy_update(policy, None, optimizer, scheduler, scored, gcfg, 1.0, tokenizer.pad_token_id, CPU)

    for name, param in policy.named_parameters():
        if "lora_" in name:
            assert param.requires_grad and param.grad is not None, name
        else:
            assert not param.requires_grad and param.grad is None, name
    # The base is bit for bit what was loaded; the update went into the adapters.
    merged_names = {
        n.removeprefix("base_model.model.").replace(".base_layer", ""): p
        for n, p in policy.named_parameters()
    }
    for name, before in base.items():
        assert torch.equal(merged_names[name], before), name
    assert any(p.abs().sum() > 0 for n, p in policy.named_parameters() if "lora_B" in n)


def test_reference_is_the_policy_with_adapters_off(digit_model: Path, tmp_path: Path) -> None:
    tokenizer, model = _policy(digit_model)
    plain = copy.deepcopy(model).eval()
    policy = apply_lora(model, LoraConfig(r=4), None)
    with torch.no_grad():  # adapters that have moved, so the policy is no longer the base
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    gcfg = GrpoConfig(num_generations=4, max_completion_length=5)
    scored = _scored_step(policy, tokenizer, write_digit_prompts(tmp_path / "p.jsonl", 3), gcfg)
    batch = batch_from_samples(scored.samples, tokenizer.pad_token_id, CPU)
    reference = Reference.adapters_off(policy)
    assert reference.model is policy and reference.kind == ADAPTERS_OFF
    with torch.no_grad():
        base_logps, policy_logps = sequence_logprobs(plain, batch), sequence_logprobs(policy.eval(), batch)
    ref_logps = reference.logprobs(batch, None)
    torch.testing.assert_close(ref_logps, base_logps, atol=1e-5, rtol=0)
    assert (policy_logps - base_logps).abs().max() > 1e-2
    # The adapters are on again afterwards.
    with torch.no_grad():
        torch.testing.assert_close(sequence_logprobs(policy, batch), policy_logps, atol=0, rtol=0)


def test_a_lora_run_with_a_reference_builds_one_model_and_saves_as_sft_does(
    digit_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = []
    real = grpo_recipe.load_pretrained
    monkeypatch.setattr(grpo_recipe, "load_pretrained", lambda *a, **k: loads.append(k) or real(*a, **k))
    data = write_digit_prompts(tmp_path / "p.jsonl", 8)
    run = tmp_path / "run"
    grpo_recipe.train(_request(digit_model, data, run, max_steps=2, grpo={"beta": 0.1}))
    assert len(loads) == 1  # the policy; beta > 0 loaded no reference model
    assert all(s["kl"] is not None for s in _steps(run))
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["model"]["reference"] == ADAPTERS_OFF and manifest["lora"]["adapter"] == "new"
    assert 0 < manifest["model"]["trainable_parameters"] < manifest["model"]["parameters"]
    # The final model as SFT writes it: merged weights, the adapter alone beside them.
    assert (run / "final_model/model.safetensors").is_file()
    assert (run / "final_model/adapter/adapter_config.json").is_file()
    last = latest_checkpoint(run)
    assert (last / "trainable.safetensors").is_file() and not (last / "model.safetensors").exists()


def test_lora_resume_is_exact(digit_model: Path, tmp_path: Path) -> None:
    data = write_digit_prompts(tmp_path / "p.jsonl", 12)
    whole, split = tmp_path / "whole", tmp_path / "split"
    # dtype auto: the bf16 base where this CPU has bf16; old log-probs, the reference and adapter
    # dropout (the global RNG) all take part.
    knobs = {"grpo": {"num_iterations": 2, "beta": 0.05}, "lora": {"r": 4, "dropout": 0.1}, "dtype": "auto"}
    grpo_recipe.train(_request(digit_model, data, whole, **knobs))
    grpo_recipe.train(_request(digit_model, data, split, max_steps=2, **knobs))
    grpo_recipe.train(_request(digit_model, data, split, resume=True, **knobs))

    assert [s["reward_mean"] for s in _steps(split)] == [s["reward_mean"] for s in _steps(whole)]
    assert [s["kl"] for s in _steps(split)] == [s["kl"] for s in _steps(whole)]
    a = load_file(str(latest_checkpoint(whole) / "trainable.safetensors"))
    b = load_file(str(latest_checkpoint(split) / "trainable.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("final_model/model.safetensors", "final_model/adapter/adapter_model.safetensors"):
        x, y = load_file(str(whole / name)), load_file(str(split / name))
        assert all(torch.equal(x[k], y[k]) for k in x), name


@pytest.fixture(scope="module")
def lora_sft_run(digit_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished LoRA SFT run (r=4) on the digit model, its adapter moved well away from zero."""
    tmp = tmp_path_factory.mktemp("sft")
    raw = pretrained_config(digit_model, max_steps=3, learning_rate=5e-2, warmup_steps=0)
    raw["lora"] = {"r": 4}
    cfg, notes = load_config(raw)
    out = tmp / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sft_recipe.train(
            TrainRequest(
                config=cfg, dataset=str(write_traces(tmp / "t.jsonl", n=12)), output=out, notes=notes
            )
        )
    finally:
        torch.set_num_threads(threads)
    return out


def test_a_lora_sft_run_continues_its_adapter(
    digit_model: Path, lora_sft_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    ids = torch.arange(4, 40).reshape(2, 18)
    seen: list[tuple[torch.Tensor, Any, torch.Tensor]] = []
    real_update = grpo_recipe.policy_update

    def first_step(model, reference, optimizer, scheduler, scored, gcfg, clip, pad_id, *args):
        if not seen:  # the policy's logits, the step's batch and its reference log-probs
            batch = batch_from_samples(scored.samples, pad_id, CPU)
            with torch.no_grad():
                seen.append((model.eval()(ids).logits, batch, reference.logprobs(batch, None)))
            model.train()
        return real_update(model, reference, optimizer, scheduler, scored, gcfg, clip, pad_id, *args)

    monkeypatch.setattr(grpo_recipe, "policy_update", first_step)
    data = write_digit_prompts(tmp_path / "p.jsonl", 4)
    run = tmp_path / "run"
    # An empty lora: section: the adapter's own shape (r=4), not the default r=16.
    grpo_recipe.train(_request(lora_sft_run, data, run, max_steps=1, lora={}, grpo={"beta": 0.1}))

    merged = AutoModelForCausalLM.from_pretrained(lora_sft_run / "final_model").eval()
    base = AutoModelForCausalLM.from_pretrained(digit_model).eval()
    with torch.no_grad():
        sft_logits, base_logits = merged(ids).logits, base(ids).logits
    policy_logits, batch, ref_logps = seen[0]
    torch.testing.assert_close(policy_logits, sft_logits, atol=1e-5, rtol=1e-5)
    assert (sft_logits - base_logits).abs().max() > 1e-2  # the SFT adapter is not a no-op
    # The reference is the SFT policy (a frozen copy of its adapter, as TRL does), not the base.
    with torch.no_grad():
        torch.testing.assert_close(ref_logps, sequence_logprobs(merged, batch), atol=1e-4, rtol=0)
        assert (ref_logps - sequence_logprobs(base, batch)).abs().max() > 1e-2
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["lora"]["adapter"] == "continued" and manifest["lora"]["r"] == 4
    assert manifest["model"]["source"] == str(digit_model)  # the adapter's base, from the SFT manifest
    # The copy is not part of the final model: one adapter, loadable onto the base.
    assert sorted(p.name for p in (run / "final_model/adapter").iterdir() if p.is_dir()) == []


def test_a_lora_key_contradicting_the_continued_adapter_is_refused(
    lora_sft_run: Path, tmp_path: Path
) -> None:
    data = write_digit_prompts(tmp_path / "p.jsonl", 4)
    with pytest.raises(ConfigError, match=r"lora\.r: the config sets 8.*trained with 4"):
        grpo_recipe.train(_request(lora_sft_run, data, tmp_path / "r1", lora={"r": 8}))
    with pytest.raises(ConfigError, match=r"grpo\.adapter: new .* needs a lora: section"):
        grpo_recipe.train(_request(tmp_path, data, tmp_path / "r2", grpo={"adapter": "new"}))
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_merged_generation_gives_back_the_exact_weights(digit_model: Path) -> None:
    import contextlib

    from tunix_rt.rl.sampling import generation_weights
    from tunix_rt.train.lora import adapters_merged

    _, model = _policy(digit_model)
    bf16 = apply_lora(copy.deepcopy(model), LoraConfig(r=4), torch.bfloat16)
    assert isinstance(generation_weights(bf16), contextlib.nullcontext)  # merging would round the update
    policy = apply_lora(model, LoraConfig(r=4), None).eval()
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    before = {name: t.clone() for name, t in policy.state_dict().items()}
    ids = torch.arange(4, 40).reshape(2, 18)
    with torch.no_grad():
        unmerged = policy(ids).logits
        with generation_weights(policy):
            inside = policy.state_dict()
            assert any(not torch.equal(inside[name], before[name]) for name in before)  # merged
            merged = policy(ids).logits
        torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)
        after = policy.state_dict()
        assert all(torch.equal(after[name], before[name]) for name in before)  # bit for bit
        torch.testing.assert_close(policy(ids).logits, unmerged, atol=0, rtol=0)
    # And after an exception inside, too.
    with pytest.raises(RuntimeError), adapters_merged(policy):
        raise RuntimeError("generation failed")
    assert all(torch.equal(policy.state_dict()[name], before[name]) for name in before)
