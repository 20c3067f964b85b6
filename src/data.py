"""Loading the preprocessed tensors and feeding them to a model: everything stays on the device.

MNIST is tiny (60k x 28 x 28 bytes = 47 MB), so the whole split lives on the training device
as one normalised float tensor; a batch is an index into it. This avoids the per-sample Python
and PIL work of a DataLoader, which dominates the step time of small networks.
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from src.errors import PipelineError, first_line
from src.fileio import PROCESSED_DIR


def load_split(name: str, processed_dir: Path = PROCESSED_DIR):
    """Return (uint8 images N x 28 x 28, int64 labels N) of a preprocessed split."""
    path = Path(processed_dir) / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro preprocess` first")
    split = torch.load(path, weights_only=True)
    return split["images"], split["labels"]


def load_stats(processed_dir: Path = PROCESSED_DIR) -> tuple[float, float]:
    """The training split's pixel mean and standard deviation (the preprocess stage's stats.json);
    one line (PipelineError) if the file holds no valid pair."""
    path = Path(processed_dir) / "stats.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro preprocess` first")
    try:
        stats = json.loads(path.read_text())
        return float(stats["mean"]), float(stats["std"])
    except (ValueError, KeyError, TypeError) as error:
        raise PipelineError(f"{path}: no valid mean and std, as the preprocess stage writes them "
                            f"({type(error).__name__}: {first_line(error)})") from None


def normalize(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N x 28 x 28 -> float N x 1 x 28 x 28, scaled to [0, 1] then standardised."""
    return ((images.float() / 255.0 - mean) / std).unsqueeze(1)


def translate(x: torch.Tensor, dy: int, dx: int, fill: float = 0.0) -> torch.Tensor:
    """Move every image down by dy and right by dx pixels (negative: up, left), filling the
    uncovered border with `fill`."""
    h, w = x.shape[-2:]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(x, (pad,) * 4, value=fill)
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator, fill: float = 0.0):
    """Translate each image by its own random (dy, dx) in [-max_shift, max_shift], filling the
    uncovered border with `fill` (the background's value); one gather for the whole batch."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator, device=x.device)
    rows = (torch.arange(h, device=x.device) + offsets[0, :, None])[:, :, None]
    cols = (torch.arange(w, device=x.device) + offsets[1, :, None])[:, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)


def affine(x: torch.Tensor, degrees: torch.Tensor, zoom: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Rotate image i anticlockwise by degrees[i] and zoom it by zoom[i] about its centre
    (bilinear), filling the uncovered border with `fill`."""
    angle = torch.deg2rad(degrees)
    # the grid maps each output pixel to where it samples the input: the inverse transform
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x - fill, grid, align_corners=False) + fill  # grid_sample pads with 0


def random_affine(x: torch.Tensor, max_degrees: float, max_scale: float, generator: torch.Generator, fill: float = 0.0):
    """Rotate each image by its own random angle in [-max_degrees, max_degrees] and zoom it by a
    random factor in [1 - max_scale, 1 + max_scale]: handwriting varies in slant and size."""
    if max_degrees == 0 and max_scale == 0:
        return x
    uniform = lambda: 2 * torch.rand(len(x), generator=generator, device=x.device) - 1  # noqa: E731
    return affine(x, max_degrees * uniform(), 1 + max_scale * uniform(), fill)
