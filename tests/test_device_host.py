"""CPU flags and the driver query: NVML (faked module), nvidia-smi text, and neither."""

import sys
import types

from tunix_rt.device import host

SMI_QUERY_OUT = "0, NVIDIA GeForce RTX 5090, 12.0, 32607, 31890, 570.124.06\n1, Tesla T4, [N/A], 15360, 15000, 570.124.06\n"
SMI_BANNER = "| NVIDIA-SMI 570.124.06   Driver Version: 570.124.06   CUDA Version: 12.8     |\n"


def test_parse_cpuinfo_reads_model_and_bf16_flags():
    text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
    model, flags = host.parse_cpuinfo(text)
    assert model == "Intel(R) Xeon(R) Platinum" and {"avx512_bf16", "amx_bf16"} <= flags


def test_read_cpu_info_here():
    cpu = host.read_cpu_info()
    assert cpu.cores >= 1 and cpu.model and cpu.ram_gb and cpu.ram_gb > 0
    assert cpu.bf16 == (cpu.avx512_bf16 or cpu.amx)


def test_parse_nvidia_smi_query_and_banner():
    driver, gpus = host.parse_smi_query(SMI_QUERY_OUT)
    assert driver == "570.124.06"
    assert (gpus[0].name, gpus[0].arch, gpus[0].capability, gpus[0].memory_total_mb) == (
        "NVIDIA GeForce RTX 5090",
        "sm_120",
        (12, 0),
        32607,
    )
    assert gpus[1].capability is None and gpus[1].arch == "unknown"
    assert host.parse_smi_header(SMI_BANNER) == ("570.124.06", "12.8")


def test_no_nvml_and_no_nvidia_smi_is_a_clean_no_driver(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    monkeypatch.setattr(host.shutil, "which", lambda name: None)
    info = host.query_driver()
    assert (info.version, info.source, info.gpus) == (None, "none", ())
    assert "nvidia-smi not found" in info.detail


def test_nvml_answers_when_installed(monkeypatch):
    class NVMLError(Exception):
        pass

    memory = types.SimpleNamespace(total=32607 * 2**20, free=31890 * 2**20)
    fake = types.SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: b"570.124.06",
        nvmlSystemGetCudaDriverVersion=lambda: 12080,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetCudaComputeCapability=lambda h: (12, 0),
        nvmlDeviceGetMemoryInfo=lambda h: memory,
        nvmlDeviceGetName=lambda h: "NVIDIA GeForce RTX 5090",
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    info = host.query_driver()
    assert (info.version, info.max_cuda, info.source) == ("570.124.06", "12.8", "nvml")
    assert info.gpus[0].arch == "sm_120" and info.gpus[0].memory_free_mb == 31890


def test_nvml_present_but_no_driver_falls_back_and_reports_both(monkeypatch):
    class NVMLError(Exception):
        pass

    def fail():
        raise NVMLError("Driver Not Loaded")

    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(NVMLError=NVMLError, nvmlInit=fail))
    monkeypatch.setattr(host.shutil, "which", lambda name: None)
    info = host.query_driver()
    assert info.source == "none" and "Driver Not Loaded" in info.detail and "nvidia-smi" in info.detail


def test_version_tuple():
    assert host.version_tuple("570.124.06") == (570, 124, 6)
    assert host.version_tuple("570.26") < host.version_tuple("570.124.06")
    assert host.version_tuple(None) == ()
