"""End-to-end: the real `dvc repro` in a temporary git repository holding a copy of the project."""
import json
import sys

import pytest

from tests.conftest import STAGES, make_project, ran, would_run


def test_repro_builds_everything_then_is_up_to_date(tiny_built, tiny):
    first = tiny_built[1]
    assert ran(first) == STAGES, first.stdout
    assert "download: train-images-idx3-ubyte: already present (md5 6bbc9ace898e44ae57da46a324031adb verified)" in first.stderr
    for out in ["models/mlp.pth", "models/cnn.pth", "models/mlp.onnx", "models/cnn.onnx", "metrics/mlp/confusion.csv", "metrics/cnn/misclassified.png",
                "metrics/cnn/train/metrics.json", "metrics/cnn/train/plots/metrics/val/acc.tsv",
                "data/processed/train.pt", "data/processed/stats.json"]:
        assert (tiny.path / out).exists(), out
    metrics = tiny.read_json("metrics/cnn.json")
    assert 0.5 < metrics["test"]["accuracy"] <= 1 and 0.5 < metrics["test_tta"]["accuracy"] <= 1
    assert tiny.read_json("metrics/cnn/speed.json")["throughput_img_s"] > 0
    per_class = (tiny.path / "metrics/cnn/per_class.csv").read_text().splitlines()
    assert per_class[0] == "class,precision,recall,f1" and len(per_class) == 11
    confusion = (tiny.path / "metrics/cnn/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 10_001
    for model in ("mlp", "cnn"):  # the ONNX file predicts what PyTorch does, so it scores what evaluate did
        check = tiny.read_json(f"metrics/{model}/onnx.json")
        assert check["same_predictions"] == check["images"] == 10_000 and check["max_abs_logit_diff"] < 1e-3
        assert check["test_accuracy"] == tiny.read_json(f"metrics/{model}.json")["test"]["accuracy"]
        assert check["bytes"] == (tiny.path / f"models/{model}.onnx").stat().st_size

    second = tiny.repro()
    assert "Data and pipelines are up to date." in second.stdout and ran(second) == []
    assert tiny.dvc("status").stdout.strip() == "Data and pipelines are up to date."

    shown = json.loads(tiny.dvc("metrics", "show", "--json").stdout)
    assert "metrics/cnn.json" in json.dumps(shown)
    plots = tiny.dvc("plots", "show", "--json").stdout
    assert "confusion" in plots and "misclassified.png" in plots and "per_class.csv" in plots


def test_changing_one_models_params_reruns_only_that_model(tiny):
    params = tiny.params()
    params["train"]["cnn"]["lr"] = 0.05
    tiny.set_params(params)
    # the reader's classifier starts from cnn's weights, and the reader scored on other writers reads it
    assert would_run(tiny) == ["train@cnn", "evaluate@cnn", "export@cnn", "train_reader", "evaluate@reader",
                               "export@reader", "evaluate_writers"]
    tiny.run("git", "checkout", "params.yaml")
    params = tiny.params()
    params["evaluate"]["gallery_size"] = 3
    tiny.set_params(params)
    assert would_run(tiny) == ["evaluate@mlp", "evaluate@cnn", "evaluate@reader"]


def test_editing_model_code_reruns_training_not_data_stages(tiny):
    with open(tiny.path / "src/models.py", "a") as f:
        f.write("\n# an edit\n")
    # the line model's stages share none of the classifiers' code
    assert would_run(tiny) == ["train@mlp", "train@cnn", "evaluate@mlp", "evaluate@cnn", "export@mlp", "export@cnn",
                               "train_reader", "evaluate@reader", "export@reader", "evaluate_writers"]


def test_forced_reruns_on_cpu_are_identical(tiny):
    def outputs():
        return {m: (tiny.read_json(f"metrics/{m}.json"), tiny.md5(f"models/{m}.pth"),
                    tiny.read_json(f"metrics/{m}/train/metrics.json")["val"]) for m in ("mlp", "cnn")}

    first = outputs()
    tiny.repro("-f", "-s", "train@mlp", "train@cnn")
    # the same weights: the exports are not redone; evaluate reads the new training time
    assert ran(tiny.repro()) == ["evaluate@mlp", "evaluate@cnn"]
    assert outputs() == first


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


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two real trainings: minutes on a CPU without native bf16
def test_default_params_reach_the_accuracy_targets(tmp_path, raw_mnist):
    project = make_project(tmp_path, raw_mnist, None)
    # The classifiers only: the number reader's ~5 minutes of training are measured by `make repro`
    # (metrics/numbers.json), and its stages run end to end in the tiny build.
    project.repro("evaluate@mlp", "evaluate@cnn")
    assert project.read_json("metrics/mlp.json")["test"]["accuracy"] >= 0.980
    assert project.read_json("metrics/cnn.json")["test"]["accuracy"] >= 0.995
