"""A trained model, loaded once, that reads the digits in an image's bytes.

Shared by the command line (digit_reader/predict.py) and the HTTP API (digit_reader/api.py), so that both give
the same answer, in the same JSON, for the same image. The model runs in PyTorch or in onnxruntime
(digit_reader/runtimes.py): `runtime="onnx"` needs only models/<model>.onnx and never imports torch.
"""
import sys
from pathlib import Path

import numpy as np

from digit_reader.image import decode
from digit_reader.numbers import LineModel, Part, parts_of, read_parts, see
from digit_reader.rules import unsure
from digit_reader.runtimes import (DEFAULT_MODEL, DEFAULT_RUNTIME, MODELS, REBUILD, RUNTIMES, ModelError,  # noqa: F401 (re-exported)
                                   ModelMissing, load_model)
from src.ctc import softmax


class Reader:
    def __init__(self, model: str = DEFAULT_MODEL, root: Path | str = ".", runtime: str = DEFAULT_RUNTIME,
                 threads: int | None = None, numbers: bool = True):
        """models/<model> in `runtime` (torch or onnx) on `threads` CPU threads (None: the
        runtime's default); ModelError, one line, if it is missing or does not fit.
        With `numbers`, the line model too (models/numbers.pth or .onnx, digit_reader/numbers.py),
        which reads digits that touch; numbers=False reads each piece of ink as one digit, and so
        does a reader whose line model's file is not there (`without_lines` says so, and it is
        printed once as a warning on stderr)."""
        self.name = model
        self.model = load_model(model, root, runtime, threads)
        self.lines, self.without_lines = None, None
        if numbers:
            try:
                self.lines = LineModel(root, runtime, threads)
            except ModelMissing as missing:
                self.without_lines = (f"{missing}; until then each piece of ink is read as one digit by the classifier "
                                      "alone, so digits that touch are misread")
                print(f"warning: {self.without_lines}", file=sys.stderr)

    def served(self) -> dict:
        """Which models answer: each file's MD5 (as dvc.lock records it), the runtime and its threads."""
        return {"model": self.name, "arch": self.model.arch, "runtime": self.model.runtime, "md5": self.model.md5,
                "threads": self.model.threads, "line_model": None if self.lines is None else {"md5": self.lines.md5}}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """N x 28 x 28 floats in [0, 1] (MNIST / 255) -> N x 10 class probabilities (N x 11 from the
        reader's classifier: the eleventh, several digits; digit_reader/numbers.py's split_several)."""
        pixels = np.ascontiguousarray(images, dtype=np.float32)[:, None]
        return softmax(self.model.logits(pixels).astype(np.float64))

    def read(self, data: bytes, top: int = 3) -> dict:
        """The digits in an image file's bytes, as the JSON-ready dict of the CLI and the API.
        Raises digit_reader.image.ImageError if the bytes are not a readable image."""
        return self.read_image(decode(data), top)

    def read_image(self, image, top: int = 3) -> dict:
        return answer(self.parts(image), top)

    def parts(self, image) -> list[Part]:
        """The digits of a decoded image, left to right: each its probabilities and its box."""
        return read_parts(image, self.probabilities, self.lines)

    def read_image_and_floor(self, image, top: int = 3) -> tuple[dict, dict]:
        """read_image's answer, and the floor's: each piece of ink read as one digit by the
        classifier alone, as Reader(numbers=False) reads it; both from one look at the image
        (the same ink, pieces and probabilities)."""
        seen = see(image, self.probabilities, self.lines)
        alone = None if seen is None else seen.alone()
        return answer(parts_of(seen), top), answer(parts_of(alone), top)


def answer(parts: list[Part], top: int = 3) -> dict:
    """The JSON-ready answer of the CLI and the API for a number's parts."""
    if not parts:
        return {"digits": "", "confidence": None, "uncertain": False, "count": 0,
                "message": "no digit found", "predictions": []}
    predictions = [describe(p.probs, p.box, top, p.line_uncertain) for p in parts]
    return {
        "digits": "".join(p["digit"] for p in predictions),
        "confidence": min(p["probability"] for p in predictions),
        "uncertain": any(p["uncertain"] for p in predictions),
        "count": len(predictions),
        "predictions": predictions,
    }


def describe(probs: np.ndarray, box, top: int, line_uncertain: bool = False) -> dict:
    """One digit's JSON; uncertain if its top probability is low, or if the line model read it
    and is unsure of the whole number."""
    order = np.argsort(-probs, kind="stable")
    best = int(order[0])
    return {
        "digit": str(best),
        "probability": round(float(probs[best]), 6),
        "uncertain": unsure(probs, line_uncertain),
        "top": [{"digit": int(k), "probability": round(float(probs[k]), 6)} for k in order[:top]],
        "box": list(box),
    }
