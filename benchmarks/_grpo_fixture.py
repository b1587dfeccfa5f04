"""The GRPO benchmark fixture: one starting model that can already answer, and prompts with gold answers.

    FIXTURE/base/...            benchmarks/_fixture.py's random-init GPT-2 + local BPE tokenizer
    FIXTURE/sft/final_model/    the starting model: the base after a short SFT by `tunix-rt train`
                                (so it writes `Answer:` lines, stops at EOS and is sometimes right,
                                which makes the reward curves mean something), with its saved
                                rendering (tunix_rt_render.json)
    FIXTURE/prompts.jsonl       fresh reasoning-mix traces (prompt, final_answer): the GRPO prompt
                                file `tunix-rt train --dataset` reads; none of them was in the SFT data
    FIXTURE/rendered.jsonl      {"id", "prompt", "answer"} per line of prompts.jsonl, the prompt
                                rendered by tunix-rt's own code path (rl.start.resolve_start ->
                                render_settings -> eval.runner.render_for_eval), what TRL is given
    FIXTURE/grpo_fixture.json   sizes

With `--model DIR` the starting model is DIR instead (a save_pretrained directory or a finished SFT
run's final_model); its tokenizer must encode a rendered prompt the same with and without
tunix-rt's BOS rule, since TRL tokenises a text prompt with the tokenizer's defaults (checked here).
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _fixture import FixtureSize, build_fixture
from train_throughput import launch_tunix, tunix_config

GRPO_FIXTURE_VERSION = 1


@dataclass(frozen=True)
class GrpoSize:
    name: str
    base: FixtureSize
    sft_epochs: int
    n_prompts: int


@dataclass
class GrpoFixture:
    path: Path
    model_dir: Path  # the starting model both contenders load
    model_name: str
    params: int
    prompts: Path
    rendered: Path
    n_prompts: int
    render: dict[str, Any]  # the rendering tunix-rt's GRPO recipe asks with (template, system_instruction)
    sft_seconds: float | None  # wall time of the warm-start SFT (None when --model was given)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        out["version"] = GRPO_FIXTURE_VERSION
        return out


def build_grpo_fixture(
    workdir: Path, size: GrpoSize, env: dict[str, str], args: argparse.Namespace, model: str | None = None
) -> GrpoFixture:
    """Build (or reuse, when its grpo_fixture.json matches) the fixture under workdir."""
    tag = f"{size.name}-{'custom' if model else 'sft'}"
    path = Path(workdir) / f"grpo-fixture-{tag}"
    meta_file = path / "grpo_fixture.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if meta.get("version") == GRPO_FIXTURE_VERSION and meta.get("requested") == _requested(size, model):
            return _from_meta(meta)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    base = build_fixture(workdir, size.base)
    if model:
        model_dir, model_name, sft_seconds = Path(model).resolve(), Path(model).name, None
    elif size.sft_epochs == 0:
        model_dir, model_name, sft_seconds = base.model_dir, f"{size.base.name}, random init", None
    else:
        model_dir, sft_seconds = _warm_start(base.model_dir, base.traces, size.sft_epochs, path, env, args)
        model_name = f"{size.base.name} + {size.sft_epochs} SFT epochs"
    fixture = _write_prompts(path, model_dir, model_name, size, size.base.n_traces, sft_seconds)
    meta = fixture.to_dict()
    meta["requested"] = _requested(size, model)
    meta_file.write_text(json.dumps(meta, indent=2))
    return fixture


def _requested(size: GrpoSize, model: str | None) -> dict[str, Any]:
    return {"size": asdict(size), "model": str(Path(model).resolve()) if model else None}


def _from_meta(meta: dict[str, Any]) -> GrpoFixture:
    fields = {k: meta[k] for k in GrpoFixture.__dataclass_fields__}
    for key in ("path", "model_dir", "prompts", "rendered"):
        fields[key] = Path(meta[key])
    return GrpoFixture(**fields)


def _warm_start(
    base_model: Path, traces: Path, epochs: int, path: Path, env: dict[str, str], args: argparse.Namespace
) -> tuple[Path, float]:
    """A few SFT epochs of the random-init base through `tunix-rt train`: a model that answers."""
    config = tunix_config(base_model, "auto", logging_steps=10, max_steps=None, attn=args.attn)
    config["training"]["num_epochs"] = epochs
    no_extra = argparse.Namespace(**{**vars(args), "tunix_set": []})
    (path / "logs").mkdir(exist_ok=True)
    row = launch_tunix("warm-start-sft", config, traces, path, env, no_extra)
    if row["status"] != "ok":
        raise RuntimeError(f"the warm-start SFT failed: {row['reason']}")
    return Path(row["output"]) / "final_model", row["wall_s"]


def _write_prompts(
    path: Path, model_dir: Path, model_name: str, size: GrpoSize, n_sft: int, sft_seconds: float | None
) -> GrpoFixture:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunix_rt.data.loader import load_traces
    from tunix_rt.data.resolver import resolve_dataset
    from tunix_rt.eval.runner import render_for_eval
    from tunix_rt.rl.data import load_prompts
    from tunix_rt.rl.start import resolve_start
    from tunix_rt.train.tokenize import encode_prompt

    # The generator is deterministic: the first n_sft traces are the SFT data, the next ones are new.
    resolved = resolve_dataset(f"reasoning-mix:{n_sft + size.n_prompts}", cache_dir=path.parent / "cache")
    lines = [line for line in resolved.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) != len(load_traces(resolved.path).traces):
        raise RuntimeError(f"{resolved.path}: unreadable lines")
    prompts_file = path / "prompts.jsonl"
    prompts_file.write_text("\n".join(lines[-size.n_prompts :]) + "\n", encoding="utf-8")
    items = load_prompts(str(prompts_file)).items  # tunix-rt's own reader: every gold answer checked

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    settings = resolve_start(str(model_dir), None).render_settings(tokenizer, None)
    rendered = []
    for item in items:
        text = render_for_eval(item.prompt, tokenizer, settings)
        if tokenizer(text).input_ids != encode_prompt(tokenizer, text):
            raise RuntimeError(
                f"{model_dir}: the tokenizer's default encoding of a rendered prompt differs from tunix-rt's "
                "(a BOS rule); TRL would see other prompt ids than tunix-rt"
            )
        rendered.append({"id": item.id, "prompt": text, "answer": item.answer})
    (path / "rendered.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rendered), encoding="utf-8")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    return GrpoFixture(
        path=path, model_dir=model_dir, model_name=model_name, params=params, prompts=prompts_file,
        rendered=path / "rendered.jsonl", n_prompts=len(items), render=settings, sft_seconds=sft_seconds,
    )  # fmt: skip
