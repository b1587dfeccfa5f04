"""Builds the bundled eval set `reasoning-mix-heldout` (run once, output committed).

In-distribution items from the reasoning-mix generator with a seed disjoint from the training
default, keeping only prompts absent from the default reasoning-mix build and from
dev-reasoning-v2 (normalised for case and spacing). A test regenerates the file and compares.
Training builds leave its problems out in any phrasing and any family: the exclusions are computed
where builds are made (tunix_rt.data.exclusions) and passed into the generator.

    python -m tunix_rt.data.generators.heldout   # rewrites src/tunix_rt/data/evalsets/reasoning-mix-heldout.jsonl
"""

from __future__ import annotations

import functools
import json
from typing import Any

from tunix_rt.data.generators import dev_reasoning_v2, reasoning_mix
from tunix_rt.data.generators.reasoning_mix import normalise_prompt
from tunix_rt.data.registry import bundled_eval_set_path

HELDOUT_SEED = 90_210  # != reasoning_mix.DEFAULT_SEED
HELDOUT_SIZE = 200
TRACE_SENSITIVE_MIN_STEPS = 3


@functools.lru_cache(maxsize=1)
def _records() -> tuple[dict[str, Any], ...]:
    exclude = {normalise_prompt(r["prompt"]) for r in reasoning_mix.generate()}
    exclude |= {normalise_prompt(r["prompt"]) for r in dev_reasoning_v2.generate()}
    return tuple(reasoning_mix.generate(HELDOUT_SEED, HELDOUT_SIZE, exclude=exclude))


def heldout_records() -> list[dict[str, Any]]:
    """The generator records behind the eval items (with their family and inputs), in file order."""
    return [dict(r) for r in _records()]


def build_heldout() -> list[dict[str, Any]]:
    """The eval items, in file order."""
    items = []
    for n, record in enumerate(heldout_records(), start=1):
        steps = len(record["steps"])
        items.append(
            {
                "id": f"mix-heldout-{n:03d}",
                "prompt": record["prompt"],
                "expected_answer": record["final_answer"],
                # Items whose answer needs several dependent steps are where showing work should pay off.
                "section": "trace_sensitive" if steps >= TRACE_SENSITIVE_MIN_STEPS else "core",
                "category": record["meta"]["category"],
                "difficulty": "easy" if steps <= 1 else "medium" if steps <= 3 else "hard",
            }
        )
    return items


def heldout_jsonl() -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in build_heldout())


def main() -> None:
    path = bundled_eval_set_path("reasoning-mix-heldout")
    assert path is not None
    path.write_text(heldout_jsonl(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
