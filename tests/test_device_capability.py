"""The capability table and the arch-list rules, with no torch involved."""

import re

import pytest

from tunix_rt.device.capability import (
    ARCH_TABLE,
    arch_supported,
    describe_arch_list,
    format_sm,
    lookup,
    parse_capability,
    remedy_for,
)
from tunix_rt.device.fakes import ARCH_LIST_CU126, ARCH_LIST_CU128


def test_every_table_row_is_well_formed_and_sorted():
    caps = [row.capability for row in ARCH_TABLE]
    assert caps == sorted(set(caps))
    for row in ARCH_TABLE:
        major, minor = row.capability
        assert isinstance(major, int) and isinstance(minor, int) and 0 <= minor <= 9
        assert row.architecture and row.examples
        assert re.fullmatch(r"\d+\.\d", row.min_cuda), row
        assert re.fullmatch(r"\d{3}\.\d+(\.\d+)?", row.min_driver), row
        assert re.fullmatch(r"cu1\d\d", row.torch_index), row
        assert row.min_torch is None or re.fullmatch(r"2\.\d+", row.min_torch)


@pytest.mark.parametrize(
    ("cap", "cuda", "driver"),
    [
        ((12, 0), "12.8", "570.26"),
        ((10, 0), "12.8", "570.26"),
        ((9, 0), "11.8", "520.61.05"),
        ((8, 9), "11.8", "520.61.05"),
        ((8, 6), "11.1", "455.23"),
        ((8, 0), "11.0", "450.51.05"),
        ((7, 5), "10.0", "410.48"),
        ((7, 0), "9.0", "384.81"),
        ((6, 1), "8.0", "367.48"),
    ],
)
def test_known_minimums(cap, cuda, driver):
    row = lookup(cap)
    assert (row.min_cuda, row.min_driver) == (cuda, driver)


def test_format_and_parse_round_trip():
    assert format_sm(12, 0) == "sm_120"
    assert format_sm(8, 9) == "sm_89"
    for text, cap in [
        ("sm_120", (12, 0)),
        ("sm_86", (8, 6)),
        ("compute_90", (9, 0)),
        ("12.1", (12, 1)),
        ("sm_90a", (9, 0)),
    ]:
        assert parse_capability(text) == cap
    with pytest.raises(ValueError):
        parse_capability("gfx942")


def test_rtx_5090_is_not_covered_by_a_build_that_stops_at_sm_90():
    ok, reason = arch_supported((12, 0), ARCH_LIST_CU126, name="NVIDIA GeForce RTX 5090")
    assert not ok
    assert reason == ("sm_120 (NVIDIA GeForce RTX 5090) is not in this PyTorch build's arch list sm_50…sm_90")


@pytest.mark.parametrize("cap", [(9, 0), (8, 9), (8, 0), (7, 5)])
def test_older_gpus_are_covered_by_the_same_build(cap):
    ok, reason = arch_supported(cap, ARCH_LIST_CU126)
    assert ok, reason


def test_same_major_lower_minor_sass_is_binary_compatible():
    ok, reason = arch_supported((8, 9), ("sm_80", "sm_86"))
    assert ok and "sm_86" in reason and "binary compatible" in reason
    ok, _ = arch_supported((12, 1), ARCH_LIST_CU128)
    assert ok  # GB10 runs the sm_120 kernels


def test_ptx_only_coverage_is_supported_through_jit():
    ok, reason = arch_supported((12, 0), ("sm_80", "sm_90", "compute_90"))
    assert ok and "compute_90" in reason and "JIT" in reason
    ok, _ = arch_supported((8, 6), ("compute_90",))
    assert not ok  # PTX newer than the device cannot be compiled for it


def test_arch_specific_targets_only_match_exactly():
    assert arch_supported((9, 0), ("sm_90a",))[0]
    assert not arch_supported((10, 0), ("sm_90a",))[0]
    assert not arch_supported((12, 0), ("sm_100a",))[0]


def test_empty_arch_list_says_cpu_build():
    ok, reason = arch_supported((8, 0), ())
    assert not ok and "CPU-only" in reason


def test_describe_arch_list():
    assert describe_arch_list(ARCH_LIST_CU126) == "sm_50…sm_90"
    assert describe_arch_list(("sm_80", "compute_80")) == "sm_80 + PTX compute_80"
    assert describe_arch_list(()) == "(empty)"


def test_remedy_for_blackwell_names_cu128_command_and_driver():
    remedy = remedy_for((12, 0))
    assert "pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128" in remedy
    assert "CUDA 12.8" in remedy and "570.26" in remedy and "PyTorch >= 2.7" in remedy


def test_remedy_for_pascal_stays_on_cu126_and_future_gpus_get_newest():
    assert "whl/cu126" in remedy_for("sm_61")
    assert "newer than tunix-rt's capability table" in remedy_for((13, 0))
