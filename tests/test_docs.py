"""The docs say what the code does: CLI options, where the manifest keeps a figure, stated timings."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tunix_rt.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def _cli_row(command: str) -> str:
    rows = [line for line in README.splitlines() if line.startswith(f"| `tunix-rt {command} ")]
    assert len(rows) == 1, f"README.md: expected one CLI-table row for `tunix-rt {command}`"
    return rows[0]


@pytest.mark.parametrize("command", ["train", "eval", "doctor", "demo"])
def test_the_readme_cli_table_lists_every_option(command: str) -> None:
    row = _cli_row(command)
    for action in _subparser(command)._actions:
        long = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        if long:
            assert any(o in row for o in long), f"README.md CLI table: `tunix-rt {command}` lacks {long[0]}"


def test_device_help_names_each_commands_real_default() -> None:
    def device_help(command: str) -> str:
        return next(a.help for a in _subparser(command)._actions if "--device" in a.option_strings)

    assert "training.device" in device_help("train")
    for command in ("eval", "doctor", "demo"):  # no config there: the default is auto
        assert device_help(command).endswith("(default: auto)"), command


def test_the_readme_puts_mfu_where_the_manifest_has_it() -> None:
    loop_source = (ROOT / "src/tunix_rt/recipes/sft.py").read_text(encoding="utf-8")
    moved = re.search(r"loop_detail = \{k: summary\.pop\(k\) for k in \(([^)]*)\)\}", loop_source)
    assert moved and '"mfu"' in moved.group(1), (
        "recipes/sft.py no longer writes mfu under the manifest's `loop`"
    )
    row = next(line for line in README.splitlines() if line.startswith("| `run_manifest.json` |"))
    summary = re.search(r"summary \(([^)]*)\)", row)
    loop = re.search(r"loop \(([^)]*)\)", row)
    assert summary and "MFU" not in summary.group(1)
    assert loop and "MFU" in loop.group(1)


def test_the_default_config_states_the_cpu_reasoner_time_the_readme_measured() -> None:
    comment = (ROOT / "src/tunix_rt/configs/default.yaml").read_text(encoding="utf-8")
    stated = re.search(r"cpu-scratch\.yaml is the same recipe given about (\d+) minutes", comment)
    measured = re.search(r"(\d+) min (\d+) s whole command", README)
    assert stated and measured, "default.yaml's comment or README's cpu-reasoner timing changed shape"
    minutes = int(measured.group(1)) + int(measured.group(2)) / 60
    assert abs(int(stated.group(1)) - minutes) <= 1, (stated.group(0), measured.group(0))
