"""Packed rows: how examples are laid out, the model check that guards them, the fused GELU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers_models import make_tiny_model, make_tokenizer
from helpers_train import write_traces
from tunix_rt.data.loader import load_traces
from tunix_rt.train.batching import IGNORE_INDEX, PACKED_ROW_MULTIPLE, collate, pack_rows, packed_rows
from tunix_rt.train.model import use_fused_activations
from tunix_rt.train.packing import CHECK_LENGTHS, packing_problem
from tunix_rt.train.tokenize import tokenize_traces


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 64), min_size=1, max_size=40), st.integers(0, 64))
def test_every_example_lands_in_exactly_one_row_that_fits(lengths: list[int], extra: int) -> None:
    lengths_arr = np.array(lengths)
    width = max(lengths) + extra
    rows = pack_rows(lengths_arr, width)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(lengths_arr[row].sum() <= width for row in rows)
    # First-fit decreasing never opens a row the examples could have shared: any two rows together
    # hold more than one row can.
    fills = sorted(int(lengths_arr[row].sum()) for row in rows)
    if len(fills) > 1:
        assert fills[0] + fills[1] > width


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=64))
def test_the_packed_width_needs_the_fewest_slots_of_the_widths_it_may_take(lengths: list[int]) -> None:
    lengths_arr = np.array(lengths)
    width, rows = packed_rows(lengths_arr)
    narrowest = -(-max(lengths) // PACKED_ROW_MULTIPLE) * PACKED_ROW_MULTIPLE
    assert width % PACKED_ROW_MULTIPLE == 0 and narrowest <= width <= 2 * narrowest
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(lengths_arr[row].sum() <= width for row in rows)
    # Never more slots than the narrowest fit, which is what rounding the longest example gives.
    assert len(rows) * width <= len(pack_rows(lengths_arr, narrowest)) * narrowest


def test_a_wider_row_is_taken_when_it_saves_slots() -> None:
    # Examples of ~41 tokens, the benchmark's mean: 64-wide rows hold one each (a third padding),
    # 128-wide rows hold three.
    lengths = np.array([41, 43, 40, 39, 42, 44])
    width, rows = packed_rows(lengths)
    assert len(rows) * width < len(lengths) * 64
    assert width > 64


def test_a_wider_row_must_save_more_than_its_attention_costs() -> None:
    # Long examples: doubling the width would save under 1% of slots and double attention per token.
    lengths = np.linspace(396, 1804, 15).astype(int)
    width, _ = packed_rows(lengths)
    assert width == 1824


def test_the_packing_check_layout_has_a_shared_row_among_several() -> None:
    width, rows = packed_rows(np.array(CHECK_LENGTHS))
    assert len(rows) >= 2  # flash-attention reads packed positions only in one-row batches
    assert any(len(row) >= 2 for row in rows)  # examples share a row: what the check is for
    assert any(sum(CHECK_LENGTHS[i] for i in row) < width for row in rows)  # padding included


def test_packed_rows_restart_positions_and_keep_labels_inside_each_example(tmp_path) -> None:
    tokenizer = make_tokenizer()
    traces = load_traces(write_traces(tmp_path / "d.jsonl", n=10)).traces
    data = tokenize_traces(traces, tokenizer, system_instruction=None, max_seq_length=256)
    idx = np.arange(len(data))
    batch = collate(data, idx, tokenizer.pad_token_id, packed=True)
    assert batch.input_ids.shape[1] % PACKED_ROW_MULTIPLE == 0
    assert batch.input_ids.shape[0] < len(idx)
    assert batch.input_ids.shape[1] == packed_rows(data.lengths[idx])[0]
    # Walk every row: each example appears whole, positions 0..n-1, loss only after its prompt.
    seen = []
    for r in range(batch.input_ids.shape[0]):
        pos, ids, labels = batch.position_ids[r], batch.input_ids[r], batch.labels[r]
        starts = [int(i) for i in torch.nonzero(pos == 0).flatten()]
        for s in starts:
            end = s + 1
            while end < len(pos) and pos[end] == pos[end - 1] + 1:
                end += 1
            if ids[s] == tokenizer.pad_token_id and (labels[s:end] == IGNORE_INDEX).all() and end - s == 1:
                continue  # a pad token: a sequence of one, no loss
            k = next(k for k in idx if data.example(k).tolist() == ids[s:end].tolist())
            seen.append(k)
            n_prompt = int(data.prompt_lengths[k])
            assert (labels[s : s + n_prompt] == IGNORE_INDEX).all()
            assert labels[s + n_prompt : end].tolist() == data.example(k)[n_prompt:].tolist()
    assert sorted(seen) == idx.tolist()
    assert int((batch.labels != IGNORE_INDEX).sum()) == int(data.completion_lengths.sum())


@pytest.mark.parametrize("dtype", [None, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2", "gemma", "gemma2"])
def test_architectures_in_use_keep_packed_examples_apart(arch: str, dtype) -> None:
    model = make_tiny_model(arch, make_tokenizer())
    model.train()
    state = torch.random.get_rng_state()
    assert packing_problem(model, dtype) is None
    assert model.training  # the check restores the mode it found
    assert torch.equal(torch.random.get_rng_state(), state)  # and draws no random numbers


@pytest.mark.parametrize("dtype", [None, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("arch", ["gpt2", "gemma"])
def test_a_model_that_ignores_restarting_positions_is_caught(arch: str, dtype, monkeypatch) -> None:
    # What an architecture without packed-sequence support looks like: one causal mask per row.
    import transformers.masking_utils as masking

    monkeypatch.setattr(masking, "find_packed_sequence_indices", lambda position_ids: None)
    problem = packing_problem(make_tiny_model(arch, make_tokenizer()), dtype)
    assert problem is not None and "see each other" in problem


def test_a_model_that_cannot_take_position_ids_gets_padded_rows_with_the_reason() -> None:
    class NoPositions(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(50, 4)

        def get_input_embeddings(self) -> torch.nn.Module:
            return self.embed

        def forward(self, input_ids):  # no position_ids, no use_cache
            return self.embed(input_ids)

    problem = packing_problem(NoPositions(), None)
    assert problem is not None and "TypeError" in problem and "could not run" in problem


def test_fused_gelu_is_the_same_function_and_saves_as_gelu_new(tmp_path) -> None:
    tokenizer = make_tokenizer()
    reference = make_tiny_model("gpt2", tokenizer, seed=3).eval()
    fused = make_tiny_model("gpt2", tokenizer, seed=3).eval()
    assert use_fused_activations(fused) == reference.config.n_layer
    assert use_fused_activations(fused) == 0  # idempotent
    ids = torch.arange(40)[None] % len(tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(
            fused(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5
        )
    fused.save_pretrained(tmp_path / "m")
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / "m").activation_function == "gelu_new"
    # Llama's SiLU is already one kernel: nothing to swap.
    assert use_fused_activations(make_tiny_model("llama", tokenizer)) == 0


def test_padded_rows_never_outgrow_max_seq_length(tmp_path) -> None:
    # A GPT-2 sized to max_seq_length has no position beyond it: a padded row rounded up past it
    # would index out of range.
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = make_tokenizer()
    traces = load_traces(write_traces(tmp_path / "d.jsonl", n=10)).traces
    longest = int(
        tokenize_traces(traces, tokenizer, system_instruction=None, max_seq_length=512).lengths.max()
    )
    assert longest % 16  # the case that rounding would push past the limit
    data = tokenize_traces(traces, tokenizer, system_instruction=None, max_seq_length=longest)
    batch = collate(data, np.arange(len(data)), tokenizer.pad_token_id, packed=False)
    assert batch.input_ids.shape[1] == longest
    config = AutoConfig.for_model(
        "gpt2", vocab_size=len(tokenizer), n_positions=longest, n_embd=16, n_layer=1, n_head=2
    )
    AutoModelForCausalLM.from_config(config)(input_ids=batch.input_ids, use_cache=False)


@pytest.mark.parametrize("positions", [16, 32, 48])
def test_a_model_with_few_positions_is_still_checked(positions: int) -> None:
    # A scratch GPT-2 gets n_positions = max_seq_length: the check scales its examples to fit.
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=positions, n_embd=32, n_layer=2, n_head=2))
    assert packing_problem(model, None) is None


def test_a_model_too_short_for_the_check_trains_on_padded_rows_with_the_reason() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=8, n_embd=32, n_layer=2, n_head=2))
    problem = packing_problem(model, None)
    assert problem is not None and "too few positions" in problem
