"""`tunix-rt doctor`: print the device report (doctor.py builds it), optionally write the env files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tunix_rt.device import doctor
from tunix_rt.device.envfiles import write_environment_files


def doctor_command(args: argparse.Namespace) -> int:
    report = doctor.collect_report(getattr(args, "device", None) or "auto")
    written = []
    if getattr(args, "evidence", None):
        written = write_environment_files(Path(args.evidence), report)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(doctor.render_human(report))
    if written:
        # stderr, so that --json keeps stdout a single JSON object
        print(f"evidence: wrote {', '.join(p.name for p in written)} to {args.evidence}", file=sys.stderr)
    return 0 if report["usable"] else 1
