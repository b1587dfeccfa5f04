"""Batched greedy decoding gives exactly the text of one-at-a-time decoding (left padding done right)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from helpers_models import make_tiny_model, make_tokenizer
from tunix_rt.eval.generate import _trim, encode_prompt, generate

PROMPTS = [f"Question: What is {i} + {i * 7 % 13}?\nReasoning:\n" + "and then " * (i % 5) for i in range(11)]


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_batched_equals_one_at_a_time(arch: str, tokenizer) -> None:
    model = make_tiny_model(arch, tokenizer)
    lengths = {len(encode_prompt(tokenizer, p)) for p in PROMPTS}
    assert len(lengths) > 3  # the batches really are padded
    batched = generate(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=4, device="cpu")
    single = generate(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=1, device="cpu")
    assert batched == single
    assert all(g.n_tokens == 12 and not g.stopped_at_eos for g in batched)

    # Stop mid-way on a token the model does produce: rows finish at different steps.
    counts: Counter[int] = Counter()
    for prompt in PROMPTS:
        ids = torch.tensor([encode_prompt(tokenizer, prompt)])
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False
        )
        counts[int(out[0, ids.shape[1] + 3])] += 1
    stop = counts.most_common(1)[0][0]
    batched = generate(
        model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=4, device="cpu", stop_ids=[stop]
    )
    single = generate(
        model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=1, device="cpu", stop_ids=[stop]
    )
    assert batched == single
    assert any(g.stopped_at_eos for g in batched)
    assert all(g.n_tokens <= 12 for g in batched)


def test_output_order_follows_input(tokenizer) -> None:
    model = make_tiny_model("gpt2", tokenizer)
    forward = generate(model, tokenizer, PROMPTS, max_new_tokens=4, batch_size=3, device="cpu")
    backward = generate(model, tokenizer, PROMPTS[::-1], max_new_tokens=4, batch_size=3, device="cpu")
    assert forward == backward[::-1]
    assert generate(model, tokenizer, [], max_new_tokens=4, batch_size=3, device="cpu") == []


def test_encode_prompt_bos_only_when_tokenizer_adds_it(tokenizer) -> None:
    plain = encode_prompt(tokenizer, "Question: hi")
    assert plain == tokenizer("Question: hi", add_special_tokens=False).input_ids
    tokenizer.add_bos_token = True  # what a Llama/Gemma tokenizer says
    try:
        assert encode_prompt(tokenizer, "Question: hi") == [tokenizer.bos_token_id, *plain]
    finally:
        tokenizer.add_bos_token = False


def test_trim_stops_at_first_stop_token() -> None:
    assert _trim([5, 6, 2, 7, 2], {2}) == ([5, 6], True)
    assert _trim([5, 6, 7], {2}) == ([5, 6, 7], False)
    assert _trim([2], {2}) == ([], True)


def test_encode_prompt_agrees_with_training(tokenizer) -> None:
    tokenize = pytest.importorskip("tunix_rt.train.tokenize")
    for add_bos in (False, True):
        tokenizer.add_bos_token = add_bos
        try:
            text = "Question: What is 2 + 2?\nReasoning:\n"
            assert encode_prompt(tokenizer, text) == tokenize.encode_prompt(tokenizer, text)
        finally:
            tokenizer.add_bos_token = False


def test_the_sampler_draws_from_the_tempered_nucleus_distribution() -> None:
    from tunix_rt.eval.generate import InverseCdfSampler

    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -float("inf")])
    draws = 40_000
    scores = logits.repeat(draws, 1)
    for temperature, top_p in [(1.0, 1.0), (0.7, 1.0), (1.0, 0.8)]:
        sampler = InverseCdfSampler(temperature, top_p, torch.Generator().manual_seed(0))
        out = sampler(torch.zeros(draws, 1, dtype=torch.long), scores)
        assert bool((out.isfinite().sum(dim=-1) == 1).all())  # one token per row, the one greedy picks
        counts = torch.bincount(out.argmax(dim=-1), minlength=6).float() / draws
        expected = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:  # the smallest most-likely set reaching top_p, renormalised
            keep = (expected.cumsum(0) - expected) < top_p
            expected = torch.where(keep, expected, 0.0) / expected[keep].sum()
            assert counts[~keep].sum() == 0
        assert counts[5] == 0  # zero mass is never drawn
        torch.testing.assert_close(counts, expected, atol=0.01, rtol=0)
    # The same generator state draws the same tokens.
    again = [InverseCdfSampler(1.0, 1.0, torch.Generator().manual_seed(3))(None, scores[:50]).argmax(-1)
             for _ in range(2)]  # fmt: skip
    assert torch.equal(again[0], again[1])


@pytest.mark.parametrize(("arch", "with_cache"), [("gpt2", True), ("llama", True), ("llama", False)])
def test_dropping_stopped_rows_between_segments_changes_no_token(
    arch: str, with_cache: bool, tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segmented sampling (rows that stopped leave the batch and the KV cache every few tokens)
    samples, in float32 and from the same seed, exactly the tokens one generate() call over the
    whole batch samples: rows stopping at different points, some never, continue from the right
    cache (or, when generate returns none, from a fresh prefill) with the right random draws."""
    import tunix_rt.eval.generate as gen

    if not with_cache:
        monkeypatch.setattr(gen, "_cache_field", lambda: "no_such_output_field")
    model = make_tiny_model(arch, tokenizer).eval()
    prompts = ["Question: What is 1 + 2?\nReasoning:\n", "Q 3?", "Question: a b c d e f g h?\n", "x y",
               "What is 7 + 9?", "Reasoning: 1. 2. 3."] * 2  # fmt: skip
    input_ids, attention = gen._left_pad([encode_prompt(tokenizer, p) for p in prompts], pad_id=0)

    def sampling(seed: int) -> tuple[dict, gen.InverseCdfSampler]:
        decoding, sampler = gen._decoding(1.0, None, torch.Generator().manual_seed(seed))
        return {**decoding, "pad_token_id": 0, "use_cache": True}, sampler

    with torch.inference_mode():
        free = model.generate(
            input_ids=input_ids, attention_mask=attention, max_new_tokens=40, **sampling(7)[0]
        )
        # Stop ids: tokens the rows produce at different places, so they stop at different steps.
        seen = Counter(t for row in free[:, input_ids.shape[1] :].tolist() for t in row[3:30])
        stops = [token for token, _ in seen.most_common(8)][3:6]
        whole = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=40,
            **sampling(3)[0],
            eos_token_id=stops,
        )
        monkeypatch.setattr(gen, "SAMPLING_SEGMENT", 4)
        arguments, sampler = sampling(3)
        arguments["eos_token_id"] = stops
        segmented = gen._sample_dropping_stopped_rows(
            model, input_ids, attention, 40, arguments, sampler, set(stops)
        )
    trimmed = [_trim(row, set(stops)) for row in whole[:, input_ids.shape[1] :].tolist()]
    assert [_trim(row, set(stops)) for row in segmented] == trimmed
    lengths = {len(kept) for kept, stopped in trimmed if stopped}
    assert len(lengths) >= 3 and any(not stopped for _, stopped in trimmed), trimmed  # pruning was exercised
