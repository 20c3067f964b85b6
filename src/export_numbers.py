"""Stage `export_numbers`: the line model as one self-contained ONNX file, checked against PyTorch.

    python -m src.export_numbers

Writes models/numbers.onnx, which runs with onnxruntime alone:
- input `pixels`: float32 N x 1 x 28 x W, any N and any W that is a multiple of 4: a line of
  raw intensities in [0, 1] (white ink on black, digits about 20 px tall, as
  digit_reader/line.py makes them); the training split's normalisation is inside;
- output `logits`: float32 N x W/4 x 11, per 4 columns the scores of the digits 0-9 and of CTC's
  blank (class 10); greedy decoding (src/number_model.py) reads them. The temperature and the
  uncertain threshold are in the file's metadata.
Before anything is written, onnxruntime and PyTorch read the evaluation's fixed test numbers
(src/evaluate_numbers.py's 4-digit numbers of each kind): a single different reading fails the
stage. The check is recorded in metrics/numbers/onnx.json.
"""
import logging
from pathlib import Path

import torch

from src.config import load_params
from src.data import load_split, load_stats
from src.errors import PipelineError
from src.evaluate_numbers import kind_sets
from src.export import OPSET, InputSpec, Normalised, to_onnx
from src.fileio import write_bytes, write_json
from src.number_images import concatenate
from src.number_model import STRIDE, greedy_decode, load_line_model
from src.train_numbers import WEIGHTS

log = logging.getLogger("export_numbers")
OUT = Path("models/numbers.onnx")
LINES = InputSpec(
    shape=(2, 1, 28, 64),  # 2 and 64, not 1 and 28: the exporter would fix a traced size of 1 as a constant
    dynamic={0: "batch", 3: "width"},
    doc="float32 N x 1 x 28 x W, W a multiple of 4: a line of raw pixel intensities in [0, 1], white ink on black, "
        "digits about 20 px tall and centred on row 14")
LOGITS_DOC = (f"float32 N x W/{STRIDE} x 11: per {STRIDE} columns, scores of the digits 0-9 and of CTC's blank (10); "
              "greedy decoding: best class per column, repeats merged, blanks dropped")


def onnx_logits(data: bytes, pixels: torch.Tensor) -> torch.Tensor:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"pixels": pixels.numpy()})[0])


def export_line_model(model, mean: float, std: float, numbers, where: Path = OUT) -> tuple[bytes, dict]:
    """The line model with its normalisation, as ONNX bytes, checked against PyTorch on `numbers`
    (src/number_images.py's Numbers); and the record of the check. PipelineError, naming `where`,
    if onnxruntime reads any number differently."""
    pixels = (numbers.images.float() / 255).unsqueeze(1)
    wrapped = Normalised(model, mean, std).eval()
    metadata = {"model": "numbers", "arch": type(model).__name__, "temperature": repr(float(model.temperature)),
                "threshold": repr(float(model.threshold)), "mean": repr(mean), "std": repr(std)}
    data = to_onnx(wrapped, LINES, LOGITS_DOC, metadata)
    with torch.no_grad():
        expected = wrapped(pixels)
    got = onnx_logits(data, pixels)
    differ = sum(a.digits != b.digits for a, b in zip(greedy_decode(expected, numbers.widths),
                                                       greedy_decode(got, numbers.widths)))
    largest = float((expected - got).abs().max())
    if differ:
        raise PipelineError(f"{where}: onnxruntime reads {differ} of {len(numbers)} test numbers differently from "
                            f"PyTorch (largest logit difference {largest:.3g}); nothing written")
    return data, {"numbers": len(numbers), "same_readings": len(numbers), "max_abs_logit_diff": largest,
                  "bytes": len(data), "opset": OPSET}


def main() -> None:
    params = load_params()
    model = load_line_model(params["numbers"]["net"], WEIGHTS)
    mean, std = load_stats()
    numbers = concatenate(list(kind_sets(*load_split("test"), params["numbers"]["evaluate"]).values()))
    data, record = export_line_model(model, mean, std, numbers)
    write_bytes(OUT, data)
    write_json(Path("metrics/numbers/onnx.json"), record)
    log.info("%s (%d KB, opset %d): the same readings as PyTorch on all %d test numbers; largest logit "
             "difference %.2g", OUT, len(data) // 1024, OPSET, len(numbers), record["max_abs_logit_diff"])


if __name__ == "__main__":
    from src.cli import run_stage

    run_stage(main)
