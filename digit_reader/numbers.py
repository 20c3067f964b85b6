"""Reading a whole number: the line model, and the per-digit classifier where digits stand apart.

Both read the image; which of them is the answer, and which readings are flagged uncertain, is
decided by the table of rules in digit_reader/rules.py, in the order they are applied.

The line model reads the line with its digits at their estimated height (digit_reader/line.py).
That estimate is rough where digits touch, and the model reads best at MNIST's size: if it is
unsure (confidence under its calibrated threshold), it reads the line again at the other ZOOMS of
that height, and the digits kept are those most probable on average over the zooms (each zoom's
probability of them over all CTC alignments). Their reading, confidence included, is that of the
first zoom that read them, so the confidence keeps the calibration of one reading.

A lone piece of ink is either one digit or several that touch, and the two are sized differently:
the line is made with a digit's height at BOX pixels, but MNIST sized a lone digit by its longer
side, so a digit wider than tall, BOX pixels wide in training, comes out wider here. Where it
matters (digit_reader/rules.py), the line is also read at one digit's scale: its ink BOX pixels
wide.
"""
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from digit_reader.image import BOX, Ink, digits_of, find_ink
from digit_reader.line import MARGIN, Line, maker_of
from digit_reader.rules import ALL, ZOOMS, Part, Rules, agreed, classified, decide
from digit_reader.runtimes import REBUILD, ModelError, load_torch_weights, onnx_session
from digit_reader.sheet import Turn, in_the_file
from src.config import DIGITS, SEVERAL
from src.ctc import Reading, greedy_decode
from src.errors import first_line
from src.fileio import md5_of


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
        self.first = make_line(ZOOMS[0])
        self.readings = [line_model.read(self.first)]
        self._one_digit = None

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

    def one_digit(self) -> Reading | None:
        """The line read at one digit's scale, its ink BOX pixels wide, as MNIST sized a lone digit
        wider than tall (read when first asked); None if its ink is no wider than that at the
        estimated height: the first zoom is one digit's scale already."""
        ink_width = self.first.width - 2 * MARGIN
        if self._one_digit is None and ink_width > BOX:
            self._one_digit = self.line_model.read(self.make_line(ZOOMS[0] * BOX / ink_width))
        return self._one_digit


@dataclass
class Seen:
    """What both models make of one image: its pieces of ink, the classifier's probabilities of
    each (the digits', given that it is one digit), the probability that each is several digits
    (None from a classifier without that output), and the line model's readings (None without a
    line model)."""
    boxes: list[tuple]
    probs: np.ndarray
    zooms: Zooms | None
    several: np.ndarray | None = None
    turn: Turn | None = None     # a sheet on a desk was set upright: the boxes are in the turned photo
    finer: "Seen | None" = None  # on a fine grid, the same read with the grid painted at FINER times the resolution

    def alone(self) -> "Seen":
        """What the classifier alone makes of it: without the line model's readings."""
        return replace(self, zooms=None, finer=self.finer and self.finer.alone())


def split_several(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """N x 10 or N x 11 class probabilities -> the digits' probabilities given one digit (N x 10),
    and the probability of several digits (SEVERAL, the eleventh; None where there is none)."""
    if probs.shape[1] == DIGITS:
        return probs, None
    digits = probs[:, :DIGITS]
    return digits / np.maximum(digits.sum(1, keepdims=True), np.finfo(float).tiny), probs[:, SEVERAL]


def see(image, classify, line_model: LineModel | None) -> Seen | None:
    """Both models' readings of a decoded `image` (None: no ink); `classify` maps N x 28 x 28
    digits to N x 10 (or 11) probabilities (the per-digit classifier)."""
    found = find_ink(image, finer=True)   # once, for the classifier's digits and the line model's line
    return _seen(found, classify, line_model) if found else None


def _seen(found: Ink, classify, line_model: LineModel | None) -> Seen | None:
    digits = digits_of(found)
    if not digits:
        return None
    probs, several = split_several(classify(np.stack([d.image for d in digits])))
    boxes = [tuple(d.box) for d in digits]
    make_line = maker_of(found) if line_model is not None else None
    finer = _seen(found.finer, classify, line_model) if found.finer else None
    return Seen(boxes, probs, None if make_line is None else Zooms(line_model, make_line), several, found.turn, finer)


def parts_of(seen: Seen | None, rules: Rules = ALL) -> list[Part]:
    """The parts of the number, left to right, as `rules` decide (digit_reader/rules.py). Without
    the line model's readings, each piece of ink is one digit, read by the classifier (flagged
    where it finds the piece several digits)."""
    if seen is None:
        return []
    if seen.finer is not None:
        return agreed(parts_of(replace(seen, finer=None), rules), parts_of(seen.finer, rules))
    if seen.zooms is None:
        parts = classified(seen.boxes, seen.probs, seen.several)
    else:
        zooms = seen.zooms
        parts = decide(seen.boxes, seen.probs, zooms.best() if rules.zooms else zooms.readings[0],
                       zooms.line_model.threshold, zooms=zooms.every if rules.zooms else None, rules=rules,
                       one_digit=zooms.one_digit, several=seen.several)
    return parts if seen.turn is None else [replace(p, box=in_the_file(p.box, seen.turn)) for p in parts]


def read_parts(image, classify, line_model: LineModel | None) -> list[Part]:
    """The parts of the number in a decoded `image` (see() and parts_of() with every rule)."""
    return parts_of(see(image, classify, line_model))
