"""Loading the preprocessed tensors and feeding them to a model: everything stays on the device.

MNIST is tiny (60k x 28 x 28 bytes = 47 MB), so the whole split lives on the training device
as one normalised float tensor; a batch is an index into it. This avoids the per-sample Python
and PIL work of a DataLoader, which dominates the step time of small networks.
"""
import json
from pathlib import Path

import torch

from src.fileio import PROCESSED_DIR


def load_split(name: str, processed_dir: Path = PROCESSED_DIR):
    """Return (uint8 images N x 28 x 28, int64 labels N) of a preprocessed split."""
    path = Path(processed_dir) / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro preprocess` first")
    split = torch.load(path, weights_only=True)
    return split["images"], split["labels"]


def load_stats(processed_dir: Path = PROCESSED_DIR) -> tuple[float, float]:
    stats = json.loads((Path(processed_dir) / "stats.json").read_text())
    return stats["mean"], stats["std"]


def normalize(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float N x 1 x 28 x 28, scaled to [0, 1] then standardised."""
    return ((images.float() / 255.0 - mean) / std).unsqueeze(1)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator, fill: float = 0.0):
    """Translate each image by its own random (dy, dx) in [-max_shift, max_shift], filling the
    uncovered border with `fill` (the background's value); one gather for the whole batch."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator, device=x.device)
    rows = (torch.arange(h, device=x.device) + offsets[0, :, None])[:, :, None]
    cols = (torch.arange(w, device=x.device) + offsets[1, :, None])[:, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)
