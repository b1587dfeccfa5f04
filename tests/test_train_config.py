"""The typed config: canonical keys, the original's aliases, overrides, refusals with hints."""

from __future__ import annotations

import pytest
import yaml

from helpers_train import REFERENCE, write_traces
from tunix_rt.config import ALIASES, diff_configs, load_config, valid_keys
from tunix_rt.errors import ConfigError

BASE = {"model": {"model_id": "gpt2"}}


def test_aliases_map_to_canonical_keys_with_notes() -> None:
    config, notes = load_config(
        {
            "model": {"name": "gpt2", "max_length": 256, "padding": "max_length"},
            "training": {"per_device_batch_size": 3, "num_steps": 7, "save_steps": 5},
        }
    )
    assert config.model.model_id == "gpt2"
    assert config.training.max_seq_length == 256
    assert (config.training.batch_size, config.training.max_steps, config.training.save_every_steps) == (
        3,
        7,
        5,
    )
    assert any("model.padding" in n and "ignored" in n for n in notes)
    assert any("model.name is read as model.model_id" in n for n in notes)


def test_misspelt_key_is_refused_naming_the_closest_valid_key() -> None:
    with pytest.raises(ConfigError, match=r"training\.learnig_rate.*did you mean 'training\.learning_rate'"):
        load_config({**BASE, "training": {"learnig_rate": 1e-4}})
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        load_config({"modle": {"model_id": "gpt2"}})


def test_wrong_type_names_the_field_and_value() -> None:
    with pytest.raises(ConfigError, match=r"training\.batch_size.*'abc'"):
        load_config({**BASE, "training": {"batch_size": "abc"}})
    with pytest.raises(ConfigError, match=r"training\.lr_scheduler"):
        load_config({**BASE, "training": {"lr_scheduler": "exponential"}})


def test_conflicting_alias_and_canonical_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="conflicts"):
        load_config({**BASE, "training": {"batch_size": 4, "per_device_batch_size": 2}})
    # The original's smoke_tiny.yaml sets both to the same value: accepted.
    config, _ = load_config({**BASE, "training": {"batch_size": 2, "per_device_batch_size": 2}})
    assert config.training.batch_size == 2


def test_overrides_are_parsed_as_yaml_and_go_through_aliases() -> None:
    config, _ = load_config(
        BASE, ["training.num_steps=20", "training.learning_rate=1e-4", "system_instruction=Be brief."]
    )
    assert config.training.max_steps == 20
    assert config.training.learning_rate == pytest.approx(1e-4)
    assert config.system_instruction == "Be brief."
    with pytest.raises(ConfigError, match=r"SECTION\.KEY=VALUE"):
        load_config(BASE, ["training.max_steps"])
    with pytest.raises(ConfigError, match="did you mean"):
        load_config(BASE, ["training.max_step=3"])


def test_pretrained_needs_a_model_id_and_scratch_checks_its_shape() -> None:
    with pytest.raises(ConfigError, match=r"model_id is required"):
        load_config({"model": {}})
    with pytest.raises(ConfigError, match="divisible"):
        load_config({"model": {"init": "scratch", "hidden_size": 30, "num_heads": 4}})


def test_yaml_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_diff_configs_lists_changed_dotted_keys() -> None:
    a, _ = load_config(BASE)
    b, _ = load_config(BASE, ["training.learning_rate=0.1"])
    assert set(diff_configs(a.to_dict(), b.to_dict())) == {"training.learning_rate"}


@pytest.mark.skipif(not (REFERENCE / "configs").is_dir(), reason="shared/reference not beside the checkout")
@pytest.mark.parametrize("name", sorted(p.name for p in (REFERENCE / "configs").glob("*.yaml")))
def test_every_reference_config_loads(name: str) -> None:
    config, _ = load_config(REFERENCE / "configs" / name)
    assert config.model.model_id


# --- --set against aliases (issue 13 §3) ------------------------------------------------------

REFERENCE_CONFIGS = sorted((REFERENCE / "configs").glob("*.yaml")) if (REFERENCE / "configs").is_dir() else []
# A valid value for each canonical key an alias spells, different from every reference file's.
OVERRIDE_VALUES = {
    "model.model_id": "distilgpt2-override",
    "training.max_seq_length": 96,
    "training.batch_size": 3,
    "training.max_steps": 20,
    "training.save_every_steps": 7,
}


def _spellings_in(path) -> list[tuple[str, str]]:
    """(alias, canonical) for every alias-table setting the file sets, under either spelling."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = []
    for (section, alias), (target_section, target_key) in ALIASES.items():
        if alias in (raw.get(section) or {}) or target_key in (raw.get(target_section) or {}):
            found.append((f"{section}.{alias}", f"{target_section}.{target_key}"))
    return found


ALIAS_CASES = [
    (path, alias, canonical) for path in REFERENCE_CONFIGS for alias, canonical in _spellings_in(path)
]


def _value(config, dotted: str):
    section, key = dotted.split(".")
    return getattr(getattr(config, section), key)


@pytest.mark.skipif(not REFERENCE_CONFIGS, reason="shared/reference not beside the checkout")
def test_the_reference_configs_use_every_alias() -> None:
    used = {
        alias
        for path in REFERENCE_CONFIGS
        for alias, _ in _spellings_in(path)
        if alias.split(".")[1] in (yaml.safe_load(path.read_text()).get(alias.split(".")[0]) or {})
    }
    assert used == {f"{s}.{k}" for s, k in ALIASES}
    assert set(OVERRIDE_VALUES) == {f"{s}.{k}" for s, k in ALIASES.values()}


@pytest.mark.skipif(not ALIAS_CASES, reason="shared/reference not beside the checkout")
@pytest.mark.parametrize(
    ("path", "alias", "canonical"), ALIAS_CASES, ids=[f"{p.stem}:{a}" for p, a, _ in ALIAS_CASES]
)
@pytest.mark.parametrize("use_alias", [False, True], ids=["set-canonical", "set-alias"])
def test_set_wins_over_the_file_whatever_either_spelling(path, alias, canonical, use_alias) -> None:
    value = OVERRIDE_VALUES[canonical]
    config, _ = load_config(path, [f"{alias if use_alias else canonical}={value}"])
    assert _value(config, canonical) == value
    # Nothing else moved: the same file without the override differs in this one key only.
    plain, _ = load_config(path)
    assert set(diff_configs(plain.to_dict(), config.to_dict())) == {canonical}


def test_the_issue_command_overrides_num_steps(tmp_path, capsys, monkeypatch) -> None:
    if not (REFERENCE / "configs" / "submission_gemma2_2b.yaml").is_file():
        pytest.skip("shared/reference not beside the checkout")
    from tunix_rt.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(
        [
            "train",
            "--config",
            str(REFERENCE / "configs" / "submission_gemma2_2b.yaml"),
            "--set",
            "training.max_steps=20",
            "--dataset",
            str(write_traces(tmp_path / "d.jsonl", n=8)),
            "--output",
            str(tmp_path / "run"),
            "--dry-run",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "steps: 20 " in captured.out


def test_two_spellings_in_one_file_conflict_naming_both_and_the_file(tmp_path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("model:\n  name: gpt2\n  max_length: 128\ntraining:\n  max_seq_length: 256\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "model.max_length = 128" in message
    assert "training.max_seq_length = 256" in message
    # The file stays ambiguous whatever --set says about the setting.
    with pytest.raises(ConfigError, match="conflicts"):
        load_config(path, ["training.max_seq_length=64"])
    # Two spellings given by one --set mapping conflict the same way, naming the --set.
    with pytest.raises(
        ConfigError, match=r"--set .*training\.num_steps = 3 conflicts with training\.max_steps = 4"
    ):
        load_config(BASE, ["training={max_steps: 4, num_steps: 3}"])


def test_later_override_wins_and_bad_override_values_name_the_set() -> None:
    config, _ = load_config(BASE, ["training.num_steps=5", "training.max_steps=9"])
    assert config.training.max_steps == 9
    with pytest.raises(
        ConfigError, match=r"^--set 'training\.per_device_batch_size=abc': training\.per_device_batch_size"
    ):
        load_config(BASE, ["training.per_device_batch_size=abc"])


def test_pydantic_reads_the_aliases_declared_on_the_fields() -> None:
    from tunix_rt.config import ModelConfig, TrainingConfig

    assert TrainingConfig.model_validate({"num_steps": 3, "per_device_batch_size": 2}).max_steps == 3
    assert ModelConfig.model_validate({"name": "gpt2"}).model_id == "gpt2"
    assert TrainingConfig(max_steps=4).max_steps == 4  # code keeps using the field names
    assert ALIASES[("model", "max_length")] == ("training", "max_seq_length")
    assert {k for k in valid_keys() if k.startswith("training.")} >= {
        "training.num_steps",
        "training.save_steps",
    }


def test_method_and_the_grpo_section_are_validated_like_every_key() -> None:
    base = {"model": {"model_id": "gpt2"}}
    sft, _ = load_config(base)
    assert sft.method == "sft" and sft.grpo is None
    # An SFT config resolves as it did before GRPO existed: no new keys, so runs started then resume.
    assert set(sft.to_dict()) == {"model", "training", "data", "output", "system_instruction", "provenance"}
    grpo, _ = load_config({**base, "method": "grpo"})
    assert grpo.grpo is not None and grpo.grpo.num_generations == 8  # defaults without a section
    tuned, _ = load_config({**base, "method": "grpo", "grpo": {"beta": 0.04}}, ["grpo.num_generations=4"])
    assert (tuned.grpo.beta, tuned.grpo.num_generations) == (0.04, 4)
    assert tuned.to_dict()["method"] == "grpo" and tuned.to_dict()["grpo"]["beta"] == 0.04
    assert {"method", "grpo", "grpo.num_generations", "grpo.rewards"} <= set(valid_keys())
    with pytest.raises(ConfigError, match="grpo: section is given but method is sft; set method: grpo"):
        load_config({**base, "grpo": {"beta": 0.04}})
    with pytest.raises(ConfigError, match=r"did you mean 'grpo\.num_generations'"):
        load_config({**base, "method": "grpo", "grpo": {"num_generation": 4}})
    with pytest.raises(ConfigError, match="did you mean 'method'"):
        load_config({**base, "methd": "grpo"})
    with pytest.raises(ConfigError, match=r"method: Input should be 'sft' or 'grpo'"):
        load_config({**base, "method": "ppo"})
