"""Reading a whole number: the line model, and the per-digit classifier where digits stand apart.

The line model (src/number_model.py) reads digits that touch or overlap, which segmentation into
connected components cannot split. The per-digit classifier is better on a digit that stands
alone. So both read the image, and the line model's count of digits decides, per connected
component of ink (digit_reader/image.py), how many digits it holds:

- as many digits as pieces, or fewer: every piece is a digit cleanly apart, read by the
  classifier alone, exactly as before the line model existed;
- more digits than pieces: the extra digits go, one at a time, to the piece that is widest for
  the digits it already holds (touching digits make a wide piece); in reading order, a piece
  holding two or more takes that many of the line model's digits, each with an equal share of
  the piece's box; the others stay with the classifier. Unless the line model is unsure of the
  whole number (its confidence under its calibrated threshold) and the piece is no wider than
  one digit (SPLIT_ASPECT times its height): unsure, it sometimes reads one digit as two, which
  would make a separated number read worse than with the classifier alone.
- the image is one piece of ink: an image of one digit must read as well as with the classifier
  alone, and the line model sometimes reads a wide digit (a flat 2 or 4) as two, sure or not. So
  a lone piece is split into n digits only if it is at least max(ALONE_ASPECT * n, ALONE_MIN)
  times as wide as tall: a number written in one continuous line is split, one wide digit is
  not (nor, as before the line model, two touching digits standing alone but for a wide pair).

Counting, not positions: CTC puts a digit's spike anywhere on or beside the digit, so the
spikes' columns say little about which piece a digit belongs to.

A digit read by the line model is also uncertain when the whole line's calibrated confidence is
under the threshold chosen on validation numbers (src/number_calibration.py).
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_reader.image import digits_in
from digit_reader.line import Line, line_of
from digit_reader.runtimes import REBUILD, ModelError, first_line, onnx_session
from src.ctc import Reading, greedy_decode

SPLIT_ASPECT = 1.1   # MNIST's digits are at most about as wide as tall; two touching ones are wider
ALONE_ASPECT = 0.4   # a lone piece split into n digits must be this many times n as wide as tall,
ALONE_MIN = 1.8      # and at least this: a single MNIST digit (longer side 20 px, rarely under 12) is at most ~1.7


@dataclass
class Part:
    probs: np.ndarray           # the 10 digit probabilities
    box: tuple                  # x0, y0, x1, y1 in the image's pixels
    line_uncertain: bool        # read by the line model, whose whole reading is under its threshold
    source: str                 # "digit" (the classifier) or "line" (the line model)


class LineModel:
    """The line model in `runtime`: `torch` (models/numbers.pth, built from params.yaml's
    `numbers.net`, normalised with data/processed/stats.json) or `onnx` (models/numbers.onnx
    alone: normalisation inside, temperature and threshold in its metadata; never imports torch).
    ModelError, one line, if its files are missing or do not fit."""

    def __init__(self, root: Path | str = ".", runtime: str = "torch", threads: int | None = None):
        root = Path(root)
        self.runtime = runtime
        if runtime == "onnx":
            self._load_onnx(root / "models" / "numbers.onnx", threads)
        else:
            self._load_torch(root, threads)

    def _load_torch(self, root: Path, threads):
        import torch

        from src.config import ParamsError, load_params
        from src.number_model import load_line_model

        weights, stats_file = root / "models" / "numbers.pth", root / "data" / "processed" / "stats.json"
        for path in (weights, stats_file):
            if not path.exists():
                raise ModelError(f"{path} not found: {REBUILD}")
        try:
            net = load_params(root / "params.yaml")["numbers"]["net"]
            stats = json.loads(stats_file.read_text())
            self.mean, self.std = float(stats["mean"]), float(stats["std"])
        except (ParamsError, ValueError, KeyError, TypeError) as error:
            raise ModelError(f"{root / 'params.yaml'} or {stats_file}: {first_line(error)}; {REBUILD}") from None
        try:
            self.model = load_line_model(net, weights)
        except Exception as error:  # a corrupt file or another architecture's weights
            raise ModelError(f"{weights} does not fit numbers.net in params.yaml ({net}): {first_line(error)}; "
                             f"{REBUILD}") from None
        if threads:
            torch.set_num_threads(threads)
        self.temperature, self.threshold = float(self.model.temperature), float(self.model.threshold)
        self._torch = torch

    def _load_onnx(self, path: Path, threads):
        self.session = onnx_session(path, threads)
        try:
            meta = self.session.get_modelmeta().custom_metadata_map
            self.temperature, self.threshold = float(meta["temperature"]), float(meta["threshold"])
        except (KeyError, ValueError) as error:  # not the export stage's line model
            raise ModelError(f"{path} is not the export stage's line model: no valid temperature and threshold in "
                             f"its metadata ({first_line(error)}); {REBUILD}") from None
        self.input = self.session.get_inputs()[0].name

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """1 x 1 x 28 x W raw pixels in [0, 1] -> T x 11 logits."""
        if self.runtime == "onnx":
            return self.session.run(None, {self.input: pixels})[0][0]
        torch = self._torch
        with torch.inference_mode():
            return self.model((torch.from_numpy(pixels) - self.mean) / self.std)[0].numpy()

    def read(self, line: Line) -> Reading:
        pixels = np.ascontiguousarray(line.pixels[None, None], dtype=np.float32)
        return greedy_decode(self.logits(pixels), line.width, self.temperature)


def combine(digits, digit_probs: np.ndarray, reading: Reading, threshold: float) -> list[Part]:
    """The parts of a number, left to right, from the segmented `digits` (image.py's Digit, each
    with its classifier probabilities) and the line model's `reading` of the same ink."""
    counts = digit_counts([d.box for d in digits], len(reading.digits))
    unsure, alone = reading.confidence < threshold, len(digits) == 1
    parts, first = [], 0
    for digit, probs, count in zip(digits, digit_probs, counts):
        x0, y0, x1, y1 = digit.box
        narrow = x1 - x0 < (max(ALONE_ASPECT * count, ALONE_MIN) if alone else SPLIT_ASPECT) * (y1 - y0)
        if count == 1 or (narrow and (alone or unsure)):
            parts.append(Part(probs, tuple(digit.box), False, "digit"))
        else:
            edges = np.linspace(x0, x1, count + 1).round().astype(int).tolist()
            parts += [Part(np.asarray(reading.probs[first + j]), (edges[j], y0, edges[j + 1], y1), unsure, "line")
                      for j in range(count)]
        first += count
    return parts


def digit_counts(boxes, total: int) -> list[int]:
    """How many of `total` digits each piece of ink (x0, y0, x1, y1) holds: one each, and any
    more to the piece that is widest for its height and the digits it already holds."""
    counts = [1] * len(boxes)
    for _ in range(total - len(boxes)):
        widest = max(range(len(boxes)), key=lambda k: (boxes[k][2] - boxes[k][0]) / ((boxes[k][3] - boxes[k][1]) * counts[k]))
        counts[widest] += 1
    return counts


def read_parts(image, classify, line_model: LineModel) -> list[Part]:
    """The parts of the number in a decoded `image`; `classify` maps N x 28 x 28 digits to
    N x 10 probabilities (the per-digit classifier)."""
    digits = digits_in(image)
    if not digits:
        return []
    probs = classify(np.stack([d.image for d in digits]))
    x0, y0, x1, y1 = digits[0].box
    if len(digits) == 1 and x1 - x0 < ALONE_MIN * (y1 - y0):
        # one piece too narrow for two digits: whatever the line model read, combine() would keep
        # it as one digit, so it need not run (an image of one digit costs what it did)
        return [Part(probs[0], tuple(digits[0].box), False, "digit")]
    line = line_of(image)
    if line is None:  # not expected: the line is made of the very ink that holds these digits
        return [Part(p, tuple(d.box), False, "digit") for p, d in zip(probs, digits)]
    return combine(digits, probs, line_model.read(line), line_model.threshold)
