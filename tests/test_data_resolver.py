"""resolve_dataset: a file, a directory, a bundled key (cached, atomic), and a miss."""

from __future__ import annotations

import json

import pytest

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
