"""Trace -> (prompt, completion): the one place where text is formatted for the model.

Training and evaluation both call `render_prompt`, so a model is always asked questions in exactly
the shape it was trained on.

Plain template (models without a chat template, e.g. the from-scratch default or base GPT-2)::

    {system}\\n\\n                        <- only when there is one (see "System prompt" below)
    Question: {earlier user turn}\\n      <- earlier turns of a chat record, oldest first, if any
    Reasoning:\\n
    {earlier assistant turn}\\n\\n
    Question: {prompt}\\n
    Reasoning:\\n

A trace without earlier turns renders exactly as it always has: ``Question: {prompt}\\nReasoning:\\n``.

Chat template (instruction-tuned models such as SmolLM2-Instruct, Gemma-IT, Llama-Instruct,
Qwen-Instruct): the conversation (system turn, earlier turns, then the question as the last user
turn) rendered by the tokenizer's own template with the generation prompt (e.g. Gemma's
``<start_of_turn>model``). When the template refuses system turns (Gemma does), the system text is
prepended to the first user turn.

System prompt, in order of precedence: the record's own system turn(s) (chat records keep theirs);
then ``system_instruction`` from the config; then, for chat templates only, `DEFAULT_CHAT_SYSTEM`.
Plain templates get no system text unless one of the first two gives it.

Why a default of our own for chat models: SmolLM2's template inserts "You are a helpful AI
assistant named SmolLM, trained by Hugging Face" whenever the first turn is not a system turn.
Measured with the real SmolLM2-135M-Instruct GGUF tokenizer on 500 `reasoning-mix` traces (seed 0):
that default costs 16 tokens per example, 82.6 tokens mean example length against 66.6 with an
empty system turn, so 19 % of every training step goes to a sentence that tells the model nothing
about the task. `DEFAULT_CHAT_SYSTEM` costs 15 tokens (81.6 mean) and states the output format the
scorer reads, so a base model evaluated before training is asked for an ``Answer:`` line rather
than being marked wrong for never writing one, and every chat family (with or without a system
role) gets the same instruction. Set ``system_instruction`` to use any other text, including the
template's own default.

Completion (both)::

    1. {step 1}\\n
    2. {step 2}\\n
    Answer: {final_answer}
    + one end token, appended as an id by the tokenizer step (never as text): the chat template's
      end-of-turn token (`end_of_turn_id`, e.g. ``<end_of_turn>``, ``<|im_end|>``), else EOS
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tunix_rt.data.schema import CHAT_HISTORY

PLAIN = "plain"
CHAT = "chat"
ANSWER_PREFIX = "Answer:"
DEFAULT_CHAT_SYSTEM = "Solve step by step. End with 'Answer: <answer>'."

# Written as the assistant's reply when probing a template for its end-of-turn token: plain
# lowercase letters that no template rewrites and that cannot merge with a following special token.
_PROBE = "tunixrtprobereply"
# Fallback only, for templates that cannot render the probe conversation: the end-of-turn tokens
# of the chat families we know (Gemma, ChatML/SmolLM2/Qwen, Llama 3, Phi-3).
_KNOWN_END_OF_TURN = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>")


class _TraceLike(Protocol):
    steps: Any
    final_answer: str


Turn = dict[str, str]


def template_kind(tokenizer: Any) -> str:
    """'chat' when the tokenizer carries a chat template, else 'plain'."""
    return CHAT if getattr(tokenizer, "chat_template", None) else PLAIN


def trace_history(trace: Any) -> list[Turn]:
    """The turns before the question that a chat record carried (meta["chat_history"]), else []."""
    meta = getattr(trace, "meta", None) or {}
    return list(meta.get(CHAT_HISTORY, []))


def render_prompt(
    question: str,
    tokenizer: Any = None,
    system_instruction: str | None = None,
    history: Sequence[Turn] = (),
) -> str:
    """The text the model sees before it starts its answer.

    history: earlier turns of the conversation ({role, content}, oldest first), as `trace_history`
    gives them; evaluation questions have none.
    """
    own_system = [turn["content"].strip() for turn in history if turn["role"] == "system"]
    turns = [turn for turn in history if turn["role"] != "system"]
    system = "\n\n".join(own_system) if own_system else (system_instruction or "").strip()
    if tokenizer is not None and template_kind(tokenizer) == CHAT:
        messages = [*turns, {"role": "user", "content": question.strip()}]
        return _render_chat(tokenizer, system or DEFAULT_CHAT_SYSTEM, messages)
    header = f"{system}\n\n" if system else ""
    body = "".join(
        f"Question: {turn['content'].strip()}\nReasoning:\n"
        if turn["role"] == "user"
        else f"{turn['content'].strip()}\n\n"
        for turn in turns
    )
    return f"{header}{body}Question: {question.strip()}\nReasoning:\n"


def _render_chat(tokenizer: Any, system: str, messages: list[Turn]) -> str:
    try:
        return tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, *messages], tokenize=False, add_generation_prompt=True
        )
    except Exception as exc:  # jinja raises TemplateError for "System role not supported"
        if "system" not in str(exc).lower():
            raise
    first_user = next(n for n, turn in enumerate(messages) if turn["role"] == "user")
    folded = [dict(turn) for turn in messages]
    folded[first_user]["content"] = f"{system}\n\n{folded[first_user]['content']}"
    return tokenizer.apply_chat_template(folded, tokenize=False, add_generation_prompt=True)


def render_completion(trace: _TraceLike) -> str:
    """Numbered reasoning steps then the answer line; the end token is added as an id, not text."""
    steps = sorted(trace.steps, key=lambda step: step.i)
    lines = [f"{n}. {' '.join(step.content.split())}" for n, step in enumerate(steps, start=1)]
    lines.append(f"{ANSWER_PREFIX} {trace.final_answer.strip()}")
    return "\n".join(lines)


def end_of_turn_id(tokenizer: Any) -> int | None:
    """The id of the token the chat template writes right after an assistant reply, or None.

    Found by rendering a one-turn conversation and reading what follows the reply: the first
    special token there (`<end_of_turn>` for Gemma, `<|im_end|>` for ChatML, `<|eot_id|>` for
    Llama 3). None for plain tokenizers and for templates that close a turn with ordinary text.
    """
    if template_kind(tokenizer) != CHAT:
        return None
    special = _special_ids(tokenizer)
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _PROBE}], tokenize=False
        )
    except Exception:  # a template that insists on its own roles or fields: the known names below
        return _known_end_of_turn(tokenizer, special)
    at = text.rfind(_PROBE)
    if at < 0:
        return _known_end_of_turn(tokenizer, special)
    after = tokenizer(text[at + len(_PROBE) :], add_special_tokens=False).input_ids
    return next((int(token_id) for token_id in after if token_id in special), None)


def _special_ids(tokenizer: Any) -> set[int]:
    ids = {int(i) for i in tokenizer.all_special_ids}
    ids.update(
        int(i) for i, token in tokenizer.added_tokens_decoder.items() if getattr(token, "special", False)
    )
    return ids


def _known_end_of_turn(tokenizer: Any, special: set[int]) -> int | None:
    for name in _KNOWN_END_OF_TURN:
        token_id = tokenizer.convert_tokens_to_ids(name)
        if isinstance(token_id, int) and token_id in special:
            return token_id
    return None


def completion_end_id(tokenizer: Any) -> int:
    """The token every completion ends with: the chat template's end-of-turn, else EOS.

    A chat model learns to close its turn the way its template does (and generation stops there,
    see eval.generate.stop_token_ids); a plain model ends with EOS as before.
    """
    end = end_of_turn_id(tokenizer)
    return int(tokenizer.eos_token_id) if end is None else end
