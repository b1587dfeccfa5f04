"""pyproject.toml's version floors: no lower than the first releases with what the code calls."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# What tunix-rt calls -> the first release that has it (read in the released wheels' sources:
# transformers 4.56.2 has only PytorchGELUTanh, 4.57 GELUTanh; dtype= replaced torch_dtype= in 4.56;
# torch.optim.Adafactor arrived in 2.5, `from torch.distributed.fsdp import fully_shard` in 2.6).
FIRST_RELEASE = {
    "torch": {
        "torch.optim.Adafactor (train/optim.py)": (2, 5),
        "torch.distributed.fsdp.fully_shard (train/distributed.py)": (2, 6),
    },
    "transformers": {
        "from_pretrained(dtype=...) (train/model.py, eval/runner.py)": (4, 56),
        "transformers.activations.GELUTanh (train/model.py)": (4, 57),
    },
}


def declared_floor(package: str) -> tuple[int, ...]:
    match = re.search(rf'^\s*"{package}>=([0-9.]+)"', PYPROJECT.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{PYPROJECT}: no '{package}>=' in dependencies"
    return tuple(int(part) for part in match.group(1).split("."))


@pytest.mark.parametrize("package", sorted(FIRST_RELEASE))
def test_declared_floors_cover_the_apis_the_code_uses(package: str) -> None:
    floor = declared_floor(package)
    for api, first in FIRST_RELEASE[package].items():
        assert floor >= first, f"{package}>={'.'.join(map(str, floor))} but {api} needs {first}"


def test_the_listed_apis_exist_in_the_installed_packages() -> None:
    """The table above stays about code that is really called (an API renamed again fails here)."""
    import torch
    import transformers.activations
    from torch.distributed.fsdp import fully_shard  # noqa: F401

    assert hasattr(torch.optim, "Adafactor") and hasattr(transformers.activations, "GELUTanh")


def test_package_data_ships_every_non_python_file_the_package_reads() -> None:
    """The dashboard's templates and static files, bundled eval sets and configs are in the wheel."""
    from fnmatch import fnmatch

    import tomllib

    globs = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["tunix_rt"]
    package = PYPROJECT.parent / "src" / "tunix_rt"
    needed = [package / d for d in ("serve/templates", "serve/static", "data/evalsets", "configs")]
    files = [p.relative_to(package).as_posix() for d in needed for p in d.iterdir() if p.is_file()]
    assert len(files) > 10
    missing = [f for f in files if not any(fnmatch(f, g) for g in globs)]
    assert missing == []
