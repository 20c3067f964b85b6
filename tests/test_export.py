"""The export stage (src/export.py, through src/onnx_export.py): a self-contained ONNX file that
predicts exactly what PyTorch does, with the same bytes for the same weights, refused with one line
when it would not."""
import copy
import json
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import yaml
from torch import nn

from src import export, onnx_export
from src.cli import run_stage
from src.config import model_params
from src.models import load_trained
from tests.conftest import ROOT


@pytest.fixture
def stage_project(tmp_path, reader_project, mnist_test_digits, monkeypatch):
    """What the export stage reads, as `dvc repro` leaves it: params.yaml, models/<model>.pth,
    data/processed/test.pt and stats.json; the stage's working directory."""
    for name in ("params.yaml", "models/cnn.pth", "models/mlp.pth", "models/reader.pth", "data/processed/stats.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(reader_project / name, tmp_path / name)
    images, labels = mnist_test_digits
    torch.save({"images": torch.from_numpy(images), "labels": torch.from_numpy(labels)}, tmp_path / "data/processed/test.pt")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def quick_model(project, name: str) -> nn.Module:
    cfg = model_params(yaml.safe_load((project / "params.yaml").read_text()), name)
    return load_trained(cfg["arch"], cfg["net"], project / "models" / f"{name}.pth").eval()


@pytest.mark.parametrize("name", ["cnn", "mlp", "reader"])
def test_the_stage_writes_a_file_that_predicts_what_pytorch_does(stage_project, mnist_test_digits, name, caplog):
    caplog.set_level("INFO")
    run_stage(export.main, name)
    data = (stage_project / f"models/{name}.onnx").read_bytes()
    record = json.loads((stage_project / f"metrics/{name}/onnx.json").read_text())
    assert record["images"] == record["same_predictions"] == 10_000
    assert 0 <= record["max_abs_logit_diff"] < 1e-3 and record["bytes"] == len(data) and record["opset"] == onnx_export.OPSET
    assert "the same predictions as PyTorch on all 10000 test images" in caplog.text and "largest logit difference" in caplog.text

    # onnxruntime alone, on raw [0, 1] pixels: the normalisation is inside the file
    images, labels = mnist_test_digits
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    (given,), (got,) = session.get_inputs(), session.get_outputs()
    assert (given.name, given.shape, given.type) == ("pixels", ["batch", 1, 28, 28], "tensor(float)")
    outputs = 11 if name == "reader" else 10   # the reader's classifier: the digits, then several digits
    assert (got.name, got.shape) == ("logits", ["batch", outputs])
    pixels = images[:, None].astype(np.float32) / 255
    predictions = session.run(["logits"], {"pixels": pixels})[0].argmax(1)
    mean, std = (json.loads((stage_project / "data/processed/stats.json").read_text())[k] for k in ("mean", "std"))
    with torch.no_grad():
        expected = quick_model(stage_project, name)((torch.from_numpy(pixels) - mean) / std).argmax(1).numpy()
    assert (predictions == expected).all()
    assert record["test_accuracy"] == round(float((predictions == labels).mean()), 6) > 0.8
    for batch in (1, 7):  # any batch size
        assert (session.run(["logits"], {"pixels": pixels[:batch]})[0].argmax(1) == expected[:batch]).all()
    described = onnx.load_from_string(data)
    assert "white digit on black" in described.graph.input[0].doc_string and "digits 0-9" in described.graph.output[0].doc_string
    assert ("several digits" in described.graph.output[0].doc_string) == (name == "reader")
    assert {p.key: p.value for p in described.metadata_props}["model"] == name


def test_the_same_weights_give_the_same_bytes_wherever_the_code_lies(stage_project):
    """Nothing of the run or of the checkout is in the file (the exporter writes the absolute
    paths of the traced code into it; the stage drops them). tests/test_pipeline.py reruns the
    stage from another checkout."""
    run_stage(export.main, "cnn")
    first = (stage_project / "models/cnn.onnx").read_bytes()
    run_stage(export.main, "cnn")
    assert (stage_project / "models/cnn.onnx").read_bytes() == first
    assert str(ROOT).encode() not in first and b".py" not in first


def test_a_file_that_predicts_otherwise_fails_the_stage_with_one_line_and_writes_nothing(stage_project, monkeypatch, capsys):
    """The check compares real predictions: an export of other weights (the last layer's biases
    moved) must be refused."""
    faithful = onnx_export.to_onnx

    def unfaithful(model, *args, **kwargs):
        other = copy.deepcopy(model)  # the Normalised wrapper of the trained FastCNN
        with torch.no_grad():
            other.model.classifier.bias[3] += 5.0
        return faithful(other, *args, **kwargs)

    monkeypatch.setattr(onnx_export, "to_onnx", unfaithful)
    with pytest.raises(SystemExit) as stop:
        run_stage(export.main, "cnn")
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: models/cnn.onnx: onnxruntime's readings differ from PyTorch's on ")
    assert "of 10000 test images" in line and line.endswith("nothing written")
    assert not (stage_project / "models/cnn.onnx").exists() and not (stage_project / "metrics/cnn/onnx.json").exists()
    assert not list((stage_project / "models").glob(".cnn.onnx*"))


class LineReader(nn.Module):
    """A stand-in for a reader of whole lines: any width in, one score per column out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Conv1d(4 * 28, 11, 1)

    def forward(self, x):
        features = torch.relu(self.conv(x))
        return self.head(features.flatten(1, 2))


def test_any_model_exports_with_its_input_spec_such_as_lines_of_any_width():
    torch.manual_seed(0)
    model = LineReader().eval()
    spec = onnx_export.InputSpec(shape=(2, 1, 28, 56), dynamic={0: "batch", 3: "width"}, doc="a line of digits")
    data = onnx_export.to_onnx(model, spec)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 1, 28, "width"]
    for width in (40, 131):
        pixels = torch.rand(3, 1, 28, width)
        got = session.run(["logits"], {"pixels": pixels.numpy()})[0]
        with torch.no_grad():
            assert got.shape == (3, 11, width) and np.abs(got - model(pixels).numpy()).max() < 1e-4
    assert onnx_export.to_onnx(model, spec) == data


def test_the_stage_needs_no_torch_to_run_its_output(stage_project, mnist_test_digits, tmp_path, python_process):
    """The file is enough: a Python with numpy and onnxruntime only reads it."""

    run_stage(export.main, "cnn")
    images, labels = mnist_test_digits
    np.save(tmp_path / "digits.npy", images[:1000])
    code = ("import sys, numpy, onnxruntime; s = onnxruntime.InferenceSession(sys.argv[1]); "
            "x = numpy.load(sys.argv[2])[:, None].astype(numpy.float32) / 255; "
            "print(s.run(['logits'], {'pixels': x})[0].argmax(1).tolist()); assert 'torch' not in sys.modules")
    result = python_process("-c", code, stage_project / "models/cnn.onnx", tmp_path / "digits.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.mean(np.array(json.loads(result.stdout)) == labels[:1000]) > 0.95
