"""resolve_dataset: a file, a directory, a bundled key (cached, atomic), and a miss."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import pytest

from tunix_rt.data import build
from tunix_rt.data.build import generator_identity
from tunix_rt.data.registry import DATASETS
from tunix_rt.data.resolver import cache_subdir, resolve_dataset
from tunix_rt.errors import DataError

LINE = (
    json.dumps({"prompt": "Q", "steps": [{"i": 0, "type": "t", "content": "c"}], "final_answer": "a"}) + "\n"
)


def test_file_and_directory(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(LINE)
    assert resolve_dataset(str(path)).path == path
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "dataset.jsonl").write_text(LINE)
    resolved = resolve_dataset(str(tmp_path / "d"))
    assert resolved.path == tmp_path / "d" / "dataset.jsonl" and resolved.key is None and not resolved.built


def test_directory_without_dataset(tmp_path):
    with pytest.raises(DataError, match=r"has no dataset\.jsonl"):
        resolve_dataset(str(tmp_path))


def test_key_builds_once_into_cache(tmp_path):
    first = resolve_dataset("reasoning-mix:200", cache_dir=tmp_path)
    assert first.built and first.key == "reasoning-mix"
    assert first.path.parent.name == cache_subdir("reasoning-mix", 1234, 200)
    assert len(first.path.read_text().splitlines()) == 200
    second = resolve_dataset("reasoning-mix:200", cache_dir=tmp_path)
    assert not second.built and second.path == first.path
    leftovers = [p for p in first.path.parent.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_key_uses_env_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNIX_RT_CACHE", str(tmp_path / "env"))
    resolved = resolve_dataset("dev-reasoning-v2")
    assert resolved.path.is_relative_to(tmp_path / "env")


def test_half_built_cache_dir_is_replaced(tmp_path):
    target = tmp_path / "datasets" / cache_subdir("reasoning-mix", 1234, 50)
    target.mkdir(parents=True)
    (target / "dataset.jsonl").write_text("partial")  # no manifest: an interrupted older build
    resolved = resolve_dataset("reasoning-mix:50", cache_dir=tmp_path)
    assert resolved.built and len(resolved.path.read_text().splitlines()) == 50


def test_miss_lists_every_place(tmp_path):
    with pytest.raises(DataError) as info:
        resolve_dataset("no-such-thing", cache_dir=tmp_path)
    text = str(info.value)
    assert "a file:" in text and "a directory holding dataset.jsonl" in text and "a bundled key" in text
    assert "dev-reasoning-v2" in text and "reasoning-mix" in text


@pytest.mark.parametrize("spec", ["reasoning-mix:abc", "reasoning-mix:0", "dev-reasoning-v2:10"])
def test_bad_sizes(spec, tmp_path):
    with pytest.raises(DataError):
        resolve_dataset(spec, cache_dir=tmp_path)


def _cached(tmp_path, spec="dev-reasoning-v2"):
    first = resolve_dataset(spec, cache_dir=tmp_path)
    assert first.built
    return first, first.path.read_bytes()


def _rebuilt(tmp_path, caplog, original: bytes, spec="dev-reasoning-v2") -> str:
    with caplog.at_level(logging.WARNING, logger="tunix_rt.data.resolver"):
        again = resolve_dataset(spec, cache_dir=tmp_path)
    assert again.built and again.path.read_bytes() == original
    assert [p.name for p in again.path.parent.parent.iterdir()] == [
        again.path.parent.name
    ]  # nothing left aside
    return caplog.text


def test_sound_cache_hit_is_used_without_a_warning(tmp_path, caplog):
    _cached(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tunix_rt.data.resolver"):
        assert not resolve_dataset("dev-reasoning-v2", cache_dir=tmp_path).built
    assert caplog.text == ""


def test_tampered_cache_is_rebuilt(tmp_path, caplog):
    first, original = _cached(tmp_path)
    first.path.write_bytes(original.replace(b'"final_answer": "', b'"final_answer": "9', 1))
    text = _rebuilt(tmp_path, caplog, original)
    assert "rebuilding" in text and "does not match the sha256" in text and str(first.path.parent) in text


def test_cache_from_other_generator_code_is_rebuilt(tmp_path, caplog):
    first, original = _cached(tmp_path)
    manifest_path = first.path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["generator_identity"] == generator_identity(DATASETS["dev-reasoning-v2"])
    manifest["generator_identity"] = "0" * 64  # as a build by an earlier edit of the generator records
    manifest_path.write_text(json.dumps(manifest))
    text = _rebuilt(tmp_path, caplog, original)
    assert "made by other generator code" in text


def test_unreadable_manifest_is_rebuilt(tmp_path, caplog):
    first, original = _cached(tmp_path)
    (first.path.parent / "manifest.json").write_text("{not json")
    assert "manifest.json is unreadable" in _rebuilt(tmp_path, caplog, original)


def test_identity_changes_when_generator_code_changes(tmp_path, monkeypatch):
    spec = DATASETS["reasoning-mix"]
    before = generator_identity(spec)
    copy = tmp_path / "data"
    shutil.copytree(build.DATA_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(build, "DATA_DIR", copy)
    assert generator_identity(spec) == before  # the same code: the same identity
    with (copy / "generators" / "mix_word.py").open("a") as handle:
        handle.write("\n# an edit\n")
    edited = generator_identity(spec)
    assert edited != before
    plain = DATASETS["dev-reasoning-v2"]
    plain_identity = generator_identity(plain)
    (copy / "evalsets" / "reasoning-mix-heldout.jsonl").write_text("")  # the exclusions decide bytes too
    assert generator_identity(spec) not in {before, edited}
    # A dataset that leaves no eval items out does not depend on the eval sets.
    assert generator_identity(plain) == plain_identity
    assert generator_identity(dataclasses.replace(spec, version="9.9")) != generator_identity(spec)
