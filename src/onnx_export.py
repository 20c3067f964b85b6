"""One way to export a model to ONNX and check it: both export stages use it (src/export.py for
the digit classifiers, src/export_numbers.py for the line model).

`to_onnx` takes any module and an `InputSpec`; `export_checked` refuses a file unless
onnxruntime reads a set of inputs exactly as PyTorch does. `Normalised` puts the training
split's standardisation into the graph, so that a file takes raw [0, 1] pixels and needs no
statistics beside it.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from src.errors import PipelineError

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


class ExportError(PipelineError):
    """The exported file does not read its inputs as the PyTorch model does."""


class Normalised(nn.Module):
    """A model that takes raw [0, 1] pixels: the training split's standardisation comes first."""

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
def torch_logits(model: nn.Module, pixels: torch.Tensor, batch: int = CHECK_BATCH) -> torch.Tensor:
    model.eval()
    return torch.cat([model(pixels[i:i + batch]) for i in range(0, len(pixels), batch)])


def onnx_logits(data: bytes, pixels: torch.Tensor, batch: int = CHECK_BATCH) -> torch.Tensor:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = pixels.numpy()
    return torch.from_numpy(np.concatenate([session.run([OUTPUT], {INPUT: x[i:i + batch]})[0]
                                            for i in range(0, len(x), batch)]))


@dataclass
class Check:
    """A passed check: every reading the same as PyTorch's."""
    inputs: int
    max_abs_logit_diff: float
    readings: list  # onnxruntime's


def export_checked(model: nn.Module, spec: InputSpec, pixels: torch.Tensor, read: Callable[[torch.Tensor], list],
                   where: Path, what: str, output_doc: str = "", metadata: dict[str, str] | None = None) -> tuple[bytes, Check]:
    """`model` exported, and its agreement with PyTorch on `pixels`, compared by what `read` makes
    of the logits (a digit per image, the digits of a line). ExportError, naming `where` and
    `what` the inputs are, if any reading differs."""
    data = to_onnx(model, spec, output_doc, metadata)
    expected, got = torch_logits(model, pixels), onnx_logits(data, pixels)
    readings = read(got)
    different = sum(a != b for a, b in zip(read(expected), readings))
    largest = float((expected - got).abs().max())
    if different:
        raise ExportError(f"{where}: onnxruntime's readings differ from PyTorch's on {different} of {len(pixels)} "
                          f"{what} (largest logit difference {largest:.3g}); nothing written")
    return data, Check(len(pixels), largest, readings)
