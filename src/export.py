"""Stage `export@<model>`: the trained model as one self-contained ONNX file, checked against PyTorch.

    python -m src.export cnn

Writes models/<model>.onnx, which runs with onnxruntime alone (no torch, no code or params of
this repository):
- input `pixels`: float32, N x 1 x 28 x 28, raw intensities in [0, 1] (MNIST / 255: a white
  digit on a black background), any N;
- output `logits`: float32, N x 10, one unnormalised score per digit 0-9; the largest is the
  prediction, and softmax turns them into probabilities.
The training split's normalisation, (pixels - mean) / std with data/processed/stats.json's
values, is part of the graph. Before anything is written, onnxruntime and PyTorch (fp32, CPU)
score the 10,000 test images: a single different prediction fails the stage. The check is
recorded in metrics/<model>/onnx.json (kept out of `dvc metrics`: it says the file is faithful,
not how good the model is).

`to_onnx` takes any module and an `InputSpec`, so that other models (a reader of whole lines,
N x 1 x 28 x W) export the same way.
"""
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from src.config import load_params, model_params
from src.data import load_split, load_stats
from src.errors import PipelineError
from src.fileio import write_bytes, write_json
from src.models import build_model, load_weights

log = logging.getLogger("export")
# The exporter's optimiser logs every pass at INFO, which the stage's logging would print.
for noisy in ("onnxscript", "onnx_ir"):
    logging.getLogger(noisy).setLevel(logging.WARNING)

# 18: the newest opset that the pinned exporter writes natively (it converts older requests),
# and that onnxruntime, browsers' onnxruntime-web and mobile runtimes of recent years all run.
OPSET = 18
INPUT, OUTPUT = "pixels", "logits"
CHECK_BATCH = 1000


@dataclass(frozen=True)
class InputSpec:
    """A model's input: an example shape to trace with, which axes vary (axis -> name), and
    the documentation written into the file."""
    shape: tuple[int, ...]
    dynamic: dict[int, str] = field(default_factory=lambda: {0: "batch"})
    doc: str = ""


DIGITS = InputSpec(
    shape=(2, 1, 28, 28),  # 2, not 1: the exporter would fix a traced size of 1 as a constant
    doc="float32 N x 1 x 28 x 28: raw pixel intensities in [0, 1] (MNIST / 255), a white digit on black, "
        "size-normalised and centred as MNIST's are")
LOGITS_DOC = "float32 N x 10: unnormalised scores of the digits 0-9; the largest is the prediction (softmax: probabilities)"


class ExportError(PipelineError):
    """The exported file does not predict what the PyTorch model predicts."""


class Normalised(nn.Module):
    """A model that takes raw [0, 1] pixels: the training split's standardisation comes first,
    so that the exported file needs no statistics beside it."""

    def __init__(self, model: nn.Module, mean: float, std: float):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, pixels):
        return self.model((pixels - self.mean) / self.std)


def to_onnx(model: nn.Module, spec: InputSpec, output_doc: str = "", metadata: dict[str, str] | None = None) -> bytes:
    """The ONNX file's bytes for `model` in eval mode: input INPUT as `spec` says, output OUTPUT.
    The same weights give the same bytes (the exporter's output does not depend on the run)."""
    model = model.eval()
    example = torch.rand(spec.shape, generator=torch.Generator().manual_seed(0))
    dims = {axis: torch.export.Dim(name) for axis, name in spec.dynamic.items()}
    program = torch.onnx.export(model, (example,), input_names=[INPUT], output_names=[OUTPUT],
                                dynamic_shapes=(dims,), opset_version=OPSET, dynamo=True, verbose=False)
    proto = program.model_proto
    # Each node records the Python stack it was traced from, with absolute paths: the bytes would
    # depend on where the repository is checked out (and a shared file would show it).
    for node in proto.graph.node:
        kept = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    proto.graph.input[0].doc_string, proto.graph.output[0].doc_string = spec.doc, output_doc
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


@torch.no_grad()
def torch_logits(model: nn.Module, pixels: torch.Tensor, batch: int = CHECK_BATCH) -> np.ndarray:
    model.eval()
    return torch.cat([model(pixels[i:i + batch]) for i in range(0, len(pixels), batch)]).numpy()


def onnx_logits(data: bytes, pixels: np.ndarray, batch: int = CHECK_BATCH) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT], {INPUT: pixels[i:i + batch]})[0] for i in range(0, len(pixels), batch)])


def compare(model: nn.Module, data: bytes, pixels: torch.Tensor) -> dict:
    """PyTorch's and onnxruntime's logits and predictions for the same inputs."""
    expected, got = torch_logits(model, pixels), onnx_logits(data, pixels.numpy())
    different = int((expected.argmax(1) != got.argmax(1)).sum())
    return {"images": len(pixels), "different_predictions": different,
            "max_abs_logit_diff": float(np.abs(expected - got).max()), "predictions": got.argmax(1)}


def export_checked(model: nn.Module, spec: InputSpec, pixels: torch.Tensor, where: Path,
                   output_doc: str = "", metadata: dict[str, str] | None = None) -> tuple[bytes, dict]:
    """`model` exported, and its agreement with PyTorch on `pixels`; ExportError, naming `where`,
    if any prediction differs."""
    data = to_onnx(model, spec, output_doc, metadata)
    check = compare(model, data, pixels)
    if check["different_predictions"]:
        raise ExportError(f"{where}: onnxruntime's predictions differ from PyTorch's on {check['different_predictions']} "
                          f"of {check['images']} test images (largest logit difference "
                          f"{check['max_abs_logit_diff']:.3g}); nothing written")
    return data, check


def export_classifier(model: nn.Module, name: str, mean: float, std: float, images: torch.Tensor, labels: torch.Tensor,
                      where: Path) -> tuple[bytes, dict]:
    """A digit classifier with its normalisation, as ONNX bytes, checked on uint8 N x 28 x 28
    `images`; and the record of the check (what metrics/<model>/onnx.json holds)."""
    pixels = (images.float() / 255.0).unsqueeze(1)  # as a user's image reaches the file
    metadata = {"model": name, "arch": type(model).__name__, "mean": repr(mean), "std": repr(std)}
    data, check = export_checked(Normalised(model, mean, std), DIGITS, pixels, where, LOGITS_DOC, metadata)
    record = {"images": check["images"], "same_predictions": check["images"] - check["different_predictions"],
              "max_abs_logit_diff": check["max_abs_logit_diff"],
              "test_accuracy": round(float((check["predictions"] == labels.numpy()).mean()), 6),
              "bytes": len(data), "opset": OPSET, "input": f"{INPUT}: {DIGITS.doc}", "output": f"{OUTPUT}: {LOGITS_DOC}"}
    return data, record


def main(name: str) -> None:
    cfg = model_params(load_params(), name)
    model = load_weights(build_model(cfg["arch"], cfg["net"]), Path("models") / f"{name}.pth")
    mean, std = load_stats()
    images, labels = load_split("test")
    out = Path("models") / f"{name}.onnx"
    data, record = export_classifier(model, name, mean, std, images, labels, out)
    write_bytes(out, data)
    write_json(Path("metrics") / name / "onnx.json", record)
    log.info("%s: %s (%d KB, opset %d): the same predictions as PyTorch on all %d test images, test accuracy "
             "%.2f%%; largest logit difference %.2g", name, out, len(data) // 1024, OPSET, record["images"],
             100 * record["test_accuracy"], record["max_abs_logit_diff"])


if __name__ == "__main__":
    from src.cli import run_stage

    if len(sys.argv) != 2:
        sys.exit("usage: python -m src.export <model section of params.yaml, e.g. cnn>")
    run_stage(main, sys.argv[1])
