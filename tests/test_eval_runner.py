"""evaluate() end to end on a tiny model: both files, every field, the run's render settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from helpers_models import make_tiny_model_dir
from tunix_rt.cli import main
from tunix_rt.device.preflight import resolve_device
from tunix_rt.errors import ModelError
from tunix_rt.eval import generate as generate_module
from tunix_rt.eval.generate import Generation
from tunix_rt.eval.runner import evaluate
from tunix_rt.train.render import render_prompt

ITEMS = [
    {"id": "q1", "prompt": "What is 15 + 27?", "expected_answer": "42", "section": "core",
     "category": "arithmetic", "difficulty": "easy"},
    {"id": "q2", "prompt": "Capital of France?", "expected_answer": "Paris", "section": "core",
     "category": "knowledge", "difficulty": "easy"},
    {"id": "q3", "prompt": "How far at 60 km/h for 2 h?", "expected_answer": "120", "section": "trace_sensitive",
     "category": "word_problem", "difficulty": "medium"},
]  # fmt: skip
PREDICTION_FIELDS = {"id", "prompt", "prediction", "answer", "expected", "correct", "rule", "section",
                     "category", "difficulty", "n_tokens"}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    model_dir = make_tiny_model_dir(run / "final_model", arch="llama")
    (model_dir / "tunix_rt_render.json").write_text(
        json.dumps({"template": "plain", "system_instruction": "Be brief."})
    )
    (run / "run_manifest.json").write_text(json.dumps({"run_id": "run-123", "status": "completed"}))
    return run


@pytest.fixture()
def eval_file(tmp_path: Path) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    return path


def test_evaluate_writes_predictions_and_summary(run_dir: Path, eval_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = evaluate(run_dir, str(eval_file), out, device="cpu", batch_size=2, max_new_tokens=8)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    assert all(set(r) >= PREDICTION_FIELDS for r in rows)
    assert all(r["rule"] == "no_answer_line" and r["answer"] is None for r in rows)  # random weights
    on_disk = json.loads((out / "eval_summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["eval_set"]["n_items"] == 3 and len(summary["eval_set"]["sha256"]) == 64
    assert summary["model"] == {"path": str(run_dir / "final_model"), "run_id": "run-123"}
    assert summary["primary_score"] == summary["metrics"]["answer_correctness"] == 0.0
    card = summary["scorecard"]
    assert (card["n_items"], card["n_scored"], card["n_skipped"], card["format_compliance"]) == (3, 3, 0, 0.0)
    assert set(card["section_scores"]) == {"core", "trace_sensitive"}
    gen = summary["generation"]
    assert gen["tokens"] == sum(r["n_tokens"] for r in rows) and gen["tokens"] > 0
    # auto: bf16 where this CPU has native bf16 (AVX512-BF16/AMX), float32 elsewhere.
    auto = "bfloat16" if resolve_device("cpu").bf16 else "float32"
    assert (gen["batch_size"], gen["max_new_tokens"], gen["device"], gen["dtype"]) == (2, 8, "cpu", auto)
    assert gen["tokens_per_sec"] > 0 and "evaluated_at" in summary


def test_float32_evaluation_is_batch_invariant_and_recorded(
    run_dir: Path, eval_file: Path, tmp_path: Path
) -> None:
    one = evaluate(run_dir, str(eval_file), tmp_path / "one", device="cpu", batch_size=1, max_new_tokens=8,
                   dtype="float32")  # fmt: skip
    three = evaluate(run_dir, str(eval_file), tmp_path / "three", device="cpu", batch_size=3, max_new_tokens=8,
                     dtype="float32")  # fmt: skip
    assert one["generation"]["dtype"] == three["generation"]["dtype"] == "float32"
    rows = [(tmp_path / d / "predictions.jsonl").read_text() for d in ("one", "three")]
    assert rows[0] == rows[1]


def test_an_in_memory_model_is_evaluated_as_a_cast_copy_and_left_unchanged(
    run_dir: Path, eval_file: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run_dir / "final_model", dtype=torch.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    as_is = evaluate(run_dir, str(eval_file), tmp_path / "a", model_obj=model, batch_size=3, max_new_tokens=8)
    assert as_is["generation"]["dtype"] == "float32"  # no dtype given: the model as it is
    if not resolve_device("cpu").bf16:
        pytest.skip("this CPU has no native bf16: auto is float32, nothing to cast")
    cast = evaluate(run_dir, str(eval_file), tmp_path / "b", model_obj=model, batch_size=3, max_new_tokens=8,
                    dtype="auto")  # fmt: skip
    loaded = evaluate(run_dir, str(eval_file), tmp_path / "c", device="cpu", batch_size=3, max_new_tokens=8)
    assert cast["generation"]["dtype"] == loaded["generation"]["dtype"] == "bfloat16"
    # The copy generates exactly as the bf16 model loaded from disk does; the caller's model is untouched.
    assert (tmp_path / "b" / "predictions.jsonl").read_text() == (
        tmp_path / "c" / "predictions.jsonl"
    ).read_text()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_in_memory_lora_policy_is_evaluated_merged_as_its_final_model(
    run_dir: Path, eval_file: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from tunix_rt.config import LoraConfig
    from tunix_rt.train.lora import apply_lora, save_final

    base = AutoModelForCausalLM.from_pretrained(run_dir / "final_model", dtype=torch.float32)
    policy = apply_lora(base, LoraConfig(r=4), None)
    with torch.no_grad():  # a trained adapter: lora_B away from its zero init, so merging matters
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(0)) * 0.5)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final_model")
    final = tmp_path / "final"
    save_final(policy, tokenizer, final)
    adapter = {k: v.clone() for k, v in policy.state_dict().items() if "lora_" in k}
    in_memory = evaluate(run_dir, str(eval_file), tmp_path / "m", model_obj=policy, tokenizer=tokenizer,
                         batch_size=3, max_new_tokens=8, dtype="bfloat16")  # fmt: skip
    from_disk = evaluate(final, str(eval_file), tmp_path / "d", device="cpu", batch_size=3, max_new_tokens=8,
                         dtype="bfloat16", render_settings={"template": "plain", "system_instruction": "Be brief."})  # fmt: skip
    assert in_memory["generation"]["dtype"] == from_disk["generation"]["dtype"] == "bfloat16"
    predictions = [[json.loads(line)["prediction"] for line in (tmp_path / d / "predictions.jsonl").open()]
                   for d in ("m", "d")]  # fmt: skip
    assert predictions[0] == predictions[1]
    # The policy is still the unmerged LoRA model it was, adapters unchanged.
    assert not any(getattr(m, "merged", False) for m in policy.modules())
    assert all(torch.equal(adapter[k], v) for k, v in policy.state_dict().items() if "lora_" in k)


def test_scoring_and_render_settings(
    run_dir: Path, eval_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    canned = ["1. 15 + 27 = 42\nAnswer: 42", "Answer: paris.", "1. 60 * 2 = 120"]

    def fake_generate(model, tokenizer, prompts, **kwargs):
        seen.extend(prompts)
        return [Generation(text=text, n_tokens=5, stopped_at_eos=True) for text in canned[: len(prompts)]]

    monkeypatch.setattr(generate_module, "generate", fake_generate)
    summary = evaluate(run_dir, str(eval_file), tmp_path / "out", device="cpu")
    assert seen[0] == render_prompt("What is 15 + 27?", None, "Be brief.")
    card = summary["scorecard"]
    assert summary["primary_score"] == pytest.approx(2 / 3, abs=1e-6)
    assert card["format_compliance"] == pytest.approx(2 / 3, abs=1e-6)
    assert card["section_scores"]["trace_sensitive"] == {"accuracy": 0.0, "n": 1, "correct": 0}
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [r["rule"] for r in rows] == ["exact", "normalized_text", "no_answer_line"]

    # --limit, and an in-memory model (what training passes) with no render file: render_prompt default.
    seen.clear()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(run_dir / "final_model")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final_model")
    summary = evaluate(
        tmp_path / "elsewhere",
        str(eval_file),
        tmp_path / "out2",
        limit=1,
        model_obj=model,
        tokenizer=tokenizer,
    )
    assert summary["eval_set"]["n_items"] == 1 and summary["eval_set"]["n_available"] == 3
    assert seen == [render_prompt("What is 15 + 27?", tokenizer, None)]


def test_missing_or_invalid_model_dir(eval_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model"):
        evaluate(tmp_path / "nope", str(eval_file), tmp_path / "out", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        evaluate(tmp_path / "empty", str(eval_file), tmp_path / "out", device="cpu")


def test_cli(run_dir: Path, eval_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(["eval", "--model", str(run_dir), "--eval-set", str(eval_file), "-o", str(out),
                 "--device", "cpu", "--max-new-tokens", "4", "--limit", "2"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "answer accuracy: 0.0% (0/2)" in printed and str(out / "predictions.jsonl") in printed
    code = main(["eval", "--model", str(tmp_path / "nope"), "--eval-set", str(eval_file), "-o", str(out)])
    assert code == 2 and "no such model" in capsys.readouterr().err
