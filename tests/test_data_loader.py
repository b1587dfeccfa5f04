"""load_traces: accepted shapes, every kind of bad line, and property tests on corrupted input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunix_rt.data import loader
from tunix_rt.data.loader import Problem, load_traces
from tunix_rt.data.schema import ReasoningTrace
from tunix_rt.errors import DataError
from tunix_rt.train.render import render_completion

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dev-reasoning-v2.jsonl"

NATIVE = {
    "trace_version": "1.0",
    "prompt": "What is 2 + 3?",
    "steps": [{"i": 0, "type": "calc", "content": "2 + 3 = 5"}],
    "final_answer": "5",
    "meta": {"category": "x"},
}


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in lines)
    path.write_bytes(data)
    return path


def one(tmp_path: Path, record: dict) -> loader.LoadResult:
    return load_traces(write_lines(tmp_path / "f.jsonl", [json.dumps(record)]))


# --- accepted shapes --------------------------------------------------------------------------

SHAPES = [
    pytest.param(NATIVE, None, "What is 2 + 3?", ["2 + 3 = 5"], "5", id="native"),
    pytest.param(
        {"prompts": "Q?", "trace_steps": ["a", "b"], "final_answer": "7", "metadata": {"src": "x"}},
        "export",
        "Q?",
        ["a", "b"],
        "7",
        id="export",
    ),
    pytest.param(
        {"prompt": "Q?", "completion": "1. 3 + 4 = 7\n2. so seven\nAnswer: 7"},
        "prompt_completion",
        "Q?",
        ["3 + 4 = 7", "so seven"],
        "7",
        id="prompt_completion_answer_line",
    ),
    pytest.param(
        {"prompt": "Q?", "completion": "3 + 4 = 7\n\nFinal answer: 7"},
        "prompt_completion",
        "Q?",
        ["3 + 4 = 7"],
        "7",
        id="prompt_completion_final_answer",
    ),
    pytest.param(
        {"prompt": "Q?", "completion": "3 + 4 = 7\n7"},
        "prompt_completion",
        "Q?",
        ["3 + 4 = 7"],  # the last line is the answer, not also a step (issue 13 §5)
        "7",
        id="prompt_completion_last_line",
    ),
    pytest.param(
        {"question": "Ann has 3 + 4?", "answer": "She has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"},
        "gsm8k",
        "Ann has 3 + 4?",
        ["She has 3 + 4 = 7 apples."],
        "7",
        id="gsm8k",
    ),
    pytest.param(
        {"question": "Big?", "answer": "1,000 + 234 = <<1000+234=1234>>1,234\n#### 1,234"},
        "gsm8k",
        "Big?",
        ["1,000 + 234 = 1,234"],
        "1234",
        id="gsm8k_commas",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Q?"},
                {"role": "assistant", "content": "2 × 3 = 6\nAnswer: 6"},
            ]
        },
        "chat",
        "Q?",
        ["2 × 3 = 6"],
        "6",
        id="chat",
    ),
]


@pytest.mark.parametrize(("record", "conversion", "prompt", "steps", "answer"), SHAPES)
def test_accepted_shapes(tmp_path, record, conversion, prompt, steps, answer):
    result = one(tmp_path, record)
    trace = result.traces[0]
    assert (trace.prompt, [s.content for s in trace.steps], trace.final_answer) == (prompt, steps, answer)
    assert [s.i for s in trace.steps] == list(range(len(steps)))
    if conversion:
        assert trace.meta["converted_from"] == conversion
        assert result.conversions == {conversion: 1}
    else:
        assert result.conversions == {}


def test_chat_keeps_system_turn_and_earlier_turns_and_uses_last_assistant(tmp_path):
    record = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x\nAnswer: 1"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": "y\nAnswer: 2"},
        ]
    }
    trace = one(tmp_path, record).traces[0]
    assert (trace.prompt, [s.content for s in trace.steps], trace.final_answer) == ("second", ["y"], "2")
    assert trace.meta["chat_history"] == record["messages"][:3]
    # The trace is still plain ReasoningTrace JSON: it round-trips with its history.
    assert ReasoningTrace.model_validate(trace.to_json_dict()) == trace


def test_one_turn_chat_has_no_history(tmp_path):
    record = {
        "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "a\nAnswer: 1"}]
    }
    assert one(tmp_path, record).traces[0].meta == {"converted_from": "chat"}


@pytest.mark.parametrize(
    ("record", "rendered"),
    [
        (
            {"prompt": "Q?", "completion": "First 3 + 4 = 7.\nSo it is 7."},
            "1. First 3 + 4 = 7.\nAnswer: So it is 7.",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Q?"},
                    {"role": "assistant", "content": "1. 2 + 2 = 4\n2. 4"},
                ]
            },
            "1. 2 + 2 = 4\nAnswer: 4",
        ),
    ],
    ids=["prompt_completion", "chat"],
)
def test_completion_without_answer_line_is_not_duplicated(tmp_path, record, rendered):
    # Before: the last line was both the last step and the answer ("2. 4\nAnswer: 4").
    assert render_completion(one(tmp_path, record).traces[0]) == rendered


def test_export_metadata_kept(tmp_path):
    record = {"prompts": "Q?", "trace_steps": ["a"], "final_answer": "1", "metadata": {"k": 1}}
    assert one(tmp_path, record).traces[0].meta == {"k": 1, "converted_from": "export"}


def test_blank_lines_allowed_and_sha256(tmp_path):
    path = write_lines(tmp_path / "f.jsonl", ["", json.dumps(NATIVE), "   ", ""])
    result = load_traces(path)
    assert len(result.traces) == 1 and result.records == 1 and not result.problems
    import hashlib

    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- invalid lines ----------------------------------------------------------------------------

BAD = [
    pytest.param(b'{"prompt": "x", ', "json", "invalid JSON", id="broken_json"),
    pytest.param(b"[1, 2]", "record", "expected a JSON object", id="array"),
    pytest.param(b'"text"', "record", "expected a JSON object", id="string"),
    pytest.param(
        b'{"prompt": "Q", "steps": [{"i": 0, "type": "t", "content": "c"}]}',
        "final_answer",
        "required",
        id="missing_final_answer",
    ),
    pytest.param(
        json.dumps({**NATIVE, "steps": [{"i": "0", "type": "t", "content": "c"}]}).encode(),
        "steps[0].i",
        "integer",
        id="step_index_string",
    ),
    pytest.param(json.dumps({**NATIVE, "prompt": 5}).encode(), "prompt", "string", id="prompt_int"),
    pytest.param(
        json.dumps({**NATIVE, "final_answer": "  "}).encode(), "final_answer", "blank", id="blank_answer"
    ),
    pytest.param(json.dumps({**NATIVE, "steps": []}).encode(), "steps", "at least 1", id="no_steps"),
    pytest.param(
        json.dumps({**NATIVE, "steps": [{"i": 0, "type": "t", "content": "a"}] * 2}).encode(),
        "steps",
        "more than once",
        id="duplicate_i",
    ),
    pytest.param(
        json.dumps(
            {**NATIVE, "steps": [{"i": n, "type": "t", "content": "a"} for n in range(1001)]}
        ).encode(),
        "steps",
        "at most 1000",
        id="too_many_steps",
    ),
    pytest.param(
        json.dumps({**NATIVE, "prompt": "x" * 50_001}).encode(), "prompt", "at most 50000", id="long_prompt"
    ),
    pytest.param(
        json.dumps({**NATIVE, "steps": [{"i": 0, "type": "t", "content": "x" * 20_001}]}).encode(),
        "steps[0].content",
        "at most 20000",
        id="long_step",
    ),
    pytest.param(json.dumps({**NATIVE, "meta": [1]}).encode(), "meta", "dictionary", id="meta_list"),
    pytest.param(b'{"prompt": "caf\xe9"}', "encoding", "not valid UTF-8", id="latin1_byte"),
    pytest.param(b'{"foo": 1}', "record", "unrecognised record shape", id="unknown_shape"),
    pytest.param(b'{"question": "q", "answer": "no marker"}', "answer", "####", id="gsm8k_no_marker"),
    pytest.param(
        b'{"prompts": "q", "trace_steps": [1], "final_answer": "a"}',
        "trace_steps[0]",
        "string",
        id="export_step_int",
    ),
    pytest.param(
        b'{"messages": [{"role": "user", "content": "q"}]}',
        "messages",
        "no assistant",
        id="chat_no_assistant",
    ),
    pytest.param(
        b'{"prompt": "q", "completion": "Answer: 4"}',
        "completion",
        "no reasoning",
        id="completion_only_answer",
    ),
    pytest.param(
        b'{"prompt": "q", "completion": "just one line"}',
        "completion",
        "no reasoning",
        id="completion_one_line_no_answer_line",
    ),
    pytest.param(
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "t"},'
        b' {"role": "assistant", "content": "a\\nAnswer: 1"}]}',
        "messages[1].role",
        "expected one of system, user, assistant",
        id="chat_unknown_role",
    ),
    pytest.param(
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"},'
        b' {"role": "assistant", "content": "a\\nAnswer: 1"}]}',
        "messages[1]",
        "must directly follow the user turn messages[0]",
        id="chat_turn_between_question_and_reply",
    ),
    pytest.param(
        b'{"prompt": "q", "steps": [{"i": 0, "content": "s"}], "final_answer": "1",'
        b' "meta": {"chat_history": [{"role": "bot", "content": "x"}]}}',
        "meta",
        "chat_history[0].role",
        id="native_bad_chat_history",
    ),
]


@pytest.mark.parametrize(("line", "field", "fragment"), BAD)
def test_bad_line_is_located(tmp_path, line, field, fragment):
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps(NATIVE), "", line])
    with pytest.raises(DataError) as info:
        load_traces(path)
    assert f"{path}:3: {field}:" in str(info.value)
    result = load_traces(path, skip_invalid=True)
    assert result.skipped == 1 and len(result.traces) == 1
    problem = result.errors[0]
    assert (problem.line, problem.field) == (3, field)
    assert fragment in problem.message


def test_problem_str():
    assert str(Problem("a.jsonl", 4, "steps[0].i", "bad")) == "a.jsonl:4: steps[0].i: bad"


def test_line_over_limit_refused_without_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_LINE_BYTES", 1000)
    huge = json.dumps({**NATIVE, "prompt": "x" * 5000})
    path = write_lines(
        tmp_path / "f.jsonl", [json.dumps(NATIVE), huge, json.dumps({**NATIVE, "prompt": "other"})]
    )
    result = load_traces(path, skip_invalid=True)
    assert [p.line for p in result.errors] == [2] and result.errors[0].field == "line"
    assert [t.prompt for t in result.traces] == [
        "What is 2 + 3?",
        "other",
    ]  # line numbering continues correctly


def test_error_message_lists_first_ten_then_count(tmp_path):
    path = write_lines(tmp_path / "f.jsonl", ["{bad"] * 13)
    with pytest.raises(DataError) as info:
        load_traces(path)
    text = str(info.value)
    assert f"{path}:10: json:" in text and f"{path}:11:" not in text and "... and 3 more" in text


def test_duplicates_are_warnings_not_errors(tmp_path):
    path = write_lines(tmp_path / "f.jsonl", [json.dumps(NATIVE)] * 3)
    result = load_traces(path)
    assert len(result.traces) == 3 and result.duplicates == 2 and result.skipped == 0
    assert [(p.line, p.level) for p in result.problems] == [(2, "warning"), (3, "warning")]
    assert "duplicate of line 1" in result.problems[0].message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_traces(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="is a directory"):
        load_traces(tmp_path)


# --- property tests ---------------------------------------------------------------------------


def _check(path: Path, lines_bytes: list[bytes]) -> None:
    data = b"\n".join(lines_bytes)
    path.write_bytes(data)
    physical_lines = data.count(b"\n") + 1  # a random chunk may itself hold newlines
    try:
        result = load_traces(path, skip_invalid=True)
    except DataError:
        pytest.fail("skip_invalid=True must not raise for bad lines")
    for problem in result.errors:
        assert str(problem).startswith(f"{path}:{problem.line}: ")
        assert 1 <= problem.line <= physical_lines
    try:
        load_traces(path)
    except DataError as exc:
        assert result.errors and f":{result.errors[0].line}: " in str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "prompt": json_values,
        "steps": json_values
        | st.lists(
            st.fixed_dictionaries(
                {}, optional={"i": json_values, "type": json_values, "content": json_values}
            ),
            max_size=3,
        ),
        "final_answer": json_values,
        "meta": json_values,
        "trace_version": json_values,
        "completion": json_values,
        "question": json_values,
        "answer": json_values,
        "messages": json_values,
        "prompts": json_values,
        "trace_steps": json_values,
    },
)
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_random_bytes_never_crash(tmp_path, lines):
    _check(tmp_path / "p.jsonl", lines)


@PROPERTY
@given(st.lists(shaped | json_values, max_size=5))
def test_wrong_types_never_crash(tmp_path, records):
    _check(tmp_path / "p.jsonl", [json.dumps(r).encode() for r in records])


@PROPERTY
@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=255))
def test_truncated_and_corrupted_json_never_crash(tmp_path, cut, byte):
    good = json.dumps(NATIVE).encode()
    corrupted = good[: cut % len(good)] + bytes([byte]) + good[cut % len(good) + 1 :]
    _check(tmp_path / "p.jsonl", [good, good[: cut % len(good)], corrupted])


# --- reference compatibility ------------------------------------------------------------------


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference dataset not present at {REFERENCE}")
def test_reference_dataset_loads_as_is():
    result = load_traces(REFERENCE)
    assert len(result.traces) == 550 and not result.errors and result.skipped == 0
    assert result.conversions == {}
