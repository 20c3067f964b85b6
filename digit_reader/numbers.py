"""Reading a whole number: the line model, and the per-digit classifier where digits stand apart.

The line model (src/number_model.py) reads digits that touch or overlap, which segmentation into
connected components of ink (digit_reader/image.py) cannot split. The per-digit classifier reads
a digit that stands alone a little better. So both read the image, and the count of digits that
the line model reads, against the count of pieces of ink, decides:

- as many digits as pieces (two or more): each piece is a digit cleanly apart. If the line model
  is sure (confidence over its calibrated threshold), a piece's probabilities are the mean of the
  classifier's and of the line model's for that digit (the two make different mistakes); if it is
  unsure, the classifier's alone: an unsure line model misreads the shapes MNIST's writers rarely
  used (a 6 as 8, a 7 as 2) that the classifier reads right, and outweighed it in the mean
  (benchmarks/notes/reader.md#2026-12-02-other-writers-the-benchmark-and-the-first-rules);
- fewer digits than pieces, the line model sure of them (confidence over its calibrated
  threshold): a digit broken in two by a gap in its stroke (a 4 or an 8 drawn in two strokes that
  miss), which segmentation cannot join as it joins pieces stacked one above the other. The line
  model's digits are the answer; their boxes merge the neighbouring pieces closest together;
- fewer digits than pieces and the line model unsure, or one piece of ink too narrow for the
  digits read (a lone piece must be ALONE_MIN times as wide as tall for two digits, ALONE_ASPECT
  times the count for more, and the line model sure of two: one wide MNIST digit, a flat 2 or 5,
  is sometimes read as two, where two touching digits alone, a "58" in marker, are most often
  what it reads; benchmarks/notes/reader.md#two-touching-digits-alone): the classifier, piece by
  piece;
- more digits than pieces: if the line model is unsure, the classifier's reading is scored by
  the line model itself (the probability of those digits over all alignments, as the confidence
  is). If it is at least RIVAL times as probable as the line model's own reading, the
  classifier's stands (the line model reads some separated printed digits, a bold serif 1 or 4,
  as two, unsure and not by much); else the line model's digits are the answer, and their boxes come from sharing the
  extra digits among the widest pieces. A lone piece is read as two digits only if the line
  model is sure of them (confidence over its calibrated threshold): it reads a few wide single
  digits as two.

Counting, not positions: CTC puts a digit's spike anywhere on or beside the digit, so the
spikes' columns say little about which piece a digit belongs to; a wrong share only moves a box,
never changes the digits read.

The line model reads the line with its digits at their estimated height (digit_reader/line.py).
That estimate is rough where digits touch, and the model reads best at MNIST's size: if it is
unsure (confidence under its calibrated threshold), it reads the line again at the other ZOOMS of
that height, and the digits kept are those most probable on average over the zooms (each zoom's
probability of them over all CTC alignments). Their reading, confidence included, is that of the
first zoom that read them, so the confidence keeps the calibration of one reading.

A digit read by the line model is also uncertain when the whole line's calibrated confidence is
under the threshold chosen on validation numbers (src/number_calibration.py). That calibration is
made on composed lines, where the scale is known; on a user's image, two more readings are flagged,
since each is wrong far more often than the others
(benchmarks/notes/reader.md#how-far-uncertain-can-be-trusted):
- every digit of a number that the line model reads otherwise, sure or not: the models dispute
  it (a sure line model overruled by the lone-piece rule is most often right: two touching
  digits alone);
- the digits the line model splits out of a piece of ink, unless every zoom reads the same digits:
  a split that changes with the line's scale rests on the estimate of that scale.
"""
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from digit_reader.image import digits_of, find_ink
from digit_reader.line import Line, maker_of
from digit_reader.runtimes import REBUILD, ModelError, first_line, load_torch_weights, onnx_session
from src.ctc import Reading, greedy_decode
from src.fileio import md5_of

ALONE_MIN = 0.7      # a lone piece read as two digits must be this many times as wide as tall (two touching digits alone are 0.86-1.33)
ALONE_ASPECT = 0.3   # ... and as n > 2 digits, n times this (four heavily overlapping digits can be 1.3 times)
RIVAL = 0.01         # the classifier's reading stands if the line model finds it this fraction as probable as its own
ZOOMS = (1.0, 0.9, 1.1)   # digit heights, as fractions of the estimate, at which an unsure line is read


@dataclass
class Part:
    probs: np.ndarray           # the 10 digit probabilities
    box: tuple                  # x0, y0, x1, y1 in the image's pixels
    line_uncertain: bool        # uncertain on the line model's account (the rules: this module's docstring)
    source: str                 # "digit" (the classifier), "line" (the line model) or "both" (their mean)


class LineModel:
    """The line model in `runtime`: `torch` (models/numbers.pth, built from params.yaml's
    `numbers.net`, normalised with data/processed/stats.json) or `onnx` (models/numbers.onnx
    alone: normalisation inside, temperature and threshold in its metadata; never imports torch).
    ModelMissing if its file is not there, ModelError, one line, if its files do not fit."""

    def __init__(self, root: Path | str = ".", runtime: str = "torch", threads: int | None = None):
        root = Path(root)
        self.runtime = runtime
        if runtime == "onnx":
            self._load_onnx(root / "models" / "numbers.onnx", threads)
        else:
            self._load_torch(root, threads)

    def _load_torch(self, root: Path, threads):
        import torch

        from src.number_model import load_line_model

        loaded = load_torch_weights(root, "numbers.pth", "numbers.net", lambda params: {"net": params["numbers"]["net"]},
                                    lambda cfg, weights: load_line_model(cfg["net"], weights), threads)
        self.model, self.mean, self.std, self.md5 = loaded.net, loaded.mean, loaded.std, loaded.md5
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
        self.md5 = md5_of(path)

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


class Zooms:
    """One line's readings by a LineModel at ZOOMS, each made when first needed;
    `make_line(zoom)` makes the line with its digits at that fraction of the estimated height."""

    def __init__(self, line_model: LineModel, make_line):
        self.line_model, self.make_line = line_model, make_line
        self.readings = [line_model.read(make_line(ZOOMS[0]))]

    def every(self) -> list[Reading]:
        """The readings at all ZOOMS, those not made yet made now."""
        while len(self.readings) < len(ZOOMS):
            self.readings.append(self.line_model.read(self.make_line(ZOOMS[len(self.readings)])))
        return self.readings

    def best(self) -> Reading:
        """The first zoom's reading if the line model is sure of it; else the digits most
        probable on average over the zooms, as the first zoom that read them read them."""
        first = self.readings[0]
        if first.confidence >= self.line_model.threshold:
            return first
        readings = self.every()
        candidates = sorted({r.digits for r in readings})
        mean = {digits: np.mean([r.probability_of(digits) for r in readings]) for digits in candidates}
        best = max(candidates, key=mean.get)
        return next(r for r in readings if r.digits == best)

    def agree(self) -> bool:
        """Whether every zoom reads the same digits."""
        return len({r.digits for r in self.every()}) == 1


def combine(digits, digit_probs: np.ndarray, reading: Reading, threshold: float) -> list[Part]:
    """The parts of a number, left to right, from the segmented `digits` (image.py's Digit, each
    with its classifier probabilities) and the line model's `reading` of the same ink; all of
    them line_uncertain if the line model reads other digits than they do."""
    parts = choose(digits, digit_probs, reading, threshold)
    if "".join(str(int(p.probs.argmax())) for p in parts) != reading.digits:
        return [replace(p, line_uncertain=True) for p in parts]
    return parts


def choose(digits, digit_probs: np.ndarray, reading: Reading, threshold: float) -> list[Part]:
    """combine()'s parts, before the dispute between the two models is flagged."""
    boxes = [tuple(d.box) for d in digits]
    total = len(reading.digits)
    unsure = reading.confidence < threshold
    if total == len(digits) > 1 and not unsure:
        return [Part((probs + np.asarray(line_probs)) / 2, box, False, "both")
                for probs, line_probs, box in zip(digit_probs, reading.probs, boxes)]
    if 0 < total < len(digits) and not unsure:
        return [Part(np.asarray(probs), box, False, "line")
                for probs, box in zip(reading.probs, merge_closest(boxes, total))]
    classified = [Part(probs, box, False, "digit") for probs, box in zip(digit_probs, boxes)]
    x0, y0, x1, y1 = boxes[0]
    if total <= len(digits) or (len(digits) == 1 and x1 - x0 < lone_width(total) * (y1 - y0)):
        return classified
    if unsure and len(digits) == 1 and total == 2:   # a few wide single digits read as two
        return classified
    as_classified = "".join(str(int(probs.argmax())) for probs in digit_probs)
    if unsure and reading.probability_of(as_classified) >= RIVAL * reading.confidence:
        return classified
    parts, first = [], 0
    for (x0, y0, x1, y1), count in zip(boxes, digit_counts(boxes, total)):
        edges = np.linspace(x0, x1, count + 1).round().astype(int).tolist()
        parts += [Part(np.asarray(reading.probs[first + j]), (edges[j], y0, edges[j + 1], y1), unsure, "line")
                  for j in range(count)]
        first += count
    return parts


def lone_width(count: int) -> float:
    """How many times as wide as tall one piece of ink must be to be read as `count` digits."""
    return ALONE_MIN if count <= 2 else ALONE_ASPECT * count


def merge_closest(boxes, count: int) -> list[tuple]:
    """`boxes` (x0, y0, x1, y1), left to right, merged down to `count`: each time, the two
    neighbours with the narrowest gap between them become their union."""
    boxes = [tuple(box) for box in boxes]
    while len(boxes) > count:
        k = min(range(len(boxes) - 1), key=lambda i: boxes[i + 1][0] - boxes[i][2])
        a, b = boxes[k], boxes[k + 1]
        boxes[k:k + 2] = [(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))]
    return boxes


def digit_counts(boxes, total: int) -> list[int]:
    """How many of `total` digits each piece of ink (x0, y0, x1, y1) holds: one each, and any
    more to the piece that is widest for its height and the digits it already holds."""
    counts = [1] * len(boxes)
    for _ in range(total - len(boxes)):
        widest = max(range(len(boxes)), key=lambda k: (boxes[k][2] - boxes[k][0]) / ((boxes[k][3] - boxes[k][1]) * counts[k]))
        counts[widest] += 1
    return counts


def read_parts(image, classify, line_model: LineModel | None) -> list[Part]:
    """The parts of the number in a decoded `image`; `classify` maps N x 28 x 28 digits to
    N x 10 probabilities (the per-digit classifier). Without a `line_model`, each piece of ink is
    one digit, read by the classifier."""
    found = find_ink(image)   # once, for the classifier's digits and the line model's line
    digits = digits_of(found) if found else []
    if not digits:
        return []
    probs = classify(np.stack([d.image for d in digits]))
    classified = [Part(p, tuple(d.box), False, "digit") for p, d in zip(probs, digits)]
    x0, y0, x1, y1 = digits[0].box
    if line_model is None or (len(digits) == 1 and x1 - x0 < min(lone_width(2), lone_width(3)) * (y1 - y0)):
        # no line model; or one piece too narrow for two or more digits, which combine() would
        # keep as one digit whatever the line model read, so it need not run (most images of one digit)
        return classified
    make_line = maker_of(found)
    if make_line is None:  # not expected: the line is made of the very ink that holds these digits
        return classified
    zooms = Zooms(line_model, make_line)
    parts = combine(digits, probs, zooms.best(), line_model.threshold)
    if any(p.source == "line" and not p.line_uncertain for p in parts) and not zooms.agree():
        return [replace(p, line_uncertain=True) if p.source == "line" else p for p in parts]
    return parts
