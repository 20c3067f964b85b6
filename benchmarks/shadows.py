"""A hard shadow across a photographed page (a phone's, a hand's): how the reader reads it.

    python -m benchmarks.shadows [--root .] [--numbers 100] [--out FILE]

The validation split's writers (src/writers.py) write spaced 4-digit numbers on a page with paper
around the writing; a shadow is laid across it (src/writers.py's `hard_shadow`) over SHARES of
the page at LIGHTS of the paper's light; then the page is photographed
(src/writers.py's `photographed`: uneven light, tilt, blur, noise, JPEG) and cut inside the photo's
turn, as the `corner` set's photos are (`within_the_turn`). The same pages read
without a shadow too. What the reader makes of it (the shadow's light lifted: digit_reader/margin.py's
`lit_evenly`; what is left: docs/reading-digits.md#what-it-does-not-read): read right, flagged,
wrong without a flag, refused (an ImageError, the API's 422), and how often the sheet finder
(digit_reader/sheet.py) took the shadow for a desk and cut the page there. Writes
benchmarks/results/shadows-val.json.
"""
import argparse
import datetime
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.hardware import RESULTS_DIR, git_commit, sized_variant
from digit_reader.image import ImageError, shrink, to_gray
from digit_reader.reader import DEFAULT_MODEL, Reader
from digit_reader.sheet import on_the_sheet
from src.fileio import md5_of, write_json
from src.parallel import workers
from src.reader_scores import answer_scores, read_sets
from src.writers import hard_shadow, photographed, within_the_turn, write, writer_of

SHARES = (0.2, 0.35, 0.5)     # of the page, the share in shadow
LIGHTS = (0.45, 0.6, 0.75)    # the shadow's light, of the paper's
WRITERS = 100                 # the validation split's writers, one number each in turn
SEED = 0


def page(i: int) -> tuple[np.ndarray, str]:
    """Number i on its page (float32, 1 = white), half to over one digit's height of paper around it."""
    rng = np.random.default_rng([SEED, i])
    digits = "".join(map(str, rng.integers(0, 10, 4)))
    writing = np.asarray(write(writer_of("val", i % WRITERS), digits, "spaced", rng), np.float32) / 255
    margins = (rng.uniform(0.5, 1.2, 4) * writing.shape[0]).astype(int)
    paper = float(np.median(writing))
    return np.pad(writing, ((margins[0], margins[1]), (margins[2], margins[3])), constant_values=paper), digits


CONDITIONS = [("no shadow", None)] + [(f"shadow over {share:.0%}, {light:.0%} light", (share, light))
                                      for share in SHARES for light in LIGHTS]


def photographed_under(paper_page: np.ndarray, shadow: tuple[float, float] | None, rng) -> Image.Image:
    """A page (float32, 1 = white) under a shadow (its share of the page, its light; None: none),
    photographed, and cut to the view inside the photo's turn: its corners, filled with the photo's
    median, would be a stroke of ink along the lit paper, which no camera makes."""
    lit = paper_page if shadow is None else hard_shadow(paper_page, *shadow, rng)
    return within_the_turn(photographed(Image.fromarray(np.round(np.clip(lit, 0, 1) * 255).astype(np.uint8)), rng))


def photo(i: int, k: int) -> Image.Image:
    """Number i's page under condition k of CONDITIONS, photographed."""
    return photographed_under(page(i)[0], CONDITIONS[k][1], np.random.default_rng([SEED, i, k]))


def sets(numbers: int) -> dict:
    """{condition: [(photo, digits)]}: every number photographed without a shadow and under each."""
    made = {name: [] for name, _ in CONDITIONS}
    for i in range(numbers):
        paper_page, digits = page(i)
        for k, (name, shadow) in enumerate(CONDITIONS):
            made[name].append((photographed_under(paper_page, shadow, np.random.default_rng([SEED, i, k])), digits))
    return made


class Guarded:
    """A Reader whose answer also says whether the image was refused and whether the sheet finder
    cut it (as digit_reader/image.py's find_ink asks it)."""

    def __init__(self, root: Path, threads: int | None = None):
        self.reader = Reader(root=root, threads=threads)

    def read_image_and_floor(self, image) -> tuple[dict, dict]:
        cut = on_the_sheet(to_gray(shrink(image)[0])) is not None
        try:
            whole, floor = self.reader.read_image_and_floor(image)
        except ImageError:
            return {"digits": None, "uncertain": True, "refused": True, "cut": cut}, {"digits": None}
        return {**whole, "refused": False, "cut": cut}, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--numbers", type=int, default=100, help="numbers under each condition")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commit = git_commit()
    made = sets(args.numbers)
    read = read_sets(made, partial(Guarded, args.root), workers())
    scores = {}
    for name, (answers, _) in read.items():
        scores[name] = {**answer_scores(answers, [digits for _, digits in made[name]]),
                        "refused": round(float(np.mean([a["refused"] for a in answers])), 6),
                        "cut as a sheet": round(float(np.mean([a["cut"] for a in answers])), 6)}
        s = scores[name]
        print(f"{name:28} exact {s['exact']:.1%}, flagged {s['flagged']:.1%}, wrong and not flagged "
              f"{s['wrong_unflagged']:.1%}, refused {s['refused']:.1%}, cut as a sheet {s['cut as a sheet']:.1%}")
    models = {name: md5_of(args.root / "models" / f"{name}.onnx") for name in (DEFAULT_MODEL, "numbers")}
    out = args.out or RESULTS_DIR / f"shadows-val{sized_variant(parser, args, ['numbers'])}.json"
    write_json(out, {"date": datetime.date.today().isoformat(), "commit": commit, "numbers": args.numbers,
                     "models_md5": models, "conditions": scores})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
