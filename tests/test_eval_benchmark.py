"""benchmarks/generate_throughput.py runs (at its --tiny size) and reports identical batched text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "generate_throughput.py"


def test_benchmark_runs_tiny() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["batched_equals_single"] is True
    assert result["ratio"] > 0 and result["batched_tokens_per_sec"] > 0
