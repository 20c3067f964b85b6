"""Stage `writer_digits`: digits by the training split's other writers, cut out as the reader cuts them.

    python -m src.writer_digits

The reader's classifier (`train.reader`, stage train_reader) learns from MNIST's digits and from
these: `count` digits, the ten in turn, each by its own writer of the **training** split
(src/writers.py; the benchmark reads the validation and test splits' writers), some photographed,
each normalised to MNIST's 28 x 28 field by the reader's own code (digit_reader/image.py), so
that it learns from what it will be given. After them, `pairs` drawings of two touching digits,
some with a marker, labelled SEVERAL (src/config.py): a classifier with `several_digits` learns
from them that a piece of ink is more than one digit. A drawing whose ink the reader cuts into
other than one piece is left out.

Each digit has its own seed, and the work is shared by one process per core: the same digits
whichever the CPU. Writes data/writers/digits.pt: uint8 images (N x 28 x 28, white ink on black,
as MNIST) and their int64 labels (0-9, or SEVERAL).
"""
import logging
from pathlib import Path

import numpy as np

from digit_reader.image import digits_in
from src.config import SEVERAL, load_params
from src.errors import PipelineError
from src.fileio import save_torch
from src.parallel import made_in_order, workers
from src.writers import photographed, write, writer_of

log = logging.getLogger("writer_digits")
OUT = Path("data/writers/digits.pt")


def writer_digit(i: int, cfg: dict) -> tuple[np.ndarray, int] | None:
    """Item i by the i-th training writer, as the reader normalises it (uint8 28 x 28), and its
    label: the digit i mod 10 for the first `count`, then two random digits touching (SEVERAL);
    None if the reader does not cut its ink into one piece."""
    if i < cfg["count"]:
        rng = np.random.default_rng([cfg["seed"], i])
        label, digits = i % 10, str(i % 10)
        image = write(writer_of("train", i), digits, "spaced", rng)
    else:
        rng = np.random.default_rng([cfg["seed"], i, SEVERAL])
        label, digits = SEVERAL, "".join(map(str, rng.integers(0, 10, 2)))
        pen = "marker" if rng.random() < cfg["pairs_marker"] else None
        image = write(writer_of("train", i, pen=pen), digits, "touching", rng)
    if rng.random() < cfg["photographed"]:
        image = photographed(image, rng)
    found = digits_in(image)
    if len(found) != 1:
        return None
    return np.round(found[0].image * 255).astype(np.uint8), label


def writer_digits(cfg: dict, processes: int) -> list:
    return made_in_order(writer_digit, cfg["count"] + cfg["pairs"], cfg, processes)


def main() -> None:
    import torch

    cfg = load_params()["writer_digits"]
    made = writer_digits(cfg, workers())
    kept = [m for m in made if m is not None]
    if not kept:
        raise PipelineError(f"writer_digits: none of the {len(made)} digits drawn came out as one piece")
    save_torch({"images": torch.from_numpy(np.stack([image for image, _ in kept])),
                "labels": torch.tensor([label for _, label in kept], dtype=torch.int64)}, OUT)
    pairs = sum(label == SEVERAL for _, label in kept)
    log.info("%d digits and %d pairs by other writers (%d not one piece)", len(kept) - pairs, pairs, len(made) - len(kept))


if __name__ == "__main__":
    from src.cli import run_stage_command

    run_stage_command(main)
