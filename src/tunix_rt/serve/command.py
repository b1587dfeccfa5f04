"""`tunix-rt serve [ROOT]`: start the dashboard with uvicorn (127.0.0.1 unless --host says otherwise)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tunix_rt.errors import RunDirError


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from tunix_rt.serve.app import create_app

    root = Path(args.root)
    if not root.is_dir():
        raise RunDirError(f"{root}: no such directory (serve looks for runs in ROOT/*/ and ROOT/*/*/)")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this port can read {root.resolve()}")
    print(f"tunix-rt serve: {root.resolve()} at http://{args.host}:{args.port}/ (read-only; Ctrl-C stops)")
    uvicorn.run(create_app(root), host=args.host, port=args.port, log_level="warning")
    return 0
