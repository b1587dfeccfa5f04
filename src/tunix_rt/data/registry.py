"""The bundled dataset and eval-set keys: one table each, read by `data list` and the resolvers.

Generators are named as "module:function" and imported only when a build runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EVALSET_DIR = Path(__file__).resolve().parent / "evalsets"


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    version: str
    description: str
    generator: str  # "module:function" taking (seed, size) and returning native trace dicts
    default_seed: int
    default_size: int
    sizable: bool  # whether --size / "KEY:SIZE" may change the count
    max_size: int
    # Whether builds leave out the bundled eval sets' items (tunix_rt.data.exclusions); the builder
    # passes them to the generator as `skip=`.
    excludes_eval_items: bool = False


DATASETS: dict[str, DatasetSpec] = {
    spec.key: spec
    for spec in (
        DatasetSpec(
            key="dev-reasoning-v2",
            version="2.1",
            description="550 traces in the original's composition (reasoning/synthetic/golden/edge), defects fixed",
            generator="tunix_rt.data.generators.dev_reasoning_v2:generate",
            default_seed=42,
            default_size=550,
            sizable=False,
            max_size=550,
        ),
        DatasetSpec(
            key="reasoning-mix",
            # 1.1: builds of any size leave out the bundled eval sets' prompts (1.0 did so only at
            # the default size). 1.2: and the held-out set's problems in any phrasing of the same
            # family. 1.3: and in any family (same numbers in the prompt, same answer).
            version="1.3",
            description="broad seeded mix of 30+ short-answer task families for small models (size: KEY:N)",
            generator="tunix_rt.data.generators.reasoning_mix:generate",
            default_seed=1234,
            default_size=20_000,
            sizable=True,
            max_size=200_000,
            excludes_eval_items=True,
        ),
    )
}

# key -> (file name under data/evalsets/, one-line description)
EVAL_SETS: dict[str, tuple[str, str]] = {
    "reasoning-eval-v1": (
        "reasoning-eval-v1.jsonl",
        "~100 hand-written items in phrasings no generator uses: measures generalisation",
    ),
    "reasoning-mix-heldout": (
        "reasoning-mix-heldout.jsonl",
        "200 in-distribution reasoning-mix items (disjoint seed; their prompts and problems absent from training builds)",
    ),
}


def dataset_spec(key: str) -> DatasetSpec | None:
    """The bundled dataset called `key` (without a ':SIZE' suffix), or None."""
    return DATASETS.get(key)


def bundled_eval_set_path(key: str) -> Path | None:
    """Path of the bundled eval set `key`, or None when no bundled set has that key."""
    entry = EVAL_SETS.get(key)
    if entry is None:
        return None
    return EVALSET_DIR / entry[0]
