"""Stage `preprocess`: raw IDX files -> cached tensors in data/processed.

Choices, and why:
- Images stay uint8 (N x 28 x 28) on disk: 4x smaller than float32 and lossless. Scaling to
  [0, 1] and standardising happen in one cheap vectorised step when a split is loaded.
- Scale to [0, 1], then standardise with the mean and std of *our training split* (not the
  0.1307/0.3081 everyone copies, which were computed on all 60k images, validation included):
  zero-mean, unit-variance inputs keep the first layer's activations well scaled, so the same
  learning rate works across architectures. Statistics from the training split only, so nothing
  about the validation or test images leaks into training.
- No resizing: the digits are already size-normalised and centred in 28 x 28; every model here
  is built for that size, and resampling would only blur strokes.
- No augmentation here: random shifts are drawn fresh every epoch, on the training device
  (src/data.py), so the model never sees the same perturbed image twice and the cache stays a
  faithful copy of the data.
- A stratified train/validation split (seeded): every class keeps its share in both parts, so
  validation accuracy is comparable between runs and configurations.
"""
import logging
from pathlib import Path

import torch
from sklearn.model_selection import train_test_split

from src.config import load_params
from src.checksums import verify
from src.fileio import PROCESSED_DIR, RAW_DIR, save_torch, write_json
from src.idx import read_idx

log = logging.getLogger("preprocess")


def read_raw(prefix: str, raw_dir: Path = RAW_DIR):
    """Verified (images, labels) tensors for `train` or `t10k`."""
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte"
        path = Path(raw_dir) / name
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `dvc repro download` first")
        verify(path, name)  # a corrupt or truncated file is never used
        arrays.append(torch.from_numpy(read_idx(path).copy()))
    images, labels = arrays
    return images, labels.long()


def split_train_val(images, labels, val_size: int, seed: int):
    if val_size == 0:
        return (images, labels), (images[:0], labels[:0])
    train_idx, val_idx = train_test_split(
        torch.arange(len(labels)).numpy(), test_size=val_size, random_state=seed, stratify=labels.numpy()
    )
    train_idx, val_idx = torch.from_numpy(train_idx).sort().values, torch.from_numpy(val_idx).sort().values
    return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])


def pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and (population) std of the pixels scaled to [0, 1]."""
    x = images.double() / 255.0
    return x.mean().item(), x.std(correction=0).item()


def preprocess(val_size: int, seed: int, raw_dir: Path = RAW_DIR, out_dir: Path = PROCESSED_DIR) -> dict:
    images, labels = read_raw("train", raw_dir)
    test = read_raw("t10k", raw_dir)
    train, val = split_train_val(images, labels, val_size, seed)
    mean, std = pixel_stats(train[0])
    for name, (x, y) in {"train": train, "val": val, "test": test}.items():
        save_torch({"images": x.contiguous(), "labels": y.contiguous()}, Path(out_dir) / f"{name}.pt")
    stats = {"mean": mean, "std": std, "train": len(train[1]), "val": len(val[1]), "test": len(test[1])}
    write_json(Path(out_dir) / "stats.json", stats)
    return stats


def main() -> None:
    params = load_params()["data"]
    stats = preprocess(params["val_size"], params["seed"])
    log.info("train %(train)d, val %(val)d, test %(test)d; training mean %(mean).4f std %(std).4f", stats)


if __name__ == "__main__":
    from src.cli import run_stage_command

    run_stage_command(main)
