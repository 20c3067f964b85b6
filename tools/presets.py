"""Named configurations: lists of `dvc exp run -S` overrides kept in presets/<name>.yaml.

    python -m tools.presets fast               # runs: dvc exp run -n fast -S ... (extra args pass through)
    python -m tools.presets best --queue

A preset is applied with DVC's own override parser, so it means exactly what `-S` means.
"""
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from src.config import PARAMS_FILE, load_params
from src.errors import PipelineError

PRESETS_DIR = Path("presets")


def overrides(name: str, presets_dir: Path = PRESETS_DIR) -> list[str]:
    path = Path(presets_dir) / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in Path(presets_dir).glob("*.yaml")))
        raise PipelineError(f"{path}: no such preset (known: {known})")
    preset = yaml.safe_load(path.read_text())
    if not isinstance(preset, dict) or not isinstance(preset.get("overrides"), list):
        raise PipelineError(f"{path}: expected a mapping with a list under 'overrides'")
    return [str(o) for o in preset["overrides"]]


def apply(name: str, params_file: Path = PARAMS_FILE, presets_dir: Path = PRESETS_DIR) -> dict:
    """The validated params that `dvc exp run` with this preset would use (params_file untouched)."""
    from dvc.utils.hydra import apply_overrides

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "params.yaml"
        shutil.copyfile(params_file, copy)
        apply_overrides(copy, overrides(name, presets_dir))
        return load_params(copy)


def main(name: str, *dvc_args: str) -> None:
    apply(name)  # fail here, with one line, rather than in the middle of an experiment
    command = [sys.executable, "-m", "dvc", "exp", "run", "-n", name]
    for override in overrides(name):
        command += ["-S", override]
    print(shlex.join([*command[2:], *dvc_args]), flush=True)   # as a user would type it, quoted: dvc exp run ...
    sys.exit(subprocess.call([*command, *dvc_args]))


if __name__ == "__main__":
    from src.cli import run_stage

    if len(sys.argv) < 2:
        sys.exit("usage: python -m tools.presets <preset name> [dvc exp run arguments]")
    run_stage(main, *sys.argv[1:])
