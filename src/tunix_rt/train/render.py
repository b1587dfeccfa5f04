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

System prompt, in order of precedence: the record's own system turn(s) (chat records keep theirs),
then ``system_instruction`` from the config, then none. "None" for a chat template means no system
turn, except for templates that insert a default system prompt of their own when the first turn
is not a system turn (SmolLM2, Qwen2.5): those get an empty system turn instead, which stops them.

Why no default system prompt (the decision of issue 12 §4): SmolLM2's template inserts "You are a
helpful AI assistant named SmolLM, trained by Hugging Face". Measured with the real
SmolLM2-135M-Instruct GGUF tokenizer on 500 `reasoning-mix` traces (seed 0), mean tokens per
training example (prompt + completion + end-of-turn):

    template default             82.6   (the default costs 16 tokens, 19 % of every example)
    empty system turn            66.6   (what we render)
    a short format instruction   81.6   ("Solve step by step. End with 'Answer: <answer>'.")

and the base model ignores an instruction anyway: on the first 30 `reasoning-mix-heldout` items
(greedy, 96 new tokens) it wrote an ``Answer:`` line 0/30 times under each of the three. Fine-tuning
teaches the format; the default would only spend a fifth of every step on the model's name. Set
``system_instruction`` for any system text, including the template's own default.

Chat templates are rendered with a fixed ``date_string`` so templates that print today's date
(Llama 3.x) render a prompt the same way in training and in a later evaluation.

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
# Llama 3.x templates print "Today Date: ..." from the clock unless given date_string; a prompt
# must not depend on the day it is rendered. This is the templates' own fallback date.
_TEMPLATE_DATE = "26 Jul 2024"

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
        return _render_chat(tokenizer, system, [*turns, {"role": "user", "content": question.strip()}])
    header = f"{system}\n\n" if system else ""
    body = "".join(
        f"Question: {turn['content'].strip()}\nReasoning:\n"
        if turn["role"] == "user"
        else f"{turn['content'].strip()}\n\n"
        for turn in turns
    )
    return f"{header}{body}Question: {question.strip()}\nReasoning:\n"


def _apply(tokenizer: Any, messages: list[Turn], **options: Any) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, date_string=_TEMPLATE_DATE, **options)


def _render_chat(tokenizer: Any, system: str, messages: list[Turn]) -> str:
    if not system and not inserts_default_system(tokenizer):
        return _apply(tokenizer, messages, add_generation_prompt=True)
    try:
        return _apply(
            tokenizer, [{"role": "system", "content": system}, *messages], add_generation_prompt=True
        )
    except Exception as exc:  # jinja raises TemplateError for "System role not supported"
        if "system" not in str(exc).lower():
            raise
    first_user = next(n for n, turn in enumerate(messages) if turn["role"] == "user")
    folded = [dict(turn) for turn in messages]
    folded[first_user]["content"] = f"{system}\n\n{folded[first_user]['content']}"
    return _apply(tokenizer, folded, add_generation_prompt=True)


_DEFAULT_SYSTEM_CACHE: dict[str, bool] = {}  # chat template text -> inserts_default_system


def inserts_default_system(tokenizer: Any) -> bool:
    """Whether the chat template writes a system prompt of its own when given none (SmolLM2 does).

    Read from the template: a conversation without a system turn renders longer than the same
    conversation with an empty one. Cached per template text.
    """
    template = str(tokenizer.chat_template)
    if template not in _DEFAULT_SYSTEM_CACHE:
        user = [{"role": "user", "content": _PROBE}]
        try:
            with_empty = _apply(tokenizer, [{"role": "system", "content": ""}, *user])
        except Exception:  # a template that refuses system turns has no default one either
            _DEFAULT_SYSTEM_CACHE[template] = False
        else:
            _DEFAULT_SYSTEM_CACHE[template] = len(_apply(tokenizer, user)) > len(with_empty)
    return _DEFAULT_SYSTEM_CACHE[template]


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
        text = _apply(
            tokenizer, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _PROBE}]
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
