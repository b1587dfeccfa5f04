"""LoRA components: config validation, dtypes, adapter-only gradients and state, final model, checkpointing."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM

from helpers_models import make_tiny_model, make_tiny_model_dir, make_tokenizer
from tunix_rt.errors import ModelError
from tunix_rt.train.batching import IGNORE_INDEX
from tunix_rt.train.lm_loss import completion_loss
from tunix_rt.train.lora import (
    ADAPTER_DIR,
    LoraConfig,
    apply_lora,
    enable_gradient_checkpointing,
    load_trainable_file,
    load_trainable_state,
    save_final,
    save_trainable_file,
    trainable_state,
)


def batch(vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (2, 20), generator=g)
    labels = ids.clone()
    labels[:, :6] = IGNORE_INDEX
    return ids, labels


def train_steps(model, vocab: int, steps: int = 3, autocast: torch.dtype | None = None):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for step in range(steps):
        ids, labels = batch(vocab, seed=step)
        with torch.autocast("cpu", dtype=autocast or torch.float32, enabled=autocast is not None):
            loss, n = completion_loss(model, ids, labels)
        (loss / n).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def test_adapters_take_bf16_inputs_as_autocast_gives_them_with_the_same_numbers():
    """peft's copy of each adapter input to fp32 is skipped under a bf16 base: autocast would copy it
    back to bf16 for the matmul. Loss and every adapter gradient equal peft's own path to the bit."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    tok = make_tokenizer()
    results = []
    for peft_casts in (True, False):
        torch.manual_seed(0)
        model = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=4), torch.bfloat16)
        layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
        assert layers and all(m.cast_input_dtype_enabled is False for m in layers)
        for layer in layers:
            layer.cast_input_dtype_enabled = peft_casts
        train_steps(model, len(tok), steps=2, autocast=torch.bfloat16)  # lora_B leaves zero
        ids, labels = batch(len(tok), seed=7)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = completion_loss(model, ids, labels)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((loss.detach(), grads))
    (loss_cast, grads_cast), (loss_plain, grads_plain) = results
    assert torch.equal(loss_cast, loss_plain)
    assert grads_cast.keys() == grads_plain.keys()
    assert all(torch.equal(grads_cast[n], grads_plain[n]) for n in grads_cast)
    assert any(float(g.abs().sum()) > 0 for n, g in grads_cast.items() if "lora_A" in n)
    # Outside autocast a bf16 input meets the fp32 adapter: a loud error, never fp32 by accident.
    with pytest.raises(RuntimeError, match="dtype"):
        completion_loss(model, ids, labels)


def test_a_rank_with_an_empty_micro_batch_runs_its_zero_forward_under_autocast():
    # Under DDP the tail of an epoch can leave a rank without examples; it still takes part in the
    # gradient all-reduce with a zero loss, and a bf16 base must feed its adapters bf16 there too.
    import numpy as np

    from tunix_rt.train.step import micro_batch_loss

    tok = make_tokenizer()
    model = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=4), torch.bfloat16)
    empty = np.array([], dtype=np.int64)
    loss = micro_batch_loss(model, None, empty, 0, True, torch.device("cpu"), torch.bfloat16)
    loss.backward()
    assert float(loss) == 0.0
    adapters = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and not p.grad.any() for p in adapters)


def test_an_fp32_base_or_lora_dropout_keeps_peft_casting():
    from peft.tuners.tuners_utils import BaseTunerLayer

    tok = make_tokenizer()
    for compute_dtype, dropout in ((None, 0.0), (torch.bfloat16, 0.1)):
        model = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=4, dropout=dropout), compute_dtype)
        layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
        assert layers and all(m.cast_input_dtype_enabled for m in layers)


def test_config_defaults_and_validation():
    cfg = LoraConfig()
    assert cfg.target_modules == "all-linear" and cfg.r >= 1 and cfg.modules_to_save == []
    assert LoraConfig.model_validate({"r": 8, "target_modules": ["q_proj", "v_proj"]}).r == 8
    for bad in ({"rank": 8}, {"r": 0}, {"dropout": 1.0}, {"target_modules": []}, {"alpha": -1}):
        with pytest.raises(ValidationError):
            LoraConfig.model_validate(bad)


def test_bf16_base_fp32_adapters_and_gradients_only_in_adapters():
    tok = make_tokenizer()
    model = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=4), torch.bfloat16)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    assert all(p.dtype == torch.bfloat16 for p in frozen.values())
    # Rotary frequencies stay float32 as from_pretrained(dtype=bf16) keeps them: rounded to bf16 they
    # would turn positions by up to ~0.1 rad at position 100, a model the base never was.
    rotary = model.get_base_model().model.rotary_emb
    assert rotary.inv_freq.dtype == torch.float32
    assert torch.equal(rotary.inv_freq, rotary.original_inv_freq)
    # all-linear: every projection of every layer, never the LM head.
    adapted = {n.split(".lora_")[0] for n in trainable}
    assert len(adapted) == 2 * 7 and not any("lm_head" in n for n in adapted)
    ids, labels = batch(len(tok))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = completion_loss(model, ids, labels)
    loss.backward()
    assert all(p.grad is None for p in frozen.values())
    assert all(p.grad is not None for p in trainable.values())
    # lora_B starts at zero, so the first step's gradient reaches B (A's gradient goes through B).
    assert all(float(p.grad.abs().sum()) > 0 for n, p in trainable.items() if "lora_B" in n)


def test_modules_to_save_are_trained_in_fp32():
    tok = make_tokenizer()
    cfg = LoraConfig(r=2, target_modules=["q_proj"], modules_to_save=["lm_head"])
    model = apply_lora(make_tiny_model("llama", tok), cfg, torch.bfloat16)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("modules_to_save" in n and "lm_head" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())


def test_unknown_target_module_is_a_model_error():
    tok = make_tokenizer()
    with pytest.raises(ModelError, match="lora"):
        apply_lora(make_tiny_model("llama", tok), LoraConfig(target_modules=["no_such_proj"]), None)


def test_trainable_state_round_trip_and_mismatch(tmp_path):
    tok = make_tokenizer()
    trained = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=4), None)
    train_steps(trained, len(tok))
    state = trainable_state(trained)
    assert all("lora_" in k for k in state)
    fresh = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=4), None)
    ids, _ = batch(len(tok), seed=9)
    assert not torch.allclose(fresh(input_ids=ids).logits, trained(input_ids=ids).logits)
    load_trainable_state(fresh, state)
    torch.testing.assert_close(fresh(input_ids=ids).logits, trained(input_ids=ids).logits, rtol=0, atol=0)
    # Through a checkpoint file: bit-exact, and only the adapters are in it.
    path = save_trainable_file(trained, tmp_path)
    from_file = apply_lora(make_tiny_model("llama", tok, seed=7), LoraConfig(r=4), None)
    load_trainable_file(from_file, tmp_path)
    assert all(torch.equal(a, state[k]) for k, a in trainable_state(from_file).items())
    assert path.stat().st_size < sum(p.numel() * 4 for p in trained.parameters()) / 4
    with pytest.raises(ModelError, match="not a LoRA checkpoint"):
        load_trainable_file(from_file, tmp_path / "elsewhere")
    other = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=8), None)
    with pytest.raises(ModelError, match="shape"):
        load_trainable_state(other, state)
    narrower = apply_lora(make_tiny_model("llama", tok), LoraConfig(r=4, target_modules=["q_proj"]), None)
    with pytest.raises(ModelError, match="unexpected"):
        load_trainable_state(narrower, state)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_final_model_merged_and_adapter_give_the_same_logits(tmp_path, arch):
    """Trained on a bf16 base: the merged fp32 model equals the adapter on that same (bf16-rounded) base."""
    from peft import PeftModel

    base_dir = make_tiny_model_dir(tmp_path / "base", arch=arch)
    tok = make_tokenizer()
    model = apply_lora(
        AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=4, alpha=8), torch.bfloat16
    )
    model.eval()  # GPT-2's dropout off; the AdamW steps below still train the adapters
    train_steps(model, len(tok), autocast=torch.bfloat16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    final = tmp_path / "final_model"
    save_final(model, tok, final)

    # The training model is untouched: same tensors, adapters still separate (not merged).
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(getattr(m, "merged", False) for m in model.modules())

    merged = AutoModelForCausalLM.from_pretrained(final)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    base = AutoModelForCausalLM.from_pretrained(base_dir).to(torch.bfloat16).to(torch.float32)
    adapter = PeftModel.from_pretrained(base, final / ADAPTER_DIR)
    ids, _ = batch(len(tok), seed=5)
    with torch.no_grad():
        a, b = merged(input_ids=ids).logits, adapter(input_ids=ids).logits
    # fp32 throughout; merging W + BA versus computing Wx + B(Ax) differs by fp32 rounding only.
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    plain = AutoModelForCausalLM.from_pretrained(base_dir)
    with torch.no_grad():
        assert (plain(input_ids=ids).logits - a).abs().max() > 1e-3  # the adapter did change the model
    assert (final / "tokenizer_config.json").is_file() and (
        final / ADAPTER_DIR / "tokenizer_config.json"
    ).is_file()


def count_saved_tensors(model, ids, labels) -> tuple[int, torch.Tensor, dict]:
    saved = 0

    def pack(t):
        nonlocal saved
        saved += 1
        return t

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = completion_loss(model, ids, labels)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return saved, loss.detach(), grads


@pytest.mark.parametrize("peft", [False, True])
def test_gradient_checkpointing_same_loss_and_grads_fewer_saved_tensors(peft):
    tok = make_tokenizer()
    ids, labels = batch(len(tok))

    def build():
        model = make_tiny_model("llama", tok, seed=3)
        return apply_lora(model, LoraConfig(r=4), None) if peft else model

    plain, checkpointed = build(), build()
    plain.train()
    checkpointed.train()
    enable_gradient_checkpointing(checkpointed)
    n_plain, loss_plain, grads_plain = count_saved_tensors(plain, ids, labels)
    n_ckpt, loss_ckpt, grads_ckpt = count_saved_tensors(checkpointed, ids, labels)
    torch.testing.assert_close(loss_ckpt, loss_plain, rtol=0, atol=0)
    assert grads_plain.keys() == grads_ckpt.keys() and grads_plain
    for name, grad in grads_plain.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-6, atol=1e-7, msg=name)
    # Tensors saved for backward during the forward: the layers' internals are recomputed instead.
    assert n_ckpt < n_plain / 2, (n_ckpt, n_plain)
