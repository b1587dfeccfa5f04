"""tunix-rt: train language models to show their work, with an evidence folder per run."""

__version__ = "0.1.0"
