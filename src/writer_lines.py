"""Stage `writer_lines`: numbers by the training split's other writers, made into lines as the
reader makes them.

    python -m src.writer_lines

The line model learns to read from MNIST's digits composed into numbers (src/number_images.py).
Alone, that teaches it MNIST's few hundred writers: it reads numbers by other writers badly
(metrics/writers.json). This stage writes `count` numbers by the **training** split's writers
(src/writers.py; the benchmark reads the test split's), touching or spaced, some written askew,
some photographed, as long as the line model's MNIST numbers (`numbers.images.lengths`), and
makes each into a line exactly as the reader does (digit_reader/line.py, at one of the reader's
zooms of the estimated digit height: digit_reader/rules.py's ZOOMS), so that the line model
learns from what it will be given. train_numbers mixes them into its batches
(`numbers.images.writer_lines`).

Each number has its own seed, and the work is shared by one process per core: the same lines
whichever the CPU. Writes data/writers/lines.pt: the lines' uint8 pixels side by side (28 rows,
white ink on black), each line's first column, and its digits.
"""
import logging
from pathlib import Path

import numpy as np

from digit_reader.image import find_ink
from digit_reader.line import maker_of
from digit_reader.rules import ZOOMS as READER_ZOOMS
from src.config import load_params
from src.errors import PipelineError
from src.fileio import save_torch
from src.parallel import made_in_order, workers
from src.writers import askew, photographed, write, writer_of

log = logging.getLogger("writer_lines")
OUT = Path("data/writers/lines.pt")
ZOOMS = tuple(sorted(READER_ZOOMS))   # each line's digit height, one of the reader's zooms, smallest first
ASKEW_DRAWS = 1   # the seed's third part for a line's turn, apart from the line's own draws


def writer_line(i: int, cfg: dict) -> tuple[np.ndarray, str] | None:
    """Number i: its line (uint8 28 x W) and its digits; None if the reader finds no ink in it."""
    rng = np.random.default_rng([cfg["seed"], i])
    shortest, longest = cfg["lengths"]
    digits = "".join(map(str, rng.integers(0, 10, int(rng.integers(shortest, longest + 1)))))
    image = write(writer_of("train", i), digits, "touching" if rng.random() < cfg["touching"] else "spaced", rng)
    turn = np.random.default_rng([cfg["seed"], i, ASKEW_DRAWS])   # its own draws: the other lines stay as they were
    if turn.random() < cfg["askew"]:
        image = askew(image, turn)
    if rng.random() < cfg["photographed"]:
        image = photographed(image, rng)
    found = find_ink(image)
    make = maker_of(found) if found else None
    if make is None:
        return None
    line = make(float(rng.choice(ZOOMS)))
    return np.round(line.pixels[:, :line.width] * 255).astype(np.uint8), digits


def settings(params: dict) -> dict:
    """The stage's params: its section, and the lengths of the line model's MNIST numbers
    (numbers.images.lengths), which its lines share."""
    return {**params["writer_lines"], "lengths": params["numbers"]["images"]["lengths"]}


def writer_lines(cfg: dict, processes: int) -> list:
    return made_in_order(writer_line, cfg["count"], cfg, processes)


def packed(lines: list) -> dict:
    """Lines (uint8 28 x W, digits) side by side, as data/writers/lines.pt holds them (and
    src/number_images.py's LinePool takes them)."""
    import torch

    widths = [pixels.shape[1] for pixels, _ in lines]
    return {"pixels": torch.from_numpy(np.concatenate([pixels for pixels, _ in lines], axis=1)),
            "starts": torch.tensor(np.concatenate([[0], np.cumsum(widths)])),
            "labels": [digits for _, digits in lines]}


def main() -> None:
    made = writer_lines(settings(load_params()), workers())
    kept = [m for m in made if m is not None]
    if not kept:
        raise PipelineError(f"writer_lines: no ink found in any of the {len(made)} lines drawn")
    pool = packed(kept)
    save_torch(pool, OUT)
    log.info("%d lines by other writers (%d with no ink found), %d columns", len(kept), len(made) - len(kept),
             pool["pixels"].shape[1])


if __name__ == "__main__":
    from src.cli import run_stage_command

    run_stage_command(main)
