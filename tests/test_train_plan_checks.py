"""Cross-field checks before anything is loaded (issue 13 §5): each one blocks a dry run, no weights read."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers_models import make_tiny_model_dir
from helpers_train import pretrained_config, scratch_config, write_traces
from tunix_rt.cli import main
from tunix_rt.config import load_config
from tunix_rt.train.plan_checks import check_plan, position_limit


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A saved 2-layer GPT-2 with 256 positions (helpers_models) and its tokenizer."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("models") / "gpt2", arch="gpt2")


@pytest.fixture
def no_weights(monkeypatch):
    """Fail the test if any model weights are loaded or a model is built."""
    import transformers

    from tunix_rt.recipes import sft
    from tunix_rt.train import model

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded or built by a dry run")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", refuse)
    for module in (sft, model):
        monkeypatch.setattr(module, "load_pretrained", refuse, raising=False)
        monkeypatch.setattr(module, "build_scratch_model", refuse, raising=False)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


def dry_run(tmp_path, config: dict, *extra: str) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    data = write_traces(tmp_path / "d.jsonl", n=12)
    out = tmp_path / "run"
    code = main(
        ["train", "--config", str(path), "--dataset", str(data), "--output", str(out), "--dry-run", *extra]
    )
    assert not out.exists()
    return code, out


def run_and_read(tmp_path, capsys, config: dict, *extra: str) -> tuple[int, str]:
    code, _ = dry_run(tmp_path, config, *extra)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out


def blockers(text: str) -> list[str]:
    return [line.strip().removeprefix("blocker: ") for line in text.splitlines() if "blocker:" in line]


def test_a_valid_plan_passes(tmp_path, capsys, no_weights, tiny_gpt2) -> None:
    config = pretrained_config(
        tiny_gpt2, max_seq_length=128, eval_set="reasoning-eval-v1", eval_max_new_tokens=64
    )
    code, text = run_and_read(tmp_path, capsys, config)
    assert code == 0 and "ready to train here: yes" in text and blockers(text) == []
    cfg, _ = load_config(config)
    assert check_plan(cfg) == []


def test_a_wrong_eval_set_blocks_the_dry_run(tmp_path, capsys, no_weights) -> None:
    code, text = run_and_read(tmp_path, capsys, scratch_config(eval_set="reasoning-mix-heldotu"))
    assert code == 2
    (blocker,) = blockers(text)
    assert blocker.startswith("training.eval_set = 'reasoning-mix-heldotu' cannot be used")
    assert "reasoning-mix-heldout" in blocker  # the bundled keys are listed


def test_a_broken_eval_file_blocks_naming_file_and_line(tmp_path, capsys, no_weights) -> None:
    bad = tmp_path / "eval.jsonl"
    bad.write_text(json.dumps({"id": "a", "prompt": "p", "expected_answer": "1"}) + "\n")
    code, text = run_and_read(tmp_path, capsys, scratch_config(eval_set=str(bad)))
    assert code == 2
    (blocker,) = blockers(text)
    assert f"training.eval_set = '{bad}' cannot be used" in blocker
    assert f"{bad}:1: section: missing" in text  # the eval set's own message, every problem listed


def test_max_seq_length_past_the_models_positions_blocks(tmp_path, capsys, no_weights, tiny_gpt2) -> None:
    code, text = run_and_read(tmp_path, capsys, pretrained_config(tiny_gpt2, max_seq_length=512))
    assert code == 2
    (blocker,) = blockers(text)
    assert blocker.startswith("training.max_seq_length = 512 is more than the model's 256 positions")
    assert "config.json" in blocker and "at most 256" in blocker


def test_eval_prompt_plus_new_tokens_past_the_positions_blocks(
    tmp_path, capsys, no_weights, tiny_gpt2
) -> None:
    config = pretrained_config(
        tiny_gpt2, max_seq_length=128, eval_set="reasoning-eval-v1", eval_max_new_tokens=250
    )
    code, text = run_and_read(tmp_path, capsys, config)
    assert code == 2
    (blocker,) = blockers(text)
    assert blocker.startswith(
        "training.eval_max_new_tokens = 250: the longest prompt of eval set 'reasoning-eval-v1'"
    )
    assert (
        "more than the model's 256" in blocker and "lower training.eval_max_new_tokens to at most" in blocker
    )
    # The bound in the message is exact: it passes, one more token does not.
    room = int(blocker.rsplit("at most ", 1)[1])
    assert run_and_read(tmp_path, capsys, config, "--set", f"training.eval_max_new_tokens={room}")[0] == 0
    assert run_and_read(tmp_path, capsys, config, "--set", f"training.eval_max_new_tokens={room + 1}")[0] == 2


def test_a_scratch_model_has_max_seq_length_positions(tmp_path, capsys, no_weights) -> None:
    # The tokenizer is trained on the dataset by the dry run; its prompts run to ~100 tokens here.
    config = scratch_config(max_seq_length=128, eval_set="reasoning-mix-heldout", eval_max_new_tokens=120)
    code, text = run_and_read(tmp_path, capsys, config)
    assert code == 2
    (blocker,) = blockers(text)
    assert "training.eval_max_new_tokens = 120" in blocker and "more than the model's 128" in blocker
    assert "raise training.max_seq_length" in blocker
    assert run_and_read(tmp_path, capsys, config, "--set", "training.max_seq_length=256")[0] == 0


def test_fsdp_without_torchrun_blocks_and_nproc_clears_it(tmp_path, capsys, no_weights) -> None:
    config = scratch_config(strategy="fsdp")
    code, text = run_and_read(tmp_path, capsys, config)
    assert code == 2
    (blocker,) = blockers(text)
    assert blocker.startswith("training.strategy = 'fsdp' needs several processes") and "--nproc" in blocker
    code, text = run_and_read(tmp_path, capsys, config, "--nproc", "2")
    assert code == 0 and blockers(text) == []


def test_environment_blockers_still_exit_zero(tmp_path, capsys, no_weights, monkeypatch) -> None:
    # A hub model that is not cached offline is this machine's problem, not the config's.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, text = run_and_read(tmp_path, capsys, {"model": {"model_id": "no-such-org/no-such-model"}})
    assert code == 0 and "not in the local Hugging Face cache" in text


def test_position_limit_reads_config_json_only(tmp_path, tiny_gpt2) -> None:
    # A directory with nothing but config.json: no weights exist to be read.
    only_config = tmp_path / "only-config"
    only_config.mkdir()
    (only_config / "config.json").write_text((tiny_gpt2 / "config.json").read_text())
    cfg, _ = load_config(pretrained_config(only_config, max_seq_length=300))
    limit = position_limit(cfg.model, cfg.training.max_seq_length)
    assert limit is not None and limit.positions == 256
    (blocker,) = check_plan(cfg)
    assert "training.max_seq_length = 300" in blocker
    # With no tokenizer beside it, the eval-prompt check is left out rather than guessed.
    cfg, _ = load_config(
        pretrained_config(only_config, eval_set="reasoning-eval-v1", eval_max_new_tokens=250)
    )
    assert check_plan(cfg) == []


def test_check_plan_reads_a_pretrained_tokenizer_itself(tiny_gpt2) -> None:
    """The recipe calls check_plan before loading the model: it needs no tokenizer from the caller."""
    cfg, _ = load_config(pretrained_config(tiny_gpt2, eval_set="reasoning-eval-v1", eval_max_new_tokens=250))
    (blocker,) = check_plan(cfg, world_size=1)
    assert "training.eval_max_new_tokens = 250" in blocker
    assert check_plan(
        cfg.model_copy(update={"training": cfg.training.model_copy(update={"strategy": "ddp"})}), world_size=2
    ) == [blocker]
