"""Prompts and gold answers for GRPO, each gold answer checked against the scorer when it loads.

Three shapes are read, all through `data.evalsets.load_eval_set` (one reader for all of them):
trace datasets (`prompt`, `final_answer`), eval-set files (`prompt`, `expected_answer`) and GSM8K
records (`question`, `answer` ending in `#### N`, converted by data/convert.py). A dataset spec is
a path, a directory holding dataset.jsonl, a bundled dataset key or a bundled eval-set key.

A gold answer the scorer cannot interpret would make the correctness reward constant (always 0, or
always 1 for a scorer that matched anything): no signal, or a free reward. So it is refused here,
naming file and line. "Cannot interpret" means any of:

* blank after stripping whitespace;
* more than one line (the scorer reads one answer line, so the gold could never be matched);
* nothing left after the scorer's normalisation (only punctuation, quotes or wrappers such as
  "?!" or "**"): it would equal any answer line that normalises to nothing, such as "Answer: .";
* `score(f"Answer: {gold}", gold)` is not correct: the scorer cannot match the gold answer even
  against itself written as an answer line (for instance one made only of punctuation).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunix_rt.data.evalsets import load_eval_set
from tunix_rt.errors import DataError
from tunix_rt.eval.score import normalize, score
from tunix_rt.fsutil import jsonl_lines

MAX_ERRORS_IN_MESSAGE = 10


@dataclass(frozen=True)
class PromptItem:
    id: str
    prompt: str  # the question, not yet rendered for the model
    answer: str  # the gold answer the correctness reward compares with
    line: int  # line number in the file, for messages


@dataclass(frozen=True)
class PromptSet:
    spec: str
    path: Path
    sha256: str
    items: list[PromptItem]


def resolve_prompt_file(spec: str) -> Path:
    """A bundled eval-set key, else anything `tunix-rt train --dataset` accepts."""
    from tunix_rt.data import registry
    from tunix_rt.data.resolver import resolve_dataset

    bundled = registry.bundled_eval_set_path(spec)
    if bundled is not None and bundled.is_file():
        return bundled
    return resolve_dataset(spec).path


def load_prompts(spec: str) -> PromptSet:
    """Every record of the file as a PromptItem; DataError (file:line: field: message) on any
    unreadable record or uninterpretable gold answer."""
    path = resolve_prompt_file(spec)
    evalset = load_eval_set(str(path))  # raises on any bad record, so items follow the file's lines
    lines, field = _record_lines(path)
    if len(lines) != len(evalset.items):
        raise DataError(f"{path}: {len(evalset.items)} items from {len(lines)} records; cannot locate them")
    items = [
        PromptItem(id=item.id, prompt=item.prompt, answer=item.expected_answer, line=line)
        for item, line in zip(evalset.items, lines, strict=True)
    ]
    errors = [
        f"{path}:{item.line}: {field}: {problem}"
        for item in items
        if (problem := gold_problem(item.answer)) is not None
    ]
    if errors:
        shown = errors[:MAX_ERRORS_IN_MESSAGE]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise DataError(
            f"{path}: {len(errors)} gold answer(s) the scorer cannot interpret (a reward on them would "
            "be constant):\n  " + "\n  ".join(shown) + more
        )
    return PromptSet(spec=spec, path=path, sha256=evalset.sha256, items=items)


def gold_problem(gold: str) -> str | None:
    """Why the scorer cannot use `gold` as a reference answer, or None when it can."""
    if not gold.strip():
        return "gold answer is blank"
    if len(gold.strip().splitlines()) > 1:
        return f"gold answer {gold!r} spans several lines; an answer line holds one"
    if not normalize(gold):
        return f"gold answer {gold!r} is only punctuation or wrappers; the scorer compares nothing"
    judged = score(f"Answer: {gold}", gold)
    if not judged.correct:
        return f"gold answer {gold!r} does not match itself under the scorer ({judged.rule})"
    return None


def _record_lines(path: Path) -> tuple[list[int], str]:
    """Line numbers of the non-blank records, and the name of the field holding the gold answer."""
    text_lines = jsonl_lines(path.read_text(encoding="utf-8"))
    lines = [n for n, line in enumerate(text_lines, start=1) if line.strip()]
    first = json.loads(text_lines[lines[0] - 1]) if lines else {}
    for name in ("expected_answer", "final_answer", "answer"):
        if isinstance(first, dict) and name in first:
            return lines, name
    return lines, "final_answer"


def step_prompts(items: list[PromptItem], step: int, batch_size: int, seed: int) -> list[int]:
    """Indices of this step's prompts: a fresh permutation per epoch, derived from (seed, step), so
    a resume needs no data-order state."""
    per_epoch = math.ceil(len(items) / batch_size)
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(len(items))
    return order[k * batch_size : (k + 1) * batch_size].tolist()
