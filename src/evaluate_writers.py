"""Stage `evaluate_writers`: the whole reader on digits by writers MNIST never had.

    python -m src.evaluate_writers

The reader (digit_reader: its classifier models/reader.onnx and the line model models/numbers.onnx,
as `make serve` runs them) reads the fixed sets of src/writer_sets.py, written by the test split's
writers (src/writers.py). Beside it, the classifier alone reads each piece of ink as one digit:
the floor that the reader must never fall below on numbers whose digits stand apart.

Writes, under metrics/:
- writers.json (`dvc metrics diff`): per set, the exact accuracy, the share flagged uncertain, the
  share read wrong without a flag, and the classifier-alone exact accuracy (`pieces`);
- writers/styles.json: single-digit accuracy per digit and design (a closed 4, a crossbar 7, ...);
- writers/misread.png: the most confidently misread items.
"""
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from digit_reader.reader import Reader
from src.config import load_params
from src.fileio import write_json
from src.gallery import save_gallery
from src.parallel import workers
from src.reader_scores import read_sets, score
from src.writer_sets import sets_of, writer_index
from src.writers import DESIGNS, writer_of

log = logging.getLogger("evaluate_writers")
OUT = Path("metrics/writers")
SPLIT = "test"


def style_accuracy(items: list[tuple], readings: list[dict], cfg: dict, split: str) -> dict:
    """Single-digit accuracy per "digit design" (e.g. "4 closed"), from each item's writer."""
    right = defaultdict(list)
    for i, ((_, truth), reading) in enumerate(zip(items, readings)):
        design = writer_of(split, writer_index("single", i, cfg["writers"])).designs[int(truth)]
        right[f"{truth} {DESIGNS[int(truth)][design][0]}"].append(reading["digits"] == truth)
    return {style: {"exact": round(float(np.mean(r)), 6), "count": len(r)} for style, r in sorted(right.items())}


def misread_gallery(sets: dict, read: dict, path: Path, size: int) -> None:
    wrong = [(reading["confidence"] or 0.0, name, image, truth, reading)
             for name, items in sets.items() for (image, truth), reading in zip(items, read[name][0])
             if reading["digits"] != truth]
    wrong = sorted(wrong, key=lambda w: -w[0])[:size]
    captions = [f"{name}: {truth} read {r['digits'] or '-'} ({c:.0%}{', flagged' if r['uncertain'] else ''})"
                for c, name, _, truth, r in wrong]
    save_gallery([255 - np.asarray(image) for _, _, image, _, _ in wrong], captions,
                 f"{len(wrong)} most confidently misread items of other writers", path, cols=3, cell=(3.4, 1.3))


def main() -> None:
    cfg = load_params()["writers"]
    sets = sets_of(cfg, SPLIT, workers())
    read = read_sets(sets, Reader, workers())
    metrics = {name: score(readings, pieces, [t for _, t in sets[name]]) for name, (readings, pieces) in read.items()}
    misread_gallery(sets, read, OUT / "misread.png", cfg["gallery_size"])
    write_json(OUT / "styles.json", style_accuracy(sets["single"], read["single"][0], cfg, SPLIT))
    write_json(Path("metrics/writers.json"), metrics)
    for name, m in metrics.items():
        log.info("%-15s exact %.3f (classifier alone %.3f), flagged %.3f, wrong unflagged %.3f", name, m["exact"],
                 m["pieces"], m["flagged"], m["wrong_unflagged"])


if __name__ == "__main__":
    from src.cli import run_stage_command

    run_stage_command(main)
