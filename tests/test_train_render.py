"""Prompt rendering: the plain template, chat templates (with and without a system role)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from helpers_models import make_tokenizer
from tunix_rt.train.render import render_completion, render_prompt, template_kind

# Gemma's template in miniature: BOS as text, turn markers, and no system role.
GEMMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
WITH_SYSTEM = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_plain_template_is_documented_shape() -> None:
    assert (
        render_prompt(" What is 2 + 2? ", None, "Be brief.")
        == "Be brief.\n\nQuestion: What is 2 + 2?\nReasoning:\n"
    )
    assert render_prompt("Q?", make_tokenizer(), None) == "Question: Q?\nReasoning:\n"
    assert template_kind(make_tokenizer()) == "plain"


def test_chat_template_without_system_role_puts_the_instruction_in_the_user_turn() -> None:
    tokenizer = make_tokenizer()
    tokenizer.chat_template = GEMMA_LIKE
    text = render_prompt("What is 2 + 2?", tokenizer, "Show your work.")
    assert (
        text
        == "<bos><start_of_turn>user\nShow your work.\n\nWhat is 2 + 2?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert template_kind(tokenizer) == "chat"


def test_chat_template_with_system_role_uses_it() -> None:
    tokenizer = make_tokenizer()
    tokenizer.chat_template = WITH_SYSTEM
    text = render_prompt("Q?", tokenizer, "Show your work.")
    assert text == "<|system|>Show your work.\n<|user|>Q?\n<|assistant|>"


def test_bos_is_never_doubled_when_the_template_writes_it() -> None:
    from tunix_rt.train.tokenize import encode_prompt

    tokenizer = make_tokenizer()
    tokenizer.chat_template = GEMMA_LIKE
    tokenizer.add_bos_token = True
    ids = encode_prompt(tokenizer, render_prompt("Q?", tokenizer, None))
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id


@pytest.mark.parametrize("steps", [[(1, "b"), (0, "a  \n spaced")]])
def test_completion_numbers_steps_in_order_and_ends_with_the_answer(steps) -> None:
    trace = SimpleNamespace(steps=[SimpleNamespace(i=i, content=c) for i, c in steps], final_answer=" 42 ")
    assert render_completion(trace) == "1. a spaced\n2. b\nAnswer: 42"
