"""Stage `export@<model>`: the trained model as one self-contained ONNX file, checked against PyTorch.

    python -m src.export cnn

Writes models/<model>.onnx, which runs with onnxruntime alone (no torch, no code or params of
this repository):
- input `pixels`: float32, N x 1 x 28 x 28, raw intensities in [0, 1] (MNIST / 255: a white
  digit on a black background), any N;
- output `logits`: float32, N x 10, one unnormalised score per digit 0-9; the largest is the
  prediction, and softmax turns them into probabilities. A model with `several_digits` (the
  reader's classifier) has an eleventh, SEVERAL: the piece of ink is more than one digit.
The training split's normalisation, (pixels - mean) / std with data/processed/stats.json's
values, is part of the graph. Before anything is written, onnxruntime and PyTorch (fp32, CPU)
score the 10,000 test images: a single different prediction fails the stage. The check is
recorded in metrics/<model>/onnx.json (kept out of `dvc metrics`: it says the file is faithful,
not how good the model is).

The export and its check are src/onnx_export.py's, shared with the line model's export.
"""
import logging
import sys
from pathlib import Path

import torch
from torch import nn

from src.config import DIGITS, load_params, model_params
from src.data import load_split, load_stats
from src.fileio import write_bytes, write_json
from src.models import load_trained, outputs_of
from src.onnx_export import INPUT, OPSET, OUTPUT, InputSpec, Normalised, export_checked

log = logging.getLogger("export")

PIXELS = InputSpec(
    shape=(2, 1, 28, 28),  # 2, not 1: the exporter would fix a traced size of 1 as a constant
    doc="float32 N x 1 x 28 x 28: raw pixel intensities in [0, 1] (MNIST / 255), a white digit on black, "
        "size-normalised and centred as MNIST's are")


def logits_doc(classes: int) -> str:
    several = ", then of several digits (the piece of ink is more than one digit)" if classes > DIGITS else ""
    return (f"float32 N x {classes}: unnormalised scores of the digits 0-9{several}; the largest is the prediction "
            "(softmax: probabilities)")


def export_classifier(model: nn.Module, name: str, mean: float, std: float, images: torch.Tensor, labels: torch.Tensor,
                      where: Path) -> tuple[bytes, dict]:
    """A digit classifier with its normalisation, as ONNX bytes, checked on uint8 N x 28 x 28
    `images`; and the record of the check (what metrics/<model>/onnx.json holds)."""
    pixels = (images.float() / 255.0).unsqueeze(1)  # as a user's image reaches the file
    metadata = {"model": name, "arch": type(model).__name__, "mean": repr(mean), "std": repr(std)}
    doc = logits_doc(outputs_of(model))
    data, check = export_checked(Normalised(model, mean, std), PIXELS, pixels, lambda logits: logits.argmax(1).tolist(),
                                 where, "test images", doc, metadata)
    predictions = torch.tensor(check.readings)
    record = {"images": check.inputs, "same_predictions": check.inputs, "max_abs_logit_diff": check.max_abs_logit_diff,
              "test_accuracy": round(float((predictions == labels).double().mean()), 6),
              "bytes": len(data), "opset": OPSET, "input": f"{INPUT}: {PIXELS.doc}", "output": f"{OUTPUT}: {doc}"}
    return data, record


def main(name: str) -> None:
    cfg = model_params(load_params(), name)
    model = load_trained(cfg["arch"], cfg["net"], Path("models") / f"{name}.pth")
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
