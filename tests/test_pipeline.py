"""End-to-end: the real `dvc repro` in a temporary git repository holding a copy of the project."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, copy_raw

PROJECT_FILES = ["dvc.yaml", "params.yaml", "src", ".dvc/config", ".dvcignore", ".gitignore"]
STAGES = ["download", "preprocess", "train@mlp", "train@cnn", "evaluate@mlp", "evaluate@cnn"]
TINY = {
    "data": {"val_size": 500},
    "train": {"subset": 2000,
              "mlp": {"epochs": 1, "net": {"hidden": [32], "dropout": 0.1}},
              "cnn": {"epochs": 1, "net": {"widths": [4, 8, 8], "dropout": 0.0}}},
    "evaluate": {"gallery_size": 6},
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


def speedless(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "speed"}  # timings vary run to run; the rest may not


def test_repro_builds_everything_then_is_up_to_date(tiny_built, tiny):
    first = tiny_built[1]
    assert ran(first) == STAGES, first.stdout
    assert "download: train-images-idx3-ubyte: already present (md5 6bbc9ace898e44ae57da46a324031adb verified)" in first.stderr
    for out in ["models/mlp.pth", "models/cnn.pth", "metrics/mlp/confusion.csv", "metrics/cnn/misclassified.png",
                "metrics/cnn/train/metrics.json", "metrics/cnn/train/plots/metrics/val/acc.tsv",
                "data/processed/train.pt", "data/processed/stats.json"]:
        assert (tiny.path / out).exists(), out
    metrics = tiny.read_json("metrics/cnn.json")
    assert 0.5 < metrics["test"]["accuracy"] <= 1 and set(metrics["per_class"]) == {str(c) for c in range(10)}
    assert metrics["speed"]["throughput_img_s"] > 0
    confusion = (tiny.path / "metrics/cnn/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 10_001

    second = tiny.repro()
    assert "Data and pipelines are up to date." in second.stdout and ran(second) == []
    assert tiny.dvc("status").stdout.strip() == "Data and pipelines are up to date."

    shown = json.loads(tiny.dvc("metrics", "show", "--json").stdout)
    assert "metrics/cnn.json" in json.dumps(shown)
    plots = tiny.dvc("plots", "show", "--json").stdout
    assert "confusion" in plots and "misclassified.png" in plots


def test_changing_one_models_params_reruns_only_that_model(tiny):
    params = tiny.params()
    params["train"]["cnn"]["lr"] = 0.05
    tiny.set_params(params)
    assert ran(tiny.repro()) == ["train@cnn", "evaluate@cnn"]
    params["evaluate"]["gallery_size"] = 3
    tiny.set_params(params)
    assert ran(tiny.repro()) == ["evaluate@mlp", "evaluate@cnn"]


def test_editing_model_code_reruns_training_not_data_stages(tiny):
    with open(tiny.path / "src/models.py", "a") as f:
        f.write("\n# an edit\n")
    assert ran(tiny.repro()) == ["train@mlp", "train@cnn", "evaluate@mlp", "evaluate@cnn"]


def test_forced_reruns_on_cpu_are_identical(tiny):
    first = {m: (speedless(tiny.read_json(f"metrics/{m}.json")), tiny.md5(f"models/{m}.pth"),
                 tiny.read_json(f"metrics/{m}/train/metrics.json")["val"]) for m in ("mlp", "cnn")}
    tiny.repro("-f")
    second = {m: (speedless(tiny.read_json(f"metrics/{m}.json")), tiny.md5(f"models/{m}.pth"),
                  tiny.read_json(f"metrics/{m}/train/metrics.json")["val"]) for m in ("mlp", "cnn")}
    assert first == second


def test_invalid_params_fail_before_any_work_with_one_line(tiny):
    params = tiny.params()
    params["train"]["cnn"]["epochs"] = -3
    tiny.set_params(params)
    result = tiny.repro(check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error: params.yaml")]
    assert errors == ["error: params.yaml: train.cnn.epochs must be an integer >= 1, got -3 (int)"]
    assert not (tiny.path / "models/cnn.pth").exists()  # no stale or half-written weights
    assert not (tiny.path / "metrics/cnn/train/metrics.json").exists()


def test_a_corrupt_raw_file_is_refused(tiny):
    path = tiny.path / "data/raw/MNIST/raw/train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    before = tiny.md5("data/processed/train.pt")
    result = tiny.run(sys.executable, "-m", "src.preprocess", check=False)
    assert result.returncode == 2
    assert "train-labels-idx1-ubyte: MD5 mismatch" in result.stderr and "expected a25bea736e30d166cdddb491f175f624" in result.stderr
    assert tiny.md5("data/processed/train.pt") == before  # the old cache is left alone, not half-rewritten
    # dvc notices the damaged output and the download stage restores a verified copy
    assert ran(tiny.repro("download")) == ["download"]
    assert tiny.md5("data/raw/MNIST/raw/train-labels-idx1-ubyte") == "a25bea736e30d166cdddb491f175f624"


def test_exp_run_with_set_param_is_listed_by_exp_show(tiny):
    tiny.run("git", "add", "-A")
    tiny.run("git", "commit", "-q", "-m", "baseline")
    tiny.dvc("exp", "run", "-n", "two-epochs", "-S", "train.cnn.epochs=2")
    rows = json.loads(tiny.dvc("exp", "show", "--json").stdout)
    experiments = [exp for row in rows for exp in (row.get("experiments") or [])]
    (exp,) = [e for e in experiments if e.get("name") == "two-epochs"]
    data = exp["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["cnn"]["epochs"] == 2
    assert data["metrics"]["metrics/cnn.json"]["data"]["test"]["accuracy"] > 0


@pytest.mark.slow
def test_default_params_reach_the_accuracy_targets(tmp_path, raw_mnist):
    project = make_project(tmp_path, raw_mnist, None)
    project.repro()
    assert project.read_json("metrics/mlp.json")["test"]["accuracy"] >= 0.980
    assert project.read_json("metrics/cnn.json")["test"]["accuracy"] >= 0.995
