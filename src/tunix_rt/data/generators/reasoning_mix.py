"""reasoning-mix: a broad, seeded mix of short-answer task families for training small models.

Made for a ~5M-parameter model trained from scratch on a CPU: short regular steps
("47 + 30 = 77"), mostly 1-3 digit numbers, short answers, several phrasings per family.
Each record's meta holds the family (`category`), `task_type`, `phrasing`, `seed`, `index` and the
structured `inputs`, from which the tests recompute every answer independently.

Deterministic for (seed, size): one `random.Random(seed)` drives everything, and prompts are kept
unique within a build (after case/whitespace normalisation) by drawing again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tunix_rt.data.generators import mix_arithmetic as ar
from tunix_rt.data.generators import mix_format as fm
from tunix_rt.data.generators import mix_math as mm
from tunix_rt.data.generators import mix_word as wd
from tunix_rt.data.generators.common import trace
from tunix_rt.data.generators.mix_arithmetic import Item

DATASET = "reasoning-mix"
GENERATOR = "tunix_rt.data.generators.reasoning_mix"
DEFAULT_SEED = 1234
DEFAULT_SIZE = 20_000
# A family that keeps repeating prompts has run out of fresh ones for this size; drop it then.
MAX_REPEATS_IN_A_ROW = 200

# family -> (generator, relative weight); weights roughly follow how many distinct prompts a family has.
FAMILIES: dict[str, tuple[Callable[[random.Random], Item], float]] = {
    "addition": (ar.addition, 3.0),
    "subtraction": (ar.subtraction, 3.0),
    "multiplication": (ar.multiplication, 3.0),
    "division": (ar.division, 2.0),
    "decimals": (ar.decimals, 2.0),
    "powers": (ar.powers, 0.5),
    "square_roots": (ar.square_roots, 0.4),
    "factorials": (ar.factorials, 0.15),
    "order_of_operations": (ar.order_of_operations, 2.0),
    "percentages": (wd.percentages, 1.5),
    "discounts": (wd.discounts, 1.0),
    "costs": (wd.costs, 2.0),
    "sharing": (wd.sharing, 1.5),
    "ages": (wd.ages, 1.5),
    "work_rates": (wd.work_rates, 1.5),
    "distance_speed_time": (wd.distance_speed_time, 1.5),
    "unit_conversion": (wd.unit_conversion, 1.5),
    "perimeter": (mm.perimeter, 1.5),
    "area": (mm.area, 1.5),
    "volume": (mm.volume, 1.0),
    "angles": (mm.angles, 1.0),
    "polygons": (mm.polygons, 0.1),
    "primes": (mm.primes, 0.6),
    "next_prime": (mm.next_prime, 0.3),
    "gcd_lcm": (mm.gcd_lcm, 1.0),
    "divisibility": (mm.divisibility, 1.0),
    "remainders": (mm.remainders, 1.0),
    "sequences": (mm.sequences, 1.5),
    "calendar": (mm.calendar, 1.0),
    "statistics": (mm.statistics, 1.5),
    "probability": (mm.probability, 1.0),
    "linear_equations": (mm.linear_equations, 1.5),
    "formatting": (fm.formatting, 2.0),
    "strings": (fm.strings, 1.0),
}


def normalise_prompt(prompt: str) -> str:
    """The form in which two prompts count as the same question (case and spacing ignored)."""
    return " ".join(prompt.lower().split())


def generate(
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    *,
    exclude: set[str] | None = None,
    skip: Callable[[str, Item], bool] | None = None,
) -> list[dict[str, Any]]:
    """`size` traces with unique prompts; `exclude` holds normalised prompts that must not appear,
    and an item of family F for which `skip(F, item)` is true is drawn again (training builds pass
    the bundled eval sets' exclusions, computed by tunix_rt.data.exclusions, this way)."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    rng = random.Random(seed)
    seen: set[str] = set(exclude or ())
    live = dict(FAMILIES)
    repeats = dict.fromkeys(FAMILIES, 0)
    records: list[dict[str, Any]] = []
    while len(records) < size:
        if not live:
            raise ValueError(f"{DATASET}: only {len(records)} distinct prompts available, {size} requested")
        names = list(live)
        family = rng.choices(names, weights=[live[name][1] for name in names])[0]
        item = live[family][0](rng)
        key = normalise_prompt(item.prompt)
        if key in seen or (skip is not None and skip(family, item)):
            repeats[family] += 1
            if repeats[family] >= MAX_REPEATS_IN_A_ROW:
                del live[family]
            continue
        repeats[family] = 0
        seen.add(key)
        meta = {
            "dataset": DATASET,
            "generator": GENERATOR,
            "seed": seed,
            "index": len(records),
            "category": family,
            "task_type": item.task_type,
            "phrasing": item.phrasing,
            "inputs": item.inputs,
        }
        records.append(trace(item.prompt, [("step", s) for s in item.steps], item.answer, meta))
    return records
