"""What a benchmark ran on, for its results files: the CPU's name and kind, the software versions.

Shared by the benchmarks, with RESULTS_DIR, where they all write. torch is imported only by the
functions that ask it, so that the serving benchmark's client stays light.
"""
import datetime
import platform
from pathlib import Path

RESULTS_DIR = Path("benchmarks/results")  # every benchmark's results files


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


def cpu_kind() -> str:
    """A file-name-safe name for the CPU kind: vendor, family and model (the VMs here all call
    themselves "Xeon" or "EPYC"), and which bf16 units it has, e.g. `intel-f6m106-nobf16`."""
    import torch

    fields = {}
    cpuinfo = Path("/proc/cpuinfo")
    for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else []):
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(fields.get("vendor_id"), platform.machine())
    capabilities = torch.cpu.get_capabilities()
    units = "amx" if capabilities.get("amx_bf16") else "avx512bf16" if capabilities.get("avx512_bf16") else "nobf16"
    return f"{vendor}-f{fields.get('cpu family', '?')}m{fields.get('model', '?')}-{units}"


def device_kind(info: dict) -> str:
    """What results files are named after: the CPU kind, or `cuda-<the GPU's name>` on a GPU."""
    return info["cpu_kind"] if info["device"] == "cpu" else "cuda-" + "-".join(info["gpu"].lower().split())


def hardware(device, precision="auto") -> dict:
    import torch

    from src.training import precision_name

    info = {"cpu": cpu_name(), "cpu_kind": cpu_kind(), "cpu_cores": torch.get_num_threads(), "torch": torch.__version__,
            "device": str(device), "date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "precision_ours": precision_name(precision, device), "precision_asked": precision}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
