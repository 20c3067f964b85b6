"""What a benchmark ran on, for its results files: the CPU's name and kind, the software versions,
and the git commit of the code measured.

Shared by the benchmarks, with RESULTS_DIR, where they all write. torch is imported only by the
functions that ask it, so that the serving benchmark's client stays light.
"""
import datetime
import platform
import subprocess
from pathlib import Path

RESULTS_DIR = Path("benchmarks/results")  # every benchmark's results files
PROJECT = Path(__file__).resolve().parent.parent  # the checkout whose code the benchmarks run


def git_commit(root: Path = PROJECT) -> str | None:
    """The commit `root` has checked out, with `-dirty` appended when a tracked file differs from
    it (untracked files, and the results files a run writes, aside), so that a results file says
    what code it measured. None where that cannot be known: `root` is not the top of a git
    checkout (an exported copy, a tarball), or git is missing."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)

    try:
        top = git("rev-parse", "--show-toplevel")
        head = git("rev-parse", "--verify", "HEAD")
        if top.returncode or head.returncode or Path(top.stdout.strip()).resolve() != Path(root).resolve():
            return None
        status = git("status", "--porcelain", "--untracked-files=no", "--", ".", f":(exclude){RESULTS_DIR.as_posix()}")
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = status.returncode != 0 or bool(status.stdout.strip())  # unknown counts as dirty
    return head.stdout.strip() + ("-dirty" if dirty else "")


def cpu_name() -> str:
    return cpuinfo_fields().get("model name") or platform.processor()


def cpu_kind() -> str:
    """A file-name-safe name for the CPU kind: vendor, family and model (the VMs here all call
    themselves "Xeon" or "EPYC"), and which bf16 units it has, e.g. `intel-f6m106-nobf16`."""
    fields = cpuinfo_fields()
    vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(fields.get("vendor_id"), platform.machine())
    capabilities = cpu_capabilities()
    units = "amx" if capabilities.get("amx_bf16") else "avx512bf16" if capabilities.get("avx512_bf16") else "nobf16"
    return f"{vendor}-f{fields.get('cpu family', '?')}m{fields.get('model', '?')}-{units}"


def cpuinfo_fields() -> dict:
    """/proc/cpuinfo's fields for the first CPU ({} where there is none)."""
    fields = {}
    cpuinfo = Path("/proc/cpuinfo")
    for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else []):
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_capabilities() -> dict:
    """The CPU's instruction sets as torch.cpu.get_capabilities() names them. Under a torch that
    lacks it (older than the pinned one: a GPU machine's own, say), the kernel's flags, which name
    avx512_bf16 and amx_bf16 the same way."""
    import torch

    if hasattr(torch.cpu, "get_capabilities"):
        return dict(torch.cpu.get_capabilities())
    return dict.fromkeys(cpuinfo_fields().get("flags", "").split(), True)


def sized_variant(parser, args, names: list[str]) -> str:
    """`-<option>-<value>` for each of the options `names` that `args` sets to other than its
    default: a quick or partial run is a results file of its own, and never replaces the full run
    that the docs quote."""
    return "".join(f"-{name.replace('_', '-')}-{getattr(args, name)}".replace(",", "+")
                   for name in names if getattr(args, name) != parser.get_default(name))


def device_kind(info: dict) -> str:
    """What results files are named after: the CPU kind, or `cuda-<the GPU's name>` on a GPU."""
    return info["cpu_kind"] if info["device"] == "cpu" else "cuda-" + "-".join(info["gpu"].lower().split())


def hardware(device, precision="auto") -> dict:
    import torch

    from src.training import precision_name

    info = {"cpu": cpu_name(), "cpu_kind": cpu_kind(), "cpu_cores": torch.get_num_threads(), "torch": torch.__version__,
            "device": str(device), "date": datetime.date.today().isoformat(), "commit": git_commit(),
            "python": platform.python_version(),
            "precision_ours": precision_name(precision, device), "precision_asked": precision}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
