"""Bundled, seeded, deterministic trace generators (pure Python: no torch, no numpy).

Each generator module exposes `generate(seed, size) -> list[dict]` of native trace records.
"""
