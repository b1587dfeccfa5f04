"""The typed training config: canonical keys, the original's aliases, --set overrides, validation.

A YAML file goes through three steps, each with one job:

1. `_normalise` reads the file: every key is filed under the setting it means, whatever its
   spelling (the original's aliases such as `num_steps` for `max_steps`); two spellings of one
   setting with different values are refused naming both; keys that no longer mean anything
   (`model.padding: max_length`) are dropped with a one-line note saying why; unknown keys are
   refused naming the closest valid key.
2. Each `--set KEY=VALUE` (value parsed as YAML) goes through the same step and then replaces that
   setting, whichever spelling the file or the override uses: an override always wins.
3. pydantic validates types and ranges (`extra="forbid"` everywhere, so nothing slips through) and
   reads the aliases, which are declared on the fields themselves (`validation_alias`).

Nothing here imports torch: `--dry-run` and the CLI stay fast.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tunix_rt.errors import ConfigError
from tunix_rt.rl.config import GrpoConfig

BUNDLED_CONFIG_DIR = Path(__file__).parent / "configs"

Dtype = Literal["float32", "bfloat16", "float16", "auto"]
Tracker = Literal["tensorboard", "trackio"]
"""The names training.report_to accepts (train/trackers.py writes them)."""


class _Section(BaseModel):
    # Aliases are AliasChoices on the fields (canonical name first); code sets fields by name.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, validate_by_name=True, validate_by_alias=True
    )


class ModelConfig(_Section):
    model_id: str | None = Field(None, validation_alias=AliasChoices("model_id", "name"))
    """Hub id (gpt2, google/gemma-2-2b, ...), a local save_pretrained directory, a GGUF file
    (path/to/x.gguf, dequantised once into a cache), or a named model a pip package carries
    (smollm2-135m-instruct); ignored for init: scratch. train/sources.py resolves it."""
    revision: str | None = None
    gguf_file: str | None = None
    """With a directory as model_id: the GGUF file inside it to load."""
    init: Literal["pretrained", "scratch"] = "pretrained"
    """`scratch` builds a fresh model from the fields below and trains a tokenizer on the data."""
    architecture: Literal["llama", "gpt2", "qwen2"] = "llama"
    hidden_size: int = Field(256, ge=16)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int | None = Field(None, ge=16)
    vocab_size: int = Field(1024, ge=64)
    """Size of the BPE tokenizer trained for a scratch model (digits are always split)."""
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    """auto: eager on CPU (faster than sdpa's CPU kernels for short sequences, measured in
    docs/performance.md), sdpa on GPUs. flash_attention_2: CUDA only, needs the flash-attn package;
    packed rows then run as variable-length attention (docs/gpu.md)."""
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.init == "pretrained" and not self.model_id:
            raise ValueError("model.model_id is required unless model.init is 'scratch'")
        if self.init == "scratch" and self.hidden_size % self.num_heads:
            raise ValueError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by model.num_heads ({self.num_heads})"
            )
        return self


class TrainingConfig(_Section):
    device: str = "auto"
    dtype: Dtype = "auto"
    batch_size: int = Field(8, ge=1, validation_alias=AliasChoices("batch_size", "per_device_batch_size"))
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_seq_length: int = Field(512, ge=8)
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, validation_alias=AliasChoices("max_steps", "num_steps"))
    """Wins over num_epochs when set."""
    learning_rate: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    max_grad_norm: float | None = Field(1.0, gt=0)
    logging_steps: int = Field(10, ge=1)
    save_every_steps: int | None = Field(
        None, ge=1, validation_alias=AliasChoices("save_every_steps", "save_steps")
    )
    """None: one checkpoint at the end (plus one on Ctrl-C)."""
    save_total_limit: int | None = Field(2, ge=1)
    seed: int = 42
    eval_set: str | None = None
    """Bundled eval-set key or JSONL path, evaluated into RUN/eval/ after training."""
    eval_batch_size: int = Field(64, ge=1)
    eval_max_new_tokens: int = Field(160, ge=1)
    eval_before: bool = False
    """Also evaluate the model before training (same eval set, rendering and generation settings):
    the manifest, metrics and README then show before, after and the lift."""
    eval_steps: int | None = Field(None, ge=1)
    """Validation loss on data.validation every N steps (and at the last step) into metrics.jsonl;
    the best checkpoint by it is recorded in the manifest. None: at the last step only."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in backward instead of storing them (less memory, ~30% more compute)."""
    compile: bool = False
    """torch.compile the model (opt-in; its warm-up is reported apart from the loop time)."""
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    """Multi-process only: auto = DDP when launched by torchrun; fsdp shards with FSDP2."""
    report_to: list[Tracker] = Field(default_factory=list)
    """Also write every metrics.jsonl line to these trackers (train/trackers.py), under the run
    directory: tensorboard -> RUN/tensorboard/, trackio -> RUN/trackio/. Each is an optional extra;
    a missing package is refused before training. Empty or absent: metrics.jsonl only."""

    @field_validator("report_to", mode="before")
    @classmethod
    def _tracker_list(cls, value: Any) -> Any:
        # `report_to: tensorboard` means the one-item list; a name given twice counts once.
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        return list(dict.fromkeys(value)) if isinstance(value, list) else value


class DataConfig(_Section):
    dataset: str | None = None
    """File, directory with dataset.jsonl, or bundled key; --dataset wins."""
    format: Literal["tunix_sft", "auto"] = "tunix_sft"
    """The original's only value; every accepted input shape is detected per line anyway."""
    shuffle: bool = True
    shuffle_seed: int | None = None
    """None: training.seed."""
    skip_invalid: bool = False
    """Skip invalid lines (counted in the manifest) instead of refusing the dataset."""
    packing: bool = True
    """Pack a micro-batch's examples into shared rows, each example with its own position ids and
    attention (no padding to speak of, same loss as padded rows). Used only when the model's
    attention honours per-example position ids, checked at start; otherwise rows are padded and
    the log and manifest (plan.layout) say why."""
    validation: float | str | None = None
    """Validation data, held out from training: a fraction in (0, 0.5] of the training examples
    (a seeded random split), or a dataset spec (file, directory or bundled key) used whole.
    None: no validation loss."""
    bucket_window: int = Field(1, ge=1)
    """1 = random batches. N > 1 sorts examples by length within windows of N batches: batches of
    similar lengths (less padding when packing is off) that are far from random, which costs loss
    in short runs (docs/performance.md measures the trade-off)."""


class OutputConfig(_Section):
    # The original's output section; names in the run directory are fixed so any run can be read
    # by the same tools. These keys are accepted and explained in notes, see _OUTPUT_NOTES.
    checkpoint_dir: str | None = None
    save_metrics: bool = True
    metrics_file: str = "metrics.jsonl"
    save_manifest: bool = True
    manifest_file: str = "run_manifest.json"


class LoraConfig(_Section):
    """The `lora:` section: present means LoRA through peft on a frozen base; absent, full fine-tuning."""

    model_config = ConfigDict(frozen=True)

    r: int = Field(16, ge=1)
    """Rank of the update matrices."""
    alpha: float = Field(32.0, gt=0)
    """Scale: the update is multiplied by alpha / r."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    """Module names (or name suffixes) to adapt; all-linear: every Linear/Conv1D except the LM head."""
    modules_to_save: list[str] = Field(default_factory=list)
    """Modules trained in full beside the adapters (e.g. a classifier head), saved with the adapter."""

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not value:
            raise ValueError("lora.target_modules must name at least one module (or be all-linear)")
        return value


class Config(_Section):
    model: ModelConfig
    lora: LoraConfig | None = None
    """Absent: full fine-tuning."""
    training: TrainingConfig = TrainingConfig()
    data: DataConfig = DataConfig()
    output: OutputConfig = OutputConfig()
    method: Literal["sft", "grpo"] = "sft"
    """The recipe `tunix-rt train` runs: sft (recipes/sft.py) or grpo (recipes/grpo.py)."""
    grpo: GrpoConfig | None = None
    """The GRPO knobs (rl/config.py); method grpo without the section takes every default."""
    system_instruction: str | None = None
    provenance: dict[str, Any] = {}
    """Free-form `*_provenance` sections of the original configs, kept for the manifest."""

    @model_validator(mode="after")
    def _check_lora(self) -> Config:
        if self.lora is None:
            return self
        if self.model.init == "scratch":
            raise ValueError(
                "lora: needs a pretrained model (model.init: pretrained); a scratch base is random"
            )
        if self.training.strategy == "fsdp":
            raise ValueError(
                "lora: not supported with training.strategy fsdp (use ddp: the adapters are small)"
            )
        return self

    @model_validator(mode="after")
    def _check_validation(self) -> Config:
        split = self.data.validation
        if isinstance(split, float) and not 0 < split <= 0.5:
            raise ValueError(f"data.validation: a fraction must be in (0, 0.5], got {split}")
        return self

    @model_validator(mode="after")
    def _method_sections(self) -> Config:
        if self.method == "sft" and self.grpo is not None:
            raise ValueError(
                "a grpo: section is given but method is sft; set method: grpo to train with GRPO"
            )
        if self.method == "grpo" and self.grpo is None:
            self.grpo = GrpoConfig()
        return self

    def to_dict(self) -> dict[str, Any]:
        # An SFT config resolves to the same dict (and sha256) as before GRPO and LoRA existed, so
        # runs started then still resume: `method: sft`, the absent grpo and lora sections are left out.
        # Likewise an empty training.report_to (the key came later) is left out.
        exclude: dict[str, Any] = {"method": True, "grpo": True} if self.method == "sft" else {}
        if self.lora is None:
            exclude["lora"] = True
        if not self.training.report_to:
            exclude["training"] = {"report_to": True}
        return self.model_dump(mode="json", exclude=exclude)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


# --- aliases and retired keys ----------------------------------------------------------------

# The original's max_length sat in the model section; a pydantic alias lives inside one section, so
# this alias, which moves a key to another section, is applied by `_place`.
MOVED_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("model", "max_length"): ("training", "max_seq_length"),
}

# Keys accepted for compatibility that no longer mean anything, and why.
RETIRED: dict[tuple[str, str], str] = {
    ("model", "padding"): (
        "ignored: batches are packed (or padded to their longest example), never padded to max_length"
    ),
    ("model", "truncation"): (
        "ignored: examples longer than max_seq_length are counted and left out, never cut mid-answer"
    ),
}

_OUTPUT_NOTES = {
    "checkpoint_dir": "checkpoints always go to RUN/checkpoints/ and the final model to RUN/final_model/",
    "save_metrics": "metrics.jsonl is always written: it is part of the evidence",
    "save_manifest": "run_manifest.json is always written: it is part of the evidence",
    "metrics_file": "the metrics file is always RUN/metrics.jsonl",
    "manifest_file": "the manifest is always RUN/run_manifest.json",
}

SECTIONS: dict[str, type[BaseModel]] = {
    "model": ModelConfig,
    "training": TrainingConfig,
    "data": DataConfig,
    "output": OutputConfig,
    "lora": LoraConfig,
    "grpo": GrpoConfig,
}
TOP_LEVEL_SCALARS = ("system_instruction", "method")
# Sections whose absence means something (no `lora:` = full fine-tuning; the grpo: section belongs to
# method: grpo alone): filled only when given.
OPTIONAL_SECTIONS = frozenset({"lora", "grpo"})


def _field_aliases(section: str, cls: type[_Section]) -> dict[tuple[str, str], tuple[str, str]]:
    """(section, alias) -> (section, field), read from the fields' own `validation_alias`."""
    table: dict[tuple[str, str], tuple[str, str]] = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            if isinstance(choice, str) and choice != name:
                table[(section, choice)] = (section, name)
    return table


# (section, alias) -> (section, canonical key): every alias the config accepts.
ALIASES: dict[tuple[str, str], tuple[str, str]] = {
    **{alias: key for name, cls in SECTIONS.items() for alias, key in _field_aliases(name, cls).items()},
    **MOVED_KEYS,
}

# Changing these between a checkpoint and --resume cannot change the steps already taken.
RESUME_SAFE_KEYS = frozenset(
    {
        "training.max_steps",
        "training.num_epochs",
        "training.logging_steps",
        "training.save_every_steps",
        "training.save_total_limit",
        "training.eval_set",
        "training.eval_batch_size",
        "training.eval_max_new_tokens",
        "training.eval_before",
        "training.device",
        "training.report_to",  # where copies of the metrics go, not what is trained
        "data.dataset",  # the dataset's sha256 is compared separately
        # How the effective batch is split (to resume on another number of processes): the
        # checkpoint refuses a resume whose effective batch (batch x accumulation x processes) differs.
        "training.batch_size",
        "training.gradient_accumulation_steps",
        # DDP, FSDP and one process train the same steps (tests/test_distributed.py); a sharded
        # FSDP checkpoint is resharded onto the new layout, so 2 FSDP ranks can continue on 1 process.
        "training.strategy",
        # Layout only: packed and padded rows compute the same loss (tests/test_train_loss.py), and a
        # run started before packing existed has no such key.
        "data.packing",
        # Memory only: GRPO's update split into micro-batches is the same update (tests/test_rl_step.py;
        # with dropout, the same in distribution: the masks are drawn per micro-batch).
        "grpo.micro_batch_size",
        "provenance",
    }
)


def valid_keys() -> list[str]:
    keys = [f"{name}.{field}" for name, cls in SECTIONS.items() for field in cls.model_fields]
    keys += [f"{s}.{a}" for s, a in ALIASES] + [f"{s}.{k}" for s, k in RETIRED]
    return sorted(keys + list(TOP_LEVEL_SCALARS) + list(SECTIONS))


def _unknown_key_error(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid_keys(), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(valid_keys())}"
    return ConfigError(f"{where}: unknown key '{key}'{hint}")


@dataclass(frozen=True)
class _Setting:
    """One setting as read: its spelling and source (for messages), the key pydantic is given, its value."""

    spelling: str  # dotted, as written: training.num_steps
    key: str  # the written key for a same-section alias (pydantic reads it), else the canonical one
    value: Any
    where: str  # the file, or the --set that gave it


def _normalise(raw: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """Settings filed by canonical section and key, plus notes for what was renamed or ignored.

    Each section maps canonical key -> _Setting; top-level scalars and `provenance` map to values.
    """
    notes: list[str] = []
    out: dict[str, Any] = {name: {} for name in SECTIONS if name not in OPTIONAL_SECTIONS}
    provenance: dict[str, Any] = {}
    for top, value in raw.items():
        if top in TOP_LEVEL_SCALARS:
            out[top] = value
        elif top == "provenance" or top.endswith("_provenance"):
            provenance[top] = value
        elif top in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{top}' must be a mapping, got {type(value).__name__}")
            out.setdefault(top, {})
            for key, item in value.items():
                _place(out, top, str(key), item, where, notes)
        else:
            raise _unknown_key_error(str(top), where)
    if provenance:
        out["provenance"] = provenance
    return out, notes


def _place(out: dict[str, Any], section: str, key: str, value: Any, where: str, notes: list[str]) -> None:
    if (section, key) in RETIRED:
        notes.append(f"note: {section}.{key} = {value!r} {RETIRED[(section, key)]}")
        return
    if section == "output" and key in _OUTPUT_NOTES:
        notes.append(f"note: output.{key} accepted; {_OUTPUT_NOTES[key]}")
    target_section, target_key = ALIASES.get((section, key), (section, key))
    if target_key not in SECTIONS[target_section].model_fields:
        raise _unknown_key_error(f"{section}.{key}", where)
    if (section, key) in ALIASES:
        notes.append(f"note: {section}.{key} is read as {target_section}.{target_key}")
    existing = out[target_section].get(target_key)
    if existing is not None and existing.value != value:
        raise ConfigError(
            f"{where}: {section}.{key} = {value!r} conflicts with {existing.spelling} = {existing.value!r} "
            f"(both spell {target_section}.{target_key}; keep one)"
        )
    if existing is None:  # equal values under two spellings (the original's smoke_tiny.yaml): one is kept
        given = target_key if (section, key) in MOVED_KEYS else key
        out[target_section][target_key] = _Setting(f"{section}.{key}", given, value, where)


def parse_override(text: str) -> tuple[list[str], Any]:
    """'training.max_steps=20' -> (['training', 'max_steps'], 20); values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE")
    key, _, value = text.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts or len(parts) > 2:
        raise ConfigError(f"--set {text!r}: the key must be SECTION.KEY (or a top-level key)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML: {exc}") from exc
    return parts, parsed


def _apply_override(settings: dict[str, Any], text: str) -> list[str]:
    """One `--set` replaces the setting it names, whichever spelling the file or the override uses."""
    parts, value = parse_override(text)
    if len(parts) == 2 and parts[0] in TOP_LEVEL_SCALARS:
        raise ConfigError(f"--set {text!r}: '{parts[0]}' is not a section")
    tree = {parts[0]: value} if len(parts) == 1 else {parts[0]: {parts[1]: value}}
    given, notes = _normalise(tree, f"--set {text!r}")
    for top, item in given.items():
        if top in SECTIONS:
            settings.setdefault(top, {}).update(item)
        elif top == "provenance":  # --set m34_provenance.trial_id=7 edits one entry of that section
            old = settings.setdefault("provenance", {})
            old.update({k: {**old[k], **v} if _both_dicts(old.get(k), v) else v for k, v in item.items()})
        else:
            settings[top] = item
    return notes


def _both_dicts(a: Any, b: Any) -> bool:
    return isinstance(a, dict) and isinstance(b, dict)


def _validation_input(settings: dict[str, Any]) -> dict[str, Any]:
    """The mapping pydantic validates: each section's settings under the key pydantic is to read."""
    return {
        top: {s.key: s.value for s in item.values()} if top in SECTIONS else item
        for top, item in settings.items()
    }


def resolve_config_path(spec: str | Path) -> Path:
    """A path, or the name of a config bundled with the package (e.g. `default`)."""
    path = Path(spec)
    if path.is_file():
        return path
    bundled = BUNDLED_CONFIG_DIR / f"{Path(str(spec)).stem}.yaml"
    if not path.suffix and bundled.is_file():
        return bundled
    looked = [str(path.resolve())] + ([str(bundled)] if not path.suffix else [])
    raise ConfigError(f"config {spec!r} not found; looked in: {', '.join(looked)}")


def load_config(
    spec: str | Path | dict[str, Any], overrides: list[str] | None = None
) -> tuple[Config, list[str]]:
    """Read, override, normalise and validate; returns the config and its notes."""
    if isinstance(spec, dict):
        raw, where = json.loads(json.dumps(spec)), "config"
    else:
        path = resolve_config_path(spec)
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of sections")
    settings, notes = _normalise(raw, where)
    for text in overrides or []:
        notes += _apply_override(settings, text)
    try:
        config = Config.model_validate(_validation_input(settings))
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, where, settings)) from None
    return config, notes


def _format_validation_error(exc: ValidationError, where: str, settings: dict[str, Any]) -> str:
    # A bad value given by --set is reported as coming from that --set, not from the file.
    sources = {(top, s.key): s.where for top in SECTIONS for s in settings.get(top, {}).values()}
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        source = sources.get(tuple(str(p) for p in err["loc"][:2]), where)
        lines.append(f"{source}: {loc}: {err['msg']}{value}")
    return "\n".join(lines)


def diff_configs(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two resolved configs."""
    flat_old, flat_new = flatten(old), flatten(new)
    keys = sorted(set(flat_old) | set(flat_new))
    return {k: (flat_old.get(k), flat_new.get(k)) for k in keys if flat_old.get(k) != flat_new.get(k)}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and key != "provenance":
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat
