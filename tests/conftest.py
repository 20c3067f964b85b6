import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the stages resolve params.yaml, data/ and models/ from the project root

from src.download import CANONICAL, fetch, is_valid  # noqa: E402
from src.fileio import RAW_DIR  # noqa: E402


@pytest.fixture(scope="session")
def raw_mnist(request) -> Path:
    """A folder with the four verified MNIST files: the project's own if `dvc repro` made them,
    else fetched once into pytest's cache (kept between runs, outside the project's outputs)."""
    if all(is_valid(RAW_DIR / name, name) for name in CANONICAL):
        return ROOT / RAW_DIR
    cached = Path(request.config.cache.mkdir("mnist")) / "MNIST" / "raw"  # torchvision's layout, as RAW_DIR
    fetch(cached)
    return cached


def copy_raw(raw_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in CANONICAL:
        shutil.copyfile(raw_dir / name, target / name)


# --- End-to-end projects: a copy of this project in a temporary git repository ---

PROJECT_FILES = ["dvc.yaml", "params.yaml", "src", "presets", ".dvc/config", ".dvcignore", ".gitignore"]
STAGES = ["download", "preprocess", "train@mlp", "train@cnn", "evaluate@mlp", "evaluate@cnn"]
TINY = {
    "data": {"val_size": 500},
    "train": {"subset": 2000,
              "mlp": {"epochs": 1, "net": {"hidden": [32], "dropout": 0.1}},
              "cnn": {"epochs": 1, "net": {"widths": [4, 8, 8], "dropout": 0.0, "stem": "stride"},
                      "rotate": 5, "scale": 0.05}},
    "evaluate": {"gallery_size": 6, "tta": True},
}


def merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and key != "net" else value
    return merged


class Project:
    def __init__(self, path: Path):
        self.path = path
        venv_bin = str(Path(sys.executable).parent)  # stage commands call `python`: ours
        self.env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ["PATH"],
                    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}

    def run(self, *args, check=True):
        result = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args, check=True):
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def repro(self, *args, check=True):
        return self.dvc("repro", *args, check=check)

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, params: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def read_json(self, relative: str) -> dict:
        return json.loads((self.path / relative).read_text())

    def md5(self, relative: str) -> str:
        return hashlib.md5((self.path / relative).read_bytes()).hexdigest()


def ran(result) -> list[str]:
    """The stages `dvc repro` ran, from its output."""
    return [s for s in STAGES if f"Running stage '{s}'" in result.stdout]


def make_project(tmp_path: Path, raw_mnist: Path, params_override: dict | None) -> Project:
    project = Project(tmp_path / "project")
    for name in PROJECT_FILES:
        source, target = ROOT / name, project.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
    if params_override:
        project.set_params(merge(project.params(), params_override))
    project.run("git", "init", "-q", "-b", "main")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "project")
    # As after `dvc pull`: present, untracked by git, and verified by the download stage, not trusted.
    copy_raw(raw_mnist, project.path / "data/raw/MNIST/raw")
    return project


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory, raw_mnist):
    """The tiny project after its first `dvc repro`, built once; tests work on copies of it."""
    project = make_project(tmp_path_factory.mktemp("tiny"), raw_mnist, TINY)
    return project, project.repro()


@pytest.fixture
def tiny(tiny_built, tmp_path) -> Project:
    built, _ = tiny_built
    copy = Project(tmp_path / "project")
    shutil.copytree(built.path, copy.path, symlinks=True)
    return copy
