"""`tunix-rt doctor` end to end: this machine, a faked RTX 5090, and the evidence files."""

import dataclasses
import json
import subprocess
import sys

import pytest

from tunix_rt.cli import main
from tunix_rt.device import doctor, fakes
from tunix_rt.device.envfiles import write_environment_files

ENV_FILES = ["env_info.txt", "torch_version.txt", "cuda_check.txt", "nvidia_smi.txt", "pip_freeze.txt"]
TOP_KEYS = {"python", "os", "cpu", "torch", "driver", "gpus", "recommended_device", "verdict"}


@pytest.fixture
def small_cpu_peak(monkeypatch):
    """The CPU peak measurement is real; keep it small so the CLI tests stay fast."""
    original = doctor.collect_report
    monkeypatch.setattr(
        doctor,
        "collect_report",
        lambda requested="auto", **kw: original(requested, **{"cpu_peak_size": 128, **kw}),
    )


def test_doctor_json_here_parses_and_exits_0_through_the_real_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "tunix_rt", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report.keys() >= TOP_KEYS
    assert report["recommended_device"] == "cpu" and report["gpus"] == []
    assert {"model", "cores", "avx512_bf16", "amx", "ram_gb"} <= report["cpu"].keys()
    assert {"version", "build", "cuda", "cudnn", "arch_list"} <= report["torch"].keys()
    assert {"version", "max_cuda", "source"} <= report["driver"].keys()


def test_doctor_device_cuda_here_exits_1(capsys, small_cpu_peak):
    assert main(["doctor", "--device", "cuda"]) == 1
    out = capsys.readouterr().out
    assert "✖ cuda is not usable" in out and "CPU-only build" in out and "usable instead: --device cpu" in out


def test_doctor_human_here_exits_0(capsys, small_cpu_peak):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "✔ cpu is usable" in out and "none visible to torch or the driver" in out


def test_doctor_evidence_writes_the_five_files(tmp_path, capsys, small_cpu_peak):
    assert main(["doctor", "--json", "--evidence", str(tmp_path / "ev")]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays one JSON object
    assert "evidence: wrote" in captured.err
    for name in ENV_FILES:
        assert (tmp_path / "ev" / name).read_text().strip(), name
    ev = tmp_path / "ev"
    assert "no NVIDIA driver present" in (ev / "nvidia_smi.txt").read_text()
    assert (
        "torch==" in (ev / "pip_freeze.txt").read_text()
        or "pip is unavailable" in (ev / "pip_freeze.txt").read_text()
    )
    assert "verdict: cpu is usable" in (ev / "cuda_check.txt").read_text()
    assert (ev / "torch_version.txt").read_text().startswith("torch ")
    assert not list(ev.glob(".*.tmp"))  # atomic writes leave no temp files


def test_faked_5090_doctor_device_cuda_exits_1_with_remedy(monkeypatch, capsys, small_cpu_peak):
    monkeypatch.setattr(
        doctor, "current_view", lambda: fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU126)
    )
    assert main(["doctor", "--device", "cuda"]) == 1
    out = capsys.readouterr().out
    assert "✖ architecture  sm_120 (NVIDIA GeForce RTX 5090) is not in this PyTorch build's arch list" in out
    assert "whl/cu128" in out and "usable instead: --device cpu" in out


def test_faked_5090_json_marks_the_gpu_incompatible_but_auto_is_usable(monkeypatch, capsys, small_cpu_peak):
    monkeypatch.setattr(
        doctor, "current_view", lambda: fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU126)
    )
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (gpu,) = report["gpus"]
    assert (gpu["capability"], gpu["arch_supported"], gpu["compatible"]) == ("sm_120", False, False)
    assert "cu128" in gpu["remedy"] and gpu["probe"] is None
    assert report["recommended_device"] == "cpu" and "sm_120" in report["verdict"]


def test_faked_probe_failure_is_reported(monkeypatch, capsys, small_cpu_peak):
    view = fakes.fake_view((fakes.H100,), fakes.ARCH_LIST_CU126, probe_error=fakes.NO_KERNEL_IMAGE)
    monkeypatch.setattr(doctor, "current_view", lambda: view)
    assert main(["doctor", "--json", "--device", "cuda"]) == 1
    (gpu,) = json.loads(capsys.readouterr().out)["gpus"]
    assert gpu["arch_supported"] and not gpu["compatible"]
    assert "no kernel image is available" in gpu["reason"] and not gpu["probe"]["ok"]


def test_faked_5090_with_cu128_build_is_usable(monkeypatch, capsys, small_cpu_peak):
    view = fakes.fake_view((fakes.RTX_5090,), fakes.ARCH_LIST_CU128, cuda="12.8")
    monkeypatch.setattr(doctor, "current_view", lambda: view)
    assert main(["doctor", "--device", "cuda"]) == 0
    out = capsys.readouterr().out
    assert "✔ compatible" in out and "✔ cuda:0 is usable" in out


def test_cpu_build_with_a_5090_on_the_driver_lists_it(monkeypatch, capsys):
    view = fakes.fake_view((fakes.RTX_5090,), build="cpu", driver=fakes.DRIVER_570)
    report = doctor.collect_report("auto", view=view, cpu_peak_size=None)
    (gpu,) = report["gpus"]
    assert gpu["name"] == "NVIDIA GeForce RTX 5090" and not gpu["compatible"]
    assert "CPU-only build" in gpu["reason"] and "whl/cu128" in gpu["remedy"]
    assert report["usable"] and report["recommended_device"] == "cpu"


def test_write_environment_files_with_a_given_report(tmp_path):
    report = doctor.collect_report(
        "auto", view=fakes.fake_view((fakes.H100,), fakes.ARCH_LIST_CU126), cpu_peak_size=None
    )
    paths = write_environment_files(tmp_path, report)
    assert [p.name for p in paths] == ENV_FILES
    check = (tmp_path / "cuda_check.txt").read_text()
    assert "gpu 0: NVIDIA H100 80GB HBM3 sm_90 compatible=True" in check and "gflops=50000.0" in check


def test_only_the_requested_gpu_is_probed():
    second = dataclasses.replace(fakes.H100, index=1)
    view = fakes.fake_view((fakes.H100, second), fakes.ARCH_LIST_CU126)
    probed = {
        g["index"]: g["probe"] is not None
        for g in doctor.collect_report("cuda:1", view=view, cpu_peak_size=None)["gpus"]
    }
    assert probed == {0: False, 1: True}
    report = doctor.collect_report("cpu", view=view, cpu_peak_size=None)
    assert all(g["probe"] is None for g in report["gpus"]) and report["device"]["device"] == "cpu"
    assert all(g["probe"] for g in doctor.collect_report("auto", view=view, cpu_peak_size=None)["gpus"])


def test_write_environment_files_collects_its_own_report_for_the_run_device(tmp_path):
    paths = write_environment_files(tmp_path, requested="cpu")
    assert [p.name for p in paths] == ENV_FILES
    assert "requested: cpu" in (tmp_path / "cuda_check.txt").read_text()
