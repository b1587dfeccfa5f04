"""The typed config: canonical keys, the original's aliases, overrides, refusals with hints."""

from __future__ import annotations

import pytest

from helpers_train import REFERENCE
from tunix_rt.config import diff_configs, load_config
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
