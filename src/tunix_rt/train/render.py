"""Trace -> (prompt, completion): the one place where text is formatted for the model.

Training and evaluation both call `render_prompt`, so a model is always asked questions in exactly
the shape it was trained on.

Plain template (models without a chat template, e.g. the from-scratch default or base GPT-2)::

    {system_instruction}\\n\\n        <- only when one is set
    Question: {prompt}\\n
    Reasoning:\\n

Chat template (instruction-tuned models such as Gemma-IT, Llama-Instruct, Qwen-Instruct): one user
turn holding the question, rendered by the tokenizer's own template with the generation prompt
(e.g. Gemma's ``<start_of_turn>model``). The system instruction goes in a system turn when the
template has one and is prepended to the user turn when it refuses system turns (Gemma does).

Completion (both)::

    1. {step 1}\\n
    2. {step 2}\\n
    Answer: {final_answer}
    + the tokenizer's EOS token, appended as an id by the tokenizer step (never as text)
"""

from __future__ import annotations

from typing import Any, Protocol

PLAIN = "plain"
CHAT = "chat"
ANSWER_PREFIX = "Answer:"


class _TraceLike(Protocol):
    steps: Any
    final_answer: str


def template_kind(tokenizer: Any) -> str:
    """'chat' when the tokenizer carries a chat template, else 'plain'."""
    return CHAT if getattr(tokenizer, "chat_template", None) else PLAIN


def render_prompt(question: str, tokenizer: Any = None, system_instruction: str | None = None) -> str:
    """The text the model sees before it starts its answer."""
    if tokenizer is not None and template_kind(tokenizer) == CHAT:
        return _render_chat_prompt(question, tokenizer, system_instruction)
    header = f"{system_instruction.strip()}\n\n" if system_instruction and system_instruction.strip() else ""
    return f"{header}Question: {question.strip()}\nReasoning:\n"


def _render_chat_prompt(question: str, tokenizer: Any, system_instruction: str | None) -> str:
    user_turn = {"role": "user", "content": question.strip()}
    if system_instruction:
        try:
            return tokenizer.apply_chat_template(
                [{"role": "system", "content": system_instruction}, user_turn],
                tokenize=False,
                add_generation_prompt=True,
            )
        except Exception as exc:  # jinja raises TemplateError for "System role not supported"
            if "system" not in str(exc).lower():
                raise
        user_turn = {"role": "user", "content": f"{system_instruction.strip()}\n\n{question.strip()}"}
    return tokenizer.apply_chat_template([user_turn], tokenize=False, add_generation_prompt=True)


def render_completion(trace: _TraceLike) -> str:
    """Numbered reasoning steps then the answer line; EOS is added as a token id, not text."""
    steps = sorted(trace.steps, key=lambda step: step.i)
    lines = [f"{n}. {' '.join(step.content.split())}" for n, step in enumerate(steps, start=1)]
    lines.append(f"{ANSWER_PREFIX} {trace.final_answer.strip()}")
    return "\n".join(lines)
