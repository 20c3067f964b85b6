"""Stage `export_numbers`: the line model as one self-contained ONNX file, checked against PyTorch.

    python -m src.export_numbers

Writes models/numbers.onnx, which runs with onnxruntime alone:
- input `pixels`: float32 N x 1 x 28 x W, any N and any W that is a multiple of 4: a line of
  raw intensities in [0, 1] (white ink on black, digits about 20 px tall, as
  digit_reader/line.py makes them); the training split's normalisation is inside;
- output `logits`: float32 N x W/4 x 11, per 4 columns the scores of the digits 0-9 and of CTC's
  blank (class 10); greedy decoding (src/ctc.py) reads them. The temperature and the
  uncertain threshold are in the file's metadata.
Before anything is written, onnxruntime and PyTorch read the evaluation's fixed test numbers
(src/number_images.py's kind_sets: 4-digit numbers of each kind): a single different reading
fails the stage (src/onnx_export.py, as for the digit classifiers). The check is recorded in
metrics/numbers/onnx.json.
"""
import logging
from pathlib import Path

import torch

from src.config import load_params
from src.data import load_split, load_stats
from src.fileio import write_bytes, write_json
from src.number_images import concatenate, kind_sets
from src.number_model import STRIDE, WEIGHTS, greedy_decode, load_line_model
from src.onnx_export import OPSET, InputSpec, Normalised, export_checked

log = logging.getLogger("export_numbers")
OUT = Path("models/numbers.onnx")
LINES = InputSpec(
    shape=(2, 1, 28, 64),  # 2 and 64, not 1 and 28: the exporter would fix a traced size of 1 as a constant
    dynamic={0: "batch", 3: "width"},
    doc="float32 N x 1 x 28 x W, W a multiple of 4: a line of raw pixel intensities in [0, 1], white ink on black, "
        "digits about 20 px tall and centred on row 14")
LOGITS_DOC = (f"float32 N x W/{STRIDE} x 11: per {STRIDE} columns, scores of the digits 0-9 and of CTC's blank (10); "
              "greedy decoding: best class per column, repeats merged, blanks dropped")


def export_line_model(model, mean: float, std: float, numbers, where: Path = OUT) -> tuple[bytes, dict]:
    """The line model with its normalisation, as ONNX bytes, checked against PyTorch on `numbers`
    (src/number_images.py's Numbers); and the record of the check. ExportError, naming `where`,
    if onnxruntime reads any number differently."""
    pixels = (numbers.images.float() / 255).unsqueeze(1)
    metadata = {"model": "numbers", "arch": type(model).__name__, "temperature": repr(float(model.temperature)),
                "threshold": repr(float(model.threshold)), "mean": repr(mean), "std": repr(std)}

    def read(logits: torch.Tensor) -> list[str]:
        return [reading.digits for reading in greedy_decode(logits, numbers.widths)]

    data, check = export_checked(Normalised(model, mean, std), LINES, pixels, read, where, "test numbers", LOGITS_DOC,
                                 metadata)
    return data, {"numbers": check.inputs, "same_readings": check.inputs, "max_abs_logit_diff": check.max_abs_logit_diff,
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
    from src.cli import run_stage_command

    run_stage_command(main)
