"""Other input shapes -> the native trace record, with the conversion recorded in meta.

Accepted shapes (detected by their keys, in this order):

- native:            {trace_version?, prompt, steps: [{i, type, content}], final_answer, meta?}
- "export":          the original's export {prompts, trace_steps: [str], final_answer, metadata}
- "chat":            {messages: [{role, content}]}: last assistant turn = completion, the user turn
                     before it = prompt, every turn before that (system turns included) kept in
                     meta["chat_history"] so the whole conversation is rendered (train/render.py);
                     the loss still covers the last assistant turn only
- "gsm8k":           {question, answer} with the answer's last line "#### N"
- "prompt_completion": {prompt, completion}

Conversion produces a plain dict; schema validation happens afterwards in one place (the loader),
so a converted record is held to exactly the same limits as a native one.
"""

from __future__ import annotations

import re
from typing import Any

from tunix_rt.data.schema import CHAT_HISTORY, HISTORY_ROLES

EXPORT = "export"
CHAT = "chat"
GSM8K = "gsm8k"
PROMPT_COMPLETION = "prompt_completion"

_ANSWER_LINE = re.compile(r"^\s*(?:final\s+answer|answer)\s*:\s*(?P<answer>.*)$", re.IGNORECASE)
# Our own rendered completions number their steps ("1. ..."); strip that so a round trip is exact.
_STEP_NUMBER = re.compile(r"^\s*\d{1,4}[.)]\s+")
_GSM8K_CALC = re.compile(r"<<[^<>]*>>")
_GSM8K_FINAL = re.compile(r"^\s*####\s*(?P<answer>.*?)\s*$")


class ConversionError(ValueError):
    """A record of a recognised shape whose fields cannot be converted; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def to_native(record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Return (native record, conversion name) — the name is None for native records."""
    if "steps" in record or "trace_version" in record:
        return record, None
    if "trace_steps" in record or "prompts" in record:
        return _from_export(record), EXPORT
    if "messages" in record:
        return _from_chat(record), CHAT
    if "question" in record and "answer" in record:
        return _from_gsm8k(record), GSM8K
    if "prompt" in record and "completion" in record:
        return _from_prompt_completion(record), PROMPT_COMPLETION
    keys = ", ".join(sorted(map(str, record))) or "none"
    raise ConversionError(
        "record",
        f"unrecognised record shape (keys: {keys}); expected prompt+steps+final_answer, "
        "prompts+trace_steps, prompt+completion, question+answer (GSM8K) or messages",
    )


def _string(record: dict[str, Any], field: str) -> str:
    if field not in record:
        raise ConversionError(field, "field required")
    value = record[field]
    if not isinstance(value, str):
        raise ConversionError(field, f"expected a string, got {type(value).__name__}")
    return value


def _meta(record: dict[str, Any], field: str, converted_from: str) -> dict[str, Any]:
    meta = record.get(field, {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ConversionError(field, f"expected an object, got {type(meta).__name__}")
    return {**meta, "converted_from": converted_from}


def _steps(contents: list[str]) -> list[dict[str, Any]]:
    return [{"i": n, "type": "step", "content": text} for n, text in enumerate(contents)]


def _from_export(record: dict[str, Any]) -> dict[str, Any]:
    prompt = _string(record, "prompts")
    steps = record.get("trace_steps")
    if not isinstance(steps, list):
        raise ConversionError("trace_steps", f"expected a list of strings, got {type(steps).__name__}")
    for n, step in enumerate(steps):
        if not isinstance(step, str):
            raise ConversionError(f"trace_steps[{n}]", f"expected a string, got {type(step).__name__}")
    return {
        "prompt": prompt,
        "steps": _steps(steps),
        "final_answer": _string(record, "final_answer"),
        "meta": _meta(record, "metadata", EXPORT),
    }


def split_completion(completion: str) -> tuple[list[str], str]:
    """Completion text -> (step lines, final answer).

    An `Answer:` / `Final answer:` line gives the answer (the last one wins) and is not a step;
    without one the last line is the answer and is not a step either, so the rendered completion
    states it once (as its `Answer:` line), never twice. Blank lines are dropped and leading step
    numbers ("1. ") stripped.
    """
    steps: list[str] = []
    answer: str | None = None
    for raw in completion.splitlines():
        if not raw.strip():
            continue
        match = _ANSWER_LINE.match(raw)
        if match:
            answer = match.group("answer").strip()
            continue
        steps.append(_STEP_NUMBER.sub("", raw).strip())
    if answer is None:
        answer = steps.pop() if steps else ""
    return steps, answer


def _from_prompt_completion(
    record: dict[str, Any], converted_from: str = PROMPT_COMPLETION
) -> dict[str, Any]:
    prompt = _string(record, "prompt")
    steps, answer = split_completion(_string(record, "completion"))
    if not steps:
        raise ConversionError(
            "completion",
            "no reasoning lines (only blank lines or an answer line; without an 'Answer:' line the "
            "last line is the answer)",
        )
    return {
        "prompt": prompt,
        "steps": _steps(steps),
        "final_answer": answer,
        "meta": _meta(record, "meta", converted_from),
    }


def _from_gsm8k(record: dict[str, Any]) -> dict[str, Any]:
    question = _string(record, "question")
    lines = [line for line in _string(record, "answer").splitlines() if line.strip()]
    final = _GSM8K_FINAL.match(lines[-1]) if lines else None
    if final is None or not final.group("answer"):
        raise ConversionError("answer", "GSM8K answer must end with a '#### N' line")
    steps = [" ".join(_GSM8K_CALC.sub("", line).split()) for line in lines[:-1]]
    steps = [step for step in steps if step]
    if not steps:
        raise ConversionError("answer", "GSM8K answer has no reasoning lines before '#### N'")
    return {
        "prompt": question,
        "steps": _steps(steps),
        "final_answer": final.group("answer").replace(",", ""),
        "meta": _meta(record, "meta", GSM8K),
    }


def _from_chat(record: dict[str, Any]) -> dict[str, Any]:
    messages = _chat_messages(record)
    last_assistant = max((n for n, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last_assistant is None:
        raise ConversionError("messages", "no assistant turn")
    user = max((n for n in range(last_assistant) if messages[n]["role"] == "user"), default=None)
    if user is None:
        raise ConversionError(
            "messages", f"no user turn before the assistant turn messages[{last_assistant}]"
        )
    if user + 1 != last_assistant:
        # Rendering puts the completion right after the question: a turn in between would be lost.
        raise ConversionError(
            f"messages[{user + 1}]",
            f"the last assistant turn messages[{last_assistant}] must directly follow the user turn "
            f"messages[{user}]",
        )
    try:
        converted = _from_prompt_completion(
            {
                "prompt": messages[user]["content"],
                "completion": messages[last_assistant]["content"],
                "meta": record.get("meta"),
            },
            converted_from=CHAT,
        )
    except ConversionError as exc:
        # Name the chat field the user wrote, not the intermediate prompt/completion shape.
        field = {"completion": f"messages[{last_assistant}].content"}.get(exc.field, exc.field)
        raise ConversionError(field, exc.message) from exc
    if user:
        converted["meta"][CHAT_HISTORY] = [
            {"role": m["role"], "content": m["content"]} for m in messages[:user]
        ]
    return converted


def _chat_messages(record: dict[str, Any]) -> list[dict[str, Any]]:
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise ConversionError("messages", "expected a non-empty list of {role, content} objects")
    for n, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ConversionError(f"messages[{n}]", f"expected an object, got {type(message).__name__}")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise ConversionError(f"messages[{n}].{key}", "expected a string")
        if message["role"] not in HISTORY_ROLES:
            raise ConversionError(f"messages[{n}].role", f"expected one of {', '.join(HISTORY_ROLES)}")
    return messages
