"""Bundled eval sets: format, recomputed answers, regeneration, and no leak into training data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tunix_rt.data.build import effective_params, generate_jsonl, parse_key
from tunix_rt.data.generators import reasoning_mix
from tunix_rt.data.generators.heldout import heldout_jsonl, heldout_records
from tunix_rt.data.registry import DATASETS, EVAL_SETS, bundled_eval_set_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_eval_v1_table import expected_items
from heldout_identity import identity, same_problems

FIELDS = {"id", "prompt", "expected_answer", "section", "category", "difficulty"}


def read(key: str) -> list[dict]:
    path = bundled_eval_set_path(key)
    assert path is not None and path.is_file()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def norm(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("key", sorted(EVAL_SETS))
def test_eval_set_format(key):
    items = read(key)
    assert len({i["id"] for i in items}) == len(items)
    assert len({norm(i["prompt"]) for i in items}) == len(items)
    for item in items:
        assert set(item) == FIELDS
        assert item["section"] in {"core", "trace_sensitive", "edge_case"}
        assert item["difficulty"] in {"easy", "medium", "hard"}
        assert all(isinstance(item[f], str) and item[f].strip() for f in FIELDS)


def test_unknown_key_has_no_path():
    assert bundled_eval_set_path("nope") is None


def test_reasoning_eval_v1_answers_recomputed():
    assert read("reasoning-eval-v1") == expected_items()
    assert 90 <= len(expected_items()) <= 120


def test_heldout_regenerates_identically():
    path = bundled_eval_set_path("reasoning-mix-heldout")
    assert path is not None
    assert path.read_text(encoding="utf-8") == heldout_jsonl()
    assert len(read("reasoning-mix-heldout")) == 200


def _shipped_dataset_specs() -> set[str]:
    """The `data.dataset` of every shipped config (the demo's default and configs/*.yaml)."""
    root = Path(__file__).resolve().parents[1]
    specs = set()
    for path in [
        root / "src" / "tunix_rt" / "configs" / "default.yaml",
        *sorted((root / "configs").glob("*.yaml")),
    ]:
        dataset = yaml.safe_load(path.read_text(encoding="utf-8")).get("data", {}).get("dataset")
        if dataset:
            specs.add(str(dataset))
    return specs


def _build(spec: str) -> list:
    """The traces of the bundled build `spec` ("KEY" or "KEY:SIZE"), made as the resolver makes it."""
    key, size = parse_key(spec)
    dataset = DATASETS[key]
    seed, size = effective_params(dataset, None, size)
    return generate_jsonl(dataset, seed, size)[1]


def _family_inputs(meta: dict) -> tuple[str, str] | None:
    if "category" not in meta or "inputs" not in meta:
        return None  # not a reasoning-mix trace: only its prompt can be compared
    return meta["category"], json.dumps(meta["inputs"], sort_keys=True)


HELDOUT_FAMILY_INPUTS = {_family_inputs(r["meta"]) for r in heldout_records()}


def _assert_no_eval_item(spec: str) -> None:
    traces = _build(spec)
    prompts = {norm(t.prompt) for t in traces}
    for key in EVAL_SETS:
        leaked = [i["id"] for i in read(key) if norm(i["prompt"]) in prompts]
        assert not leaked, f"{key}: prompts also in the {spec} training build: {leaked}"
    # The same held-out problem in another phrasing of its family counts as seen too...
    twins = [t.prompt for t in traces if _family_inputs(t.meta) in HELDOUT_FAMILY_INPUTS]
    assert not twins, f"{spec}: held-out problems rephrased in training: {twins[:3]}"
    # ...and so does the same computation in any family, recomputed here from the text alone.
    same = same_problems(read("reasoning-mix-heldout"), [(t.prompt, t.final_answer) for t in traces])
    assert not same, f"{spec}: held-out problems (same numbers and answer) in training: {same}"


def test_shipped_configs_name_the_builds_tested_here():
    specs = _shipped_dataset_specs()
    # The sizes the demo and cpu-reasoner train on: large builds are where leaks used to happen.
    assert {"reasoning-mix:51200", "reasoning-mix:150000", "dev-reasoning-v2"} <= specs
    assert specs <= set(SHIPPED_BUILDS), f"a shipped config trains on a build not tested: {specs}"


# Every shipped config's build (src/tunix_rt/configs/default.yaml is the demo's) and the default
# size. The large ones take ~10-50 s each on a 2-core CPU, so they run as slow tests; the
# exclusion holds for any size by construction, and the fast ones exercise the same code.
SHIPPED_BUILDS = {
    "reasoning-mix": (),
    "dev-reasoning-v2": (),
    "reasoning-mix:50000": (pytest.mark.slow,),
    "reasoning-mix:51200": (pytest.mark.slow,),
    "reasoning-mix:150000": (pytest.mark.slow,),
}


@pytest.mark.parametrize(
    "spec", [pytest.param(spec, marks=marks, id=spec) for spec, marks in SHIPPED_BUILDS.items()]
)
def test_no_eval_item_in_any_shipped_training_build(spec):
    _assert_no_eval_item(spec)


def test_the_plain_generator_would_leak_prompts_and_problems():
    # Why training builds exclude eval items: the held-out set comes from the same generator.
    eval_prompts = {norm(i["prompt"]) for key in EVAL_SETS for i in read(key)}
    plain = reasoning_mix.generate(reasoning_mix.DEFAULT_SEED, 60_000)
    assert {norm(r["prompt"]) for r in plain} & eval_prompts
    default = reasoning_mix.generate()
    assert any(_family_inputs(r["meta"]) in HELDOUT_FAMILY_INPUTS for r in default)
    assert len(HELDOUT_FAMILY_INPUTS) == 200  # one problem per held-out item
    # The family key alone misses the same computation in another family ("What is 84 × 2?" held
    # out, "A cyclist travels at 84 km/h for 2 hours" generated): reasoning-mix 1.3 excludes those too.
    other_family = [
        (r["prompt"], r["final_answer"])
        for r in default
        if _family_inputs(r["meta"]) not in HELDOUT_FAMILY_INPUTS and norm(r["prompt"]) not in eval_prompts
    ]
    assert same_problems(read("reasoning-mix-heldout"), other_family)


def test_the_independent_identity_sees_through_family_and_phrasing():
    cyclist = identity("A cyclist travels at 84 km/h for 2 hours. How far does it go?", "168")
    assert identity("What is 84 × 2?", "168") == cyclist == identity("What is eighty-four times two?", "168")
    assert identity("how much is forty-seven times five", "235") == identity("What is 47 × 5?", "235")
    assert identity("What is 84 × 2?", "168") != identity("What is 84 + 2?", "86")
    assert identity("What is 8.40 + 8.7?", "17.10") == identity("Calculate 8.4 + 8.7.", "17.1")
