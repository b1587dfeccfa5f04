"""Loss curves as PNG, with the Agg backend (no display needed) and an atomic rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def plot_loss_curves(
    series: dict[str, tuple[list[float], list[float]]], path: Path, title: str
) -> Path | None:
    """One line per label (steps, losses); None when no series has a point (nothing is written)."""
    series = {label: xy for label, xy in series.items() if xy[0]}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        for label, (steps, losses) in series.items():
            ax.plot(steps, losses, label=label, linewidth=1.5, marker="." if len(steps) < 30 else None)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.png")
        os.close(fd)
        try:
            fig.savefig(tmp, format="png")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        plt.close(fig)
    return path
