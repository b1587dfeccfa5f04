"""Argument parsing only: each subcommand calls one function, imported when it runs.

Imports stay lazy so `tunix-rt --help` and the `data` commands answer without importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tunix_rt import __version__
from tunix_rt.errors import TunixError

DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (default: auto)"
# Only `train` has a config to take the device from.
TRAIN_DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (default: the config's training.device, else auto)"


def _handler(target: str):
    """Bind 'module:function' lazily so heavy modules load only for the command that needs them."""

    def call(args: argparse.Namespace) -> int:
        module_name, func_name = target.split(":")
        return getattr(importlib.import_module(module_name), func_name)(args)

    return call


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunix-rt",
        description="Train language models on step-by-step reasoning traces; every run leaves evidence.",
    )
    parser.add_argument("--version", action="version", version=f"tunix-rt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # --- data -------------------------------------------------------------------------------
    data = commands.add_parser("data", help="build, validate and inspect reasoning-trace datasets")
    data_cmds = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = data_cmds.add_parser("list", help="bundled dataset and eval-set keys")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_handler("tunix_rt.data.commands:list_command"))

    p = data_cmds.add_parser("build", help="generate a bundled dataset into DIR/dataset.jsonl + manifest")
    p.add_argument("key", help="bundled dataset key (see `tunix-rt data list`)")
    p.add_argument("--output", "-o", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=None, help="generator seed (default: the key's own)")
    p.add_argument("--size", type=int, default=None, help="number of traces (generators that allow it)")
    p.set_defaults(func=_handler("tunix_rt.data.commands:build_command"))

    p = data_cmds.add_parser("validate", help="check JSONL trace files; exit 1 if anything is invalid")
    p.add_argument("files", nargs="+", help="JSONL files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_handler("tunix_rt.data.commands:validate_command"))

    p = data_cmds.add_parser("stats", help="counts, lengths and categories of a dataset")
    p.add_argument("dataset", help="file, directory with dataset.jsonl, or bundled key")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_handler("tunix_rt.data.commands:stats_command"))

    p = data_cmds.add_parser("show", help="print traces readably")
    p.add_argument("dataset", help="file, directory with dataset.jsonl, or bundled key")
    p.add_argument("--n", type=int, default=3, help="how many traces (default 3)")
    p.set_defaults(func=_handler("tunix_rt.data.commands:show_command"))

    # --- doctor -----------------------------------------------------------------------------
    p = commands.add_parser("doctor", help="can this PyTorch drive this machine's GPU? (exit 1 if not)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--evidence", metavar="DIR", default=None, help="also write the environment files here")
    p.set_defaults(func=_handler("tunix_rt.device.command:doctor_command"))

    # --- train ------------------------------------------------------------------------------
    p = commands.add_parser("train", help="supervised fine-tuning on reasoning traces")
    p.add_argument("--config", "-c", required=True, help="YAML config")
    p.add_argument("--dataset", default=None, help="file, directory or bundled key (else data.dataset)")
    p.add_argument("--output", "-o", required=True, help="run directory (the evidence folder)")
    p.add_argument("--device", default=None, help=TRAIN_DEVICE_HELP)
    p.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; do not train")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable), e.g. --set training.max_steps=20",
    )
    p.add_argument("--nproc", type=int, default=None, help="launch N processes (per machine) with torchrun")
    p.add_argument(
        "--nnodes", type=int, default=None, help="machines taking part (run the same command on each)"
    )
    p.add_argument(
        "--rdzv-endpoint",
        default=None,
        metavar="HOST:PORT",
        help="with --nnodes: torchrun's c10d rendezvous, on one of the machines (the same on all)",
    )
    p.add_argument(
        "--rdzv-id", default=None, help="with --nnodes: a job id shared by the machines (default tunix-rt)"
    )
    p.set_defaults(func=_handler("tunix_rt.train.command:train_command"))

    # --- eval -------------------------------------------------------------------------------
    p = commands.add_parser("eval", help="generate answers for an eval set and score them")
    p.add_argument("--model", required=True, help="run directory or model directory")
    p.add_argument("--eval-set", required=True, help="bundled eval-set key or JSONL path")
    p.add_argument("--output", "-o", required=True, help="where predictions and the summary go")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument(
        "--batch-size", type=int, default=None, help="default: the run's training.eval_batch_size, else 32"
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="default: the run's training.eval_max_new_tokens (as its in-training eval), else 256",
    )
    p.add_argument("--limit", type=int, default=None, help="score only the first N items")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="auto: bf16 where the device has native bf16 (twice as fast on such CPUs), else float32; "
        "float32 gives output that does not depend on the batch size",
    )
    p.set_defaults(func=_handler("tunix_rt.eval.command:eval_command"))

    # --- runs / report ----------------------------------------------------------------------
    runs = commands.add_parser("runs", help="leaderboard and comparison of run directories")
    runs_cmds = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    p = runs_cmds.add_parser("list", help="leaderboard of the runs under ROOT")
    p.add_argument(
        "root", nargs="?", default="runs", help="directory holding run directories (default ./runs)"
    )
    p.add_argument(
        "--sort",
        default="primary_score",
        help="column to sort by within each eval set (default primary_score)",
    )
    p.add_argument(
        "--eval-set", default=None, help="list only the runs scored on this eval set (its eval_set column)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_handler("tunix_rt.runs.leaderboard:list_command"))
    p = runs_cmds.add_parser("compare", help="config diff, summary deltas, per-item flips, loss curves")
    p.add_argument("a", help="run directory A")
    p.add_argument("b", help="run directory B")
    p.add_argument(
        "--plot",
        "--output",
        "-o",
        dest="plot",
        default=None,
        help="PNG file, or an existing directory, for both loss curves (default: ./compare_A_vs_B.png)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_handler("tunix_rt.runs.compare:compare_command"))

    p = commands.add_parser(
        "report", help="(re)write a run's README.md and report.html (curves, scorecard, predictions)"
    )
    p.add_argument("run", help="run directory")
    p.set_defaults(func=_handler("tunix_rt.runs.report:report_command"))

    # --- serve ------------------------------------------------------------------------------
    p = commands.add_parser("serve", help="local read-only web dashboard over a folder of run directories")
    p.add_argument(
        "root", nargs="?", default="runs", help="directory holding run directories (default ./runs)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=_handler("tunix_rt.serve.command:serve_command"))

    # --- demo -------------------------------------------------------------------------------
    p = commands.add_parser(
        "demo", help="SmolLM2-135M-Instruct + LoRA end to end: eval before, train, eval after, a table"
    )
    p.add_argument("--output", "-o", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument(
        "--scratch", action="store_true", help="the from-scratch demo instead (bundled config `default`)"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=_handler("tunix_rt.demo:demo_command"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TunixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
