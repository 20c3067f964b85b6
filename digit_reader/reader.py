"""A trained model, loaded once, that reads the digits in an image's bytes.

Shared by the command line (digit_reader/predict.py) and the HTTP API (digit_reader/api.py), so that both give
the same answer, in the same JSON, for the same image. The architecture comes from params.yaml's
`train.<model>` section, the weights from models/<model>.pth (`weights_only=True`: a weights
file cannot run code), the normalisation from data/processed/stats.json: exactly what the
pipeline trained and evaluated.
"""
import json
from pathlib import Path

import numpy as np
import torch

from src.config import ParamsError, load_params, model_params
from digit_reader.image import digits_in, decode
from src.errors import PipelineError
from src.models import build_model

UNCERTAIN_BELOW = 0.7   # a digit whose top probability is lower is flagged, not silently guessed
REBUILD = "run `make repro` (or `dvc pull`) first"


class ModelError(PipelineError):
    """The model or its statistics are missing or do not fit params.yaml."""


class Reader:
    def __init__(self, model: str = "cnn", root: Path | str = "."):
        root = Path(root)
        self.name = model
        weights, stats_file = root / "models" / f"{model}.pth", root / "data" / "processed" / "stats.json"
        for path in (weights, stats_file):
            if not path.exists():
                raise ModelError(f"{path} not found: {REBUILD}")
        try:
            cfg = model_params(load_params(root / "params.yaml"), model)
        except ParamsError as error:
            raise ModelError(str(error)) from None
        try:
            stats = json.loads(stats_file.read_text())
            self.mean, self.std = float(stats["mean"]), float(stats["std"])
        except (ValueError, KeyError, TypeError) as error:
            raise ModelError(f"{stats_file}: no valid mean and std ({error}): {REBUILD}") from None
        self.model = build_model(cfg["arch"], cfg["net"])
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        except Exception as error:  # a corrupt file or another architecture's weights
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"{weights} does not fit train.{model} in params.yaml (arch {cfg['arch']}, "
                             f"net {cfg['net']}): {first}; {REBUILD}") from None
        self.model.eval()

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """N x 28 x 28 floats in [0, 1] (MNIST / 255) -> N x 10 class probabilities."""
        x = (torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)) - self.mean) / self.std
        return torch.softmax(self.model(x.unsqueeze(1)), dim=1).numpy()

    def read(self, data: bytes, top: int = 3) -> dict:
        """The digits in an image file's bytes, as the JSON-ready dict of the CLI and the API.
        Raises digit_reader.image.ImageError if the bytes are not a readable image."""
        return self.read_image(decode(data), top)

    def read_image(self, image, top: int = 3) -> dict:
        digits = digits_in(image)
        if not digits:
            return {"digits": "", "confidence": None, "uncertain": False, "count": 0,
                    "message": "no digit found", "predictions": []}
        probs = self.probabilities(np.stack([d.image for d in digits]))
        predictions = [describe(p, d.box, top) for p, d in zip(probs, digits)]
        return {
            "digits": "".join(p["digit"] for p in predictions),
            "confidence": min(p["probability"] for p in predictions),
            "uncertain": any(p["uncertain"] for p in predictions),
            "count": len(predictions),
            "predictions": predictions,
        }


def describe(probs: np.ndarray, box, top: int) -> dict:
    order = np.argsort(-probs, kind="stable")
    best = int(order[0])
    return {
        "digit": str(best),
        "probability": round(float(probs[best]), 6),
        "uncertain": bool(probs[best] < UNCERTAIN_BELOW),
        "top": [{"digit": int(k), "probability": round(float(probs[k]), 6)} for k in order[:top]],
        "box": list(box),
    }
