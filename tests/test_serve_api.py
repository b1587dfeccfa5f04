"""The dashboard's pages and JSON over run directories made by real tiny training runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers_serve import N_EVAL, N_STEPS_A, LiveWriter, build_runs, wait_for
from tunix_rt.serve.app import create_app


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_runs(tmp_path_factory.mktemp("serve-runs"))


@pytest.fixture(scope="module")
def client(root) -> TestClient:
    return TestClient(create_app(root))


def rows_by_name(client: TestClient) -> dict[str, dict]:
    response = client.get("/api/runs")
    assert response.status_code == 200
    return {row["name"]: row for row in response.json()}


def test_runs_api_reports_each_kind_of_run(client) -> None:
    rows = rows_by_name(client)
    assert rows["completed-a"]["status"] == "completed"
    assert rows["failed"]["status"] == "failed" and "_SimulatedKill" in rows["failed"]["error"]
    assert rows["interrupted"]["status"] == "interrupted"
    assert rows["interrupted"]["progress"]["step"] == 3 and rows["interrupted"]["progress"]["total"] == 8
    assert rows["malformed"]["unreadable"].startswith("run_manifest.json: not a JSON object")
    assert "run_manifest.json: unreadable" in rows["half-written"]["unreadable"]
    assert rows["completed-a"]["progress"]["step"] == N_STEPS_A
    assert 0 < rows["completed-a"]["score"] < 1  # the real eval has right and wrong items


def test_every_page_answers_for_every_run_even_damaged_ones(client, root) -> None:
    home = client.get("/")
    assert home.status_code == 200
    assert "unreadable: run_manifest.json: not a JSON object" in home.text
    for name in ("completed-a", "completed-b", "failed", "interrupted", "malformed", "half-written"):
        for prefix in ("/runs/", "/eval/"):
            response = client.get(prefix + name)
            assert response.status_code == 200, (prefix, name)
    assert "unreadable: run_manifest.json" in client.get("/runs/half-written").text
    assert "unreadable: eval_summary.json" in client.get("/eval/malformed").text


def test_runs_are_grouped_by_eval_set_and_filtered_by_status(client, root) -> None:
    text = client.get("/").text
    assert text.index("evalset.jsonl") < text.index("not evaluated")
    failed_only = client.get("/", params={"status": "failed"}).text
    assert 'data-run="failed"' in failed_only and 'data-run="completed-a"' not in failed_only
    by_name = client.get("/", params={"q": "interr"}).text
    assert 'data-run="interrupted"' in by_name and 'data-run="failed"' not in by_name


def test_metrics_api_has_one_point_per_metrics_line(client, root) -> None:
    data = client.get("/api/metrics/completed-a").json()
    lines = [json.loads(x) for x in (root / "completed-a" / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if "loss" in x]
    assert data["series"]["step"] == [x["step"] for x in train_lines]
    assert data["series"]["loss"] == pytest.approx([x["loss"] for x in train_lines])
    assert data["status"] == "completed"
    assert [c[0] for c in data["curves"]][:4] == ["loss", "lr", "grad_norm", "tokens_per_sec"]


def test_run_page_shows_manifest_evidence_checkpoints_and_log(client) -> None:
    text = client.get("/runs/completed-a").text
    assert "tunix-rt train -o" in text  # the command to reproduce
    assert 'data-section="model"' in text and 'data-section="config"' in text
    assert "/files/completed-a/metrics.jsonl" in text  # evidence link to a present file
    assert "step-00000020" in text  # a checkpoint
    assert f"step {N_STEPS_A}/{N_STEPS_A}" in text  # the training log tail


def test_a_running_run_grows_while_a_writer_appends(client, root) -> None:
    writer = LiveWriter(root, every=0.2).start()
    try:
        first = client.get("/api/metrics/running").json()
        assert first["status"] == "running"
        assert wait_for(lambda: len(client.get("/api/metrics/running").json()["series"]["step"]) > len(
            first["series"]["step"]) + 2)  # fmt: skip
        row = rows_by_name(client)["running"]
        assert row["status"] == "running" and row["progress"]["total"] == N_STEPS_A
        assert row["progress"]["eta_s"] is not None and row["progress"]["tokens_per_sec"] > 0
        # A torn last line (the writer mid-line) is skipped, never an error.
        with open(writer.dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write('{"step": 999, "lo')
            handle.flush()
            assert 999 not in client.get("/api/metrics/running").json()["series"]["step"]
    finally:
        writer.stop()


def test_eval_page_filters_predictions_and_shows_before_after(client, root) -> None:
    rows = [json.loads(x) for x in (root / "completed-a/eval/predictions.jsonl").read_text().splitlines()]
    wrong = client.get("/eval/completed-a", params={"show": "wrong"}).text
    assert wrong.count('data-correct="false"') == sum(not r["correct"] for r in rows) > 0
    assert 'data-correct="true"' not in wrong
    right = client.get("/eval/completed-a", params={"show": "right"}).text
    assert right.count('data-correct="true"') == sum(r["correct"] for r in rows) > 0
    category = client.get("/eval/completed-a", params={"category": "subtraction"}).text
    assert category.count('data-category="subtraction"') == N_EVAL - 3
    assert 'data-category="addition"' not in category
    full = client.get("/eval/completed-a").text
    assert 'id="before-after"' in full and "wrong → right" in full
    assert 'data-by="difficulty"' in full


def test_eval_page_shows_another_eval_sets_directory_with_its_baseline(root, tmp_path) -> None:
    # As `tunix-rt demo` leaves it: eval-SET/ after training and eval_before-SET/ before.
    run = tmp_path / "runs" / "demo"
    shutil.copytree(root / "completed-a", run, ignore=shutil.ignore_patterns("final_model", "checkpoints"))
    shutil.copytree(run / "eval_before", run / "eval-second")
    shutil.copytree(run / "eval", run / "eval_before-second")
    client = TestClient(create_app(tmp_path / "runs"))
    assert '<a href="/eval/demo?dir=eval-second">eval-second/</a>' in client.get("/runs/demo").text
    page = client.get("/eval/demo", params={"dir": "eval-second", "show": "wrong"}).text
    rows = [json.loads(x) for x in (run / "eval-second/predictions.jsonl").read_text().splitlines()]
    assert page.count('data-correct="false"') == sum(not r["correct"] for r in rows) > 0
    assert "<th>before (eval_before-second/)</th><th>after (eval-second/)</th>" in page
    assert '<input type="hidden" name="dir" value="eval-second">' in page  # the filters keep the set
    assert "<b><code>eval-second/</code></b>" in page and '?dir=eval"><code>eval/</code>' in page
    for bad in ("checkpoints", "eval-missing", "../demo/eval"):
        text = client.get("/eval/demo", params={"dir": bad}).text
        assert f"unreadable: {bad}: no such evaluation directory in this run" in text


def test_compare_overlays_runs_and_diffs_config(client) -> None:
    text = client.get(
        "/compare", params=[("run", "completed-a"), ("run", "completed-b"), ("run", "failed")]
    ).text
    assert "training.learning_rate" in text and "training.max_steps" in text
    assert "completed-b vs completed-a" in text and "failed vs completed-a" in text
    data = json.loads(text.split('id="compare-data" type="application/json">')[1].split("</script>")[0])
    assert [r["name"] for r in data["runs"]] == ["completed-a", "completed-b", "failed"]
    damaged = client.get("/compare", params=[("run", "completed-a"), ("run", "malformed")]).text
    assert "malformed: unreadable" in damaged


def test_datasets_page_lists_files_and_shows_invalid_lines(client) -> None:
    listing = client.get("/datasets").text
    assert "datasets/traces.jsonl" in listing and "metrics.jsonl" not in listing
    broken = client.get("/datasets", params={"path": "datasets/broken.jsonl"}).text
    assert "datasets/broken.jsonl:2: steps:" in broken
    assert "datasets/broken.jsonl:3:" in broken
    assert "1 valid traces of 3 records" in broken
    assert "is not a bundled dataset key" in client.get("/datasets", params={"key": "nope"}).text


def raw_get(app, raw_path: str) -> tuple[int, str]:
    """GET exactly `raw_path` through the ASGI app, decoded the way uvicorn decodes it (httpx would
    collapse `..` segments before sending, which would hide what the app itself does)."""
    import asyncio
    from urllib.parse import unquote

    sent: list[dict] = []
    requested: list[bool] = []

    async def receive() -> dict:
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(30)  # the client stays connected until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": unquote(raw_path), "raw_path": raw_path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body.decode("utf-8", errors="replace")


@pytest.mark.parametrize(
    "path",
    [
        "/runs/../../etc",
        "/runs/..%2f..%2fetc",
        "/runs/%2e%2e/%2e%2e/etc",
        "/eval/..",
        "/files/../../../../../../etc/passwd",
        "/files/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/files/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/files//etc/passwd",
        "/files/completed-a/../../traces.jsonl",
        "/api/metrics/..%2f..",
    ],
)
def test_no_path_outside_root_can_be_read(client, path) -> None:
    status, body = raw_get(client.app, path)
    assert status == 404, body
    assert "root:" not in body and "What is 0 plus 1" not in body


def test_datasets_refuse_paths_outside_root(client, root) -> None:
    for path in ("../traces.jsonl", "/etc/passwd", "datasets/../../traces.jsonl"):
        text = client.get("/datasets", params={"path": path}).text
        assert "not a path inside the served folder" in text
        assert "What is 0 plus 1" not in text


def test_a_symlink_out_of_root_is_not_followed(client, root, tmp_path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (outside / "run_manifest.json").write_text('{"status": "completed"}')
    link = root / "escape"
    os.symlink(outside, link)
    try:
        assert client.get("/files/escape/secret.txt").status_code == 404
        assert client.get("/runs/escape").status_code == 404
        assert "escape" not in rows_by_name(client)
    finally:
        link.unlink()


def test_files_route_serves_evidence_inside_root(client, root) -> None:
    response = client.get("/files/completed-a/config.yaml")
    assert response.status_code == 200
    assert response.text == (root / "completed-a" / "config.yaml").read_text()


def test_report_command_writes_a_self_contained_report_html(root, tmp_path, capsys) -> None:
    import re
    import shutil

    from tunix_rt.cli import main

    run = tmp_path / "run"
    shutil.copytree(root / "completed-a", run, ignore=shutil.ignore_patterns("final_model", "checkpoints"))
    assert main(["report", str(run)]) == 0
    assert f"wrote {run / 'report.html'}" in capsys.readouterr().out
    html = (run / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing loaded from elsewhere
    assert "uPlot" in html and 'id="report-data"' in html
    data = json.loads(html.split('id="report-data" type="application/json">')[1].split("</script>")[0])
    assert len(data["series"]["loss"]) == N_STEPS_A
    predictions = (run / "eval" / "predictions.jsonl").read_text().splitlines()
    assert html.count('class="pred"') == len(predictions) == N_EVAL


def test_a_running_run_that_stopped_writing_is_flagged(client, root) -> None:
    writer = LiveWriter(root, name="silent")
    writer.write_line()
    old = __import__("time").time() - 3600
    for path in writer.dir.iterdir():
        os.utime(path, (old, old))
    try:
        row = rows_by_name(client)["silent"]
        assert row["status"] == "running" and row["idle_s"] >= 3600 - 5
        assert "no write for 1 h 0 min: process gone?" in client.get("/", params={"q": "silent"}).text
        os.utime(writer.dir / "metrics.jsonl")  # it writes again: no longer flagged
        assert "process gone?" not in client.get("/", params={"q": "silent"}).text
    finally:
        import shutil

        shutil.rmtree(writer.dir)


def test_reward_curves_and_sampled_completions_show_when_a_run_has_them(client, root) -> None:
    """A real run given the GRPO recipe's metrics keys and completions.jsonl lines (docs/grpo.md,
    Evidence): the Run page draws each RL curve and each reward function's mean, and lists the
    latest completions with every reward function's score."""
    import shutil

    rl = root / "rl-shaped"
    shutil.copytree(root / "completed-b", rl, ignore=shutil.ignore_patterns("final_model", "checkpoints"))
    rows = [json.loads(x) for x in (rl / "metrics.jsonl").read_text().splitlines()]
    for k, row in enumerate(rows):
        if "loss" in row:
            row.update({"reward_mean": k / len(rows), "reward_std": 0.5, "correctness_rate": 0.1 * k,
                        "kl": 0.01, "reward/correctness/mean": 0.1 * k, "reward/correctness/std": 0.2,
                        "reward/format/mean": 1.0, "reward/format/std": 0.0})  # fmt: skip
    rows.insert(0, {"step": 0, "eval_before_primary_score": 0.25})  # GRPO's eval-before line
    (rl / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = [{"step": s, "prompt_id": f"p{s}", "sample": k, "completion": f"sample <{s}.{k}>", "n_tokens": 5,
                "stopped": True, "rewards": {"correctness": float(k), "format": 0.5}, "reward": k + 0.5,
                "correct": bool(k)} for s in (5, 10) for k in (0, 1)]  # fmt: skip
    (rl / "completions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
    try:
        data = client.get("/api/metrics/rl-shaped").json()
        assert [c[0] for c in data["curves"]][4:] == [
            "reward_mean", "reward_std", "correctness_rate", "kl", "reward/correctness/mean", "reward/format/mean"
        ]  # fmt: skip
        assert len(data["series"]["reward/correctness/mean"]) == len(data["series"]["step"]) == 20
        assert 0 not in data["series"]["step"]  # the eval line is not a training step
        page = client.get("/runs/rl-shaped").text
        assert 'id="completions"' in page
        assert "reward: correctness" in page and "reward: format" in page
        # newest step first, sampling order within a step, escaped
        order = [page.index(f"sample &lt;{s}.{k}&gt;") for s, k in ((10, 0), (10, 1), (5, 0), (5, 1))]
        assert order == sorted(order)
        assert ">p10<" in page
    finally:
        shutil.rmtree(rl)
