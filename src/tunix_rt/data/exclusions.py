"""What a training build must leave out so that every bundled eval set stays unseen.

Computed here, where builds are made, and passed into the generator as a predicate, so the
generators never read the eval sets that were generated from them. A candidate item is left out
when any of these match a bundled eval item:

- its prompt, ignoring case and spacing (every bundled eval set);
- its problem identity (tunix_rt.data.problems: the numbers in the prompt and the answer), for the
  in-distribution held-out set `reasoning-mix-heldout`;
- its family and structured inputs, for the held-out set's generator records (the same problem
  in another phrasing of the same family, even where the stated numbers differ).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Protocol

from tunix_rt.data.generators.heldout import heldout_records
from tunix_rt.data.generators.reasoning_mix import normalise_prompt
from tunix_rt.data.problems import ProblemIdentity, normalise_answer, problem_identity
from tunix_rt.data.registry import EVAL_SETS, bundled_eval_set_path
from tunix_rt.fsutil import jsonl_lines

HELDOUT_KEY = "reasoning-mix-heldout"


class Candidate(Protocol):
    prompt: str
    answer: str
    inputs: Any


def family_inputs_key(family: str, inputs: Any) -> tuple[str, str]:
    return family, json.dumps(inputs, sort_keys=True)


@dataclass(frozen=True)
class EvalExclusions:
    prompts: frozenset[str]  # normalised prompts of every bundled eval set
    identities: frozenset[ProblemIdentity]  # problem identities of the held-out set
    answers: frozenset[str]  # their normalised answers: a cheap first test before reading numbers
    family_inputs: frozenset[tuple[str, str]]  # (family, inputs) of the held-out set's records

    def excludes(self, family: str, item: Candidate) -> bool:
        """Whether a generated `item` of `family` is a bundled eval item (see the module docstring)."""
        return (
            normalise_prompt(item.prompt) in self.prompts
            or (
                normalise_answer(item.answer) in self.answers
                and problem_identity(item.prompt, item.answer) in self.identities
            )
            or family_inputs_key(family, item.inputs) in self.family_inputs
        )


def _eval_items(key: str) -> list[dict[str, Any]]:
    path = bundled_eval_set_path(key)
    assert path is not None  # every key of EVAL_SETS names a bundled file
    return [json.loads(line) for line in jsonl_lines(path.read_text(encoding="utf-8")) if line.strip()]


@functools.lru_cache(maxsize=1)
def eval_exclusions() -> EvalExclusions:
    """The exclusions for the bundled eval sets as shipped (computed once per process)."""
    prompts = {normalise_prompt(item["prompt"]) for key in EVAL_SETS for item in _eval_items(key)}
    identities = frozenset(
        problem_identity(i["prompt"], i["expected_answer"]) for i in _eval_items(HELDOUT_KEY)
    )
    return EvalExclusions(
        prompts=frozenset(prompts),
        identities=identities,
        answers=frozenset(answer for _, answer in identities),
        family_inputs=frozenset(
            family_inputs_key(r["meta"]["category"], r["meta"]["inputs"]) for r in heldout_records()
        ),
    )
