"""Bundled eval sets: format, recomputed answers, regeneration, and no leak into training data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tunix_rt.data.build import effective_params, generate_jsonl, parse_key
from tunix_rt.data.generators import reasoning_mix
from tunix_rt.data.generators.heldout import heldout_jsonl
from tunix_rt.data.registry import DATASETS, EVAL_SETS, bundled_eval_set_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_eval_v1_table import expected_items

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


def _build_prompts(spec: str) -> set[str]:
    """Normalised prompts of the bundled build `spec` ("KEY" or "KEY:SIZE"), made as the resolver makes it."""
    key, size = parse_key(spec)
    dataset = DATASETS[key]
    seed, size = effective_params(dataset, None, size)
    _, traces = generate_jsonl(dataset, seed, size)
    return {norm(t.prompt) for t in traces}


def test_no_eval_prompt_in_any_shipped_training_build():
    specs = _shipped_dataset_specs()
    # The sizes the demo and cpu-reasoner train on: large builds are where leaks used to happen.
    assert {"reasoning-mix:51200", "reasoning-mix:150000", "dev-reasoning-v2"} <= specs
    for spec in sorted(specs | {"reasoning-mix"}):
        training = _build_prompts(spec)
        for key in EVAL_SETS:
            leaked = [i["id"] for i in read(key) if norm(i["prompt"]) in training]
            assert not leaked, f"{key}: prompts also in the {spec} training build: {leaked}"


def test_the_plain_generator_would_leak_at_that_size():
    # Why the training builds exclude eval prompts: the held-out set comes from the same generator.
    plain = {norm(r["prompt"]) for r in reasoning_mix.generate(reasoning_mix.DEFAULT_SEED, 60_000)}
    assert plain & reasoning_mix.eval_set_prompts()
    # ... and a default-size build is the same with or without the exclusion.
    assert reasoning_mix.generate_training() == reasoning_mix.generate()
