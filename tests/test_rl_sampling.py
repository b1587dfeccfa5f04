"""Sampling in eval.generate: reproducible from a torch.Generator, global RNG untouched."""

from __future__ import annotations

import pytest
import torch

from helpers_models import make_tiny_model, make_tokenizer
from tunix_rt.eval.generate import generate
from tunix_rt.rl.sampling import refreshed, sampling_copy, sequence_logprobs, update_batch


@pytest.fixture(scope="module")
def tiny():
    tokenizer = make_tokenizer()
    return make_tiny_model("llama", tokenizer), tokenizer


def _sample(tiny, seed: int):
    model, tokenizer = tiny
    prompts = ["Question: What is 1 + 2?\nReasoning:\n", "Question: 3?\n"] * 3
    return generate(
        model, tokenizer, prompts, max_new_tokens=6, batch_size=6, device="cpu",
        temperature=1.0, top_p=0.95, generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip


def test_sampling_is_reproducible_and_leaves_global_rng_alone(tiny) -> None:
    before = torch.get_rng_state()
    first, again, other = _sample(tiny, 1), _sample(tiny, 1), _sample(tiny, 2)
    assert torch.equal(torch.get_rng_state(), before)
    assert [g.token_ids for g in first] == [g.token_ids for g in again]
    assert [g.token_ids for g in first] != [g.token_ids for g in other]
    # Identical prompts sample different completions (a group is not G copies of one answer).
    assert len({g.token_ids for g in first[0::2]}) > 1
    for g in first:
        assert len(g.token_ids) == g.n_tokens


def test_greedy_when_no_temperature(tiny) -> None:
    model, tokenizer = tiny
    a = generate(model, tokenizer, ["Question: 5?\n"] * 2, max_new_tokens=5, batch_size=2, device="cpu")
    assert a[0].token_ids == a[1].token_ids
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tokenizer, ["x"], max_new_tokens=2, batch_size=1, device="cpu", temperature=0.0)


def test_update_batch_marks_exactly_the_completion_targets() -> None:
    batch = update_batch([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 1, 2], [8, 3, 4, 9, 0]]
    # target t is token t + 1: row 0's completion tokens are targets 2 and 3, row 1's 0..2.
    assert batch.mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    assert batch.targets[batch.mask.bool()].tolist() == [1, 2, 3, 4, 9]


def test_the_bf16_sampling_copy_follows_the_policy_and_never_touches_it() -> None:
    tokenizer = make_tokenizer()
    model = make_tiny_model("llama", tokenizer)
    assert sampling_copy(model, None) is None  # float32 samples from the policy itself
    twin = sampling_copy(model, torch.bfloat16)
    # Weights in bf16, rotary frequencies in float32 as from_pretrained(dtype=bf16) keeps them.
    assert {p.dtype for p in twin.parameters()} == {torch.bfloat16}
    assert twin.model.rotary_emb.inv_freq.dtype == torch.float32
    assert not any(p.requires_grad for p in twin.parameters())
    with torch.no_grad():  # an optimizer step on the policy
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    assert not torch.equal(twin.lm_head.weight, model.lm_head.weight.to(torch.bfloat16))
    policy = {name: p.clone() for name, p in model.named_parameters()}
    refreshed(twin, model)
    for (name, p), (twin_name, q) in zip(model.named_parameters(), twin.named_parameters(), strict=True):
        assert name == twin_name and torch.equal(q, p.detach().to(torch.bfloat16)), name
        assert p.dtype == torch.float32 and torch.equal(p, policy[name]) and p.requires_grad
    # Sampling from the copy is reproducible from the step's generator, as from the policy.
    rows = ["Question: What is 1 + 2?\nReasoning:\n"] * 4
    draws = [
        generate(twin, tokenizer, rows, max_new_tokens=6, batch_size=4, device="cpu", temperature=1.0,
                 generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]  # fmt: skip
    assert [g.token_ids for g in draws[0]] == [g.token_ids for g in draws[1]]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_completion_logprobs_equal_the_full_logits_ones_with_the_same_gradients(arch: str) -> None:
    """The head-only path (LM head and log-softmax at completion positions) against full logits."""
    from tunix_rt.rl.loss import token_logprobs

    tokenizer = make_tokenizer()
    model = make_tiny_model(arch, tokenizer).eval()  # no dropout: two forwards must see one function
    prompts, completions = [[5, 6, 7], [8, 9], [10, 11, 12, 13]], [[20, 21], [22, 23, 24, 25], [26]]
    batch = update_batch(prompts, completions, pad_id=0)
    logps = sequence_logprobs(model, batch)
    logps.sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    full = token_logprobs(logits[:, :-1], batch.targets) * batch.mask
    (full.sum()).backward()
    assert logps.shape == full.shape == batch.mask.shape
    assert bool((logps[batch.mask == 0] == 0).all())
    torch.testing.assert_close(logps, full, atol=1e-5, rtol=1e-5)
    for name, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_packed_update_rows_give_the_padded_logprobs_and_gradients(arch: str) -> None:
    """Sequences of very different lengths packed into shared rows: same log-probs, same gradients."""
    from tunix_rt.eval.generate import Generation
    from tunix_rt.rl.sampling import Samples, batch_from_samples

    tokenizer = make_tokenizer()
    model = make_tiny_model(arch, tokenizer).eval()
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14, 15], [16, 17, 18]]
    completions = [[20, 21], [22, 23, 24, 25, 26, 27, 28, 29, 30, 31], [26], [27, 28, 29], [30, 31, 32, 33]]
    samples = Samples(
        prompt_ids=prompts, generations=[Generation("", len(c), True, tuple(c)) for c in completions]
    )
    results = []
    for packed in (False, True):
        batch = batch_from_samples(samples, pad_id=0, device=torch.device("cpu"), packed=packed)
        logps = sequence_logprobs(model, batch)
        logps.sum().backward()
        results.append(
            (logps.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        )
        model.zero_grad()
    packed_batch = batch_from_samples(samples, pad_id=0, device=torch.device("cpu"), packed=True)
    assert packed_batch.packed is not None and packed_batch.packed.input_ids.shape[0] < len(prompts)
    assert int(packed_batch.packed.keep.sum()) == sum(len(c) for c in completions)
    (padded, padded_grads), (packed, packed_grads) = results
    assert bool((packed[padded_batch_mask(samples)] == 0).all())
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def padded_batch_mask(samples) -> torch.Tensor:
    """Positions outside the completions (where every layout must give 0)."""
    completions = [list(g.token_ids) for g in samples.generations]
    return update_batch(samples.prompt_ids, completions, pad_id=0).mask == 0
