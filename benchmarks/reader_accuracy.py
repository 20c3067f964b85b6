"""What the reader reads: digit_reader's whole Reader (the per-digit classifier and the line model)
on images made the way users make them, against the per-digit classifier alone.

    python -m benchmarks.reader_accuracy [--root .] [--model cnn] [--runtime onnx] [--digits 5000] [--numbers 1000]
                                         [--font-numbers 10] [--mnist DIR] [--out FILE]

After `make repro` (it reads the trained models and MNIST's test split under --root). The images,
all from MNIST's test split, none seen in training:

- single digits: the first --digits test digits, clean (the 28 x 28 image) and photographed
  (tools/user_images.py's `users_version`);
- 4-digit numbers of each kind (touching, overlap, separated: src/number_images.py), --numbers
  each, composed as the evaluate_numbers stage composes its test numbers but from their own seeds,
  written dark on white paper 3x enlarged (tools/user_images.py's `number_on_paper`);
- printed: every digit in each TrueType font under /usr/share/fonts (64 pt), and --font-numbers
  random 4-digit numbers per font, tight (each advance 12% short: the glyphs touch) and spaced
  (25% long).

The stage evaluate_numbers scores the line model alone on the composed lines themselves; this
scores what a user gets, through the reader's own normalisation of an image, and how far its
`uncertain` flag can be trusted: the share of readings flagged, and how often the others are right.
Prints the rates and writes them to benchmarks/results/reader-<model>-<runtime>.json.
"""
import argparse
import datetime
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from benchmarks.hardware import RESULTS_DIR, git_commit, sized_variant
from digit_reader.reader import DEFAULT_MODEL, DEFAULT_RUNTIME, MODELS, RUNTIMES, Reader
from src.fileio import md5_of, write_json
from src.number_images import KINDS, fixed_numbers
from src.parallel import workers
from src.preprocess import read_raw
from src.reader_scores import read_sets, score
from tools.user_images import composed_on_paper, users_version

FONT_SIZE = 64
SPACINGS = {"tight": -0.12, "spaced": 0.25}


def single_digits(images, labels, n: int, rng) -> dict:
    pairs = list(zip(images[:n].numpy(), labels[:n].tolist()))
    return {"clean": [(Image.fromarray(255 - d), str(y)) for d, y in pairs],
            "photographed": [(users_version(d, rng), str(y)) for d, y in pairs]}


def numbers_on_paper(images, labels, n: int) -> dict:
    sets = {}
    for i, kind in enumerate(KINDS):
        numbers = fixed_numbers(images, labels, [4] * n, [kind] * n, seed=100 + i)
        sets[kind] = list(zip(composed_on_paper(numbers), numbers.labels))
    return sets


def printed(fonts: list[Path], per_font: int, rng) -> dict:
    sets = {"single": [], **{f"4 digits {name}": [] for name in SPACINGS}}
    for path in fonts:
        font = ImageFont.truetype(str(path), FONT_SIZE)
        for digit in "0123456789":
            image = Image.new("L", (2 * FONT_SIZE, 2 * FONT_SIZE), 255)
            ImageDraw.Draw(image).text((FONT_SIZE // 2, FONT_SIZE // 6), digit, font=font, fill=0)
            sets["single"].append((image, digit))
        for _ in range(per_font):
            number = "".join(map(str, rng.integers(0, 10, 4)))
            for name, spacing in SPACINGS.items():
                sets[f"4 digits {name}"].append((typeset(number, font, spacing), number))
    return sets


def typeset(number: str, font, spacing: float) -> Image.Image:
    image = Image.new("L", (7 * FONT_SIZE, 2 * FONT_SIZE), 255)
    draw, x = ImageDraw.Draw(image), FONT_SIZE / 3
    for digit in number:
        draw.text((x, FONT_SIZE // 6), digit, font=font, fill=0)
        x += font.getlength(digit) * (1 + spacing)
    return image


def rates_of(answers: list[dict], floor: list[str], truths: list[str]) -> dict:
    """The share read exactly, with the line model and by the classifier alone; the share flagged
    uncertain, and how often the rest are right (src/reader_scores.py's scoring, as the writers')."""
    scores = score(answers, floor, truths)
    unflagged = 1 - scores["flagged"]
    return {"n": len(truths), "with the line model": round(scores["exact"], 5), "digits only": round(scores["pieces"], 5),
            "flagged": round(scores["flagged"], 5),
            "unflagged right": round((unflagged - scores["wrong_unflagged"]) / unflagged, 5) if unflagged else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=MODELS)
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=RUNTIMES)
    parser.add_argument("--digits", type=int, default=5000, help="single test digits, clean and photographed")
    parser.add_argument("--numbers", type=int, default=1000, help="4-digit numbers of each kind")
    parser.add_argument("--font-numbers", type=int, default=10, help="printed 4-digit numbers per font and spacing")
    parser.add_argument("--mnist", type=Path, help="MNIST's raw files (default: ROOT/data/raw/MNIST/raw)")
    parser.add_argument("--out", type=Path, help="the results file (default: benchmarks/results/reader-MODEL-RUNTIME.json)")
    args = parser.parse_args()
    commit = git_commit()  # the code measured, as it is when the run starts

    images, labels = read_raw("t10k", args.mnist or args.root / "data" / "raw" / "MNIST" / "raw")
    rng = np.random.default_rng(0)
    fonts = sorted(Path("/usr/share/fonts").rglob("*.ttf"))
    sets = {"single MNIST digits": single_digits(images, labels, args.digits, rng),
            "4-digit MNIST numbers on paper": numbers_on_paper(images, labels, args.numbers),
            f"printed in {len(fonts)} fonts": printed(fonts, args.font_numbers, rng)}
    # each image read once, with every rule and by the classifier alone, on a process per core
    flat = {(group, kind): items for group, kinds in sets.items() for kind, items in kinds.items() if items}
    read = read_sets(flat, partial(Reader, args.model, args.root, args.runtime), workers())
    rates = {group: {} for group in sets}
    for (group, kind), items in flat.items():
        rate = rates[group][kind] = rates_of(*read[group, kind], [truth for _, truth in items])
        unflagged = "-" if rate["unflagged right"] is None else f"{rate['unflagged right']:.2%}"
        print(f"{group}, {kind} ({rate['n']}): with the line model {rate['with the line model']:.2%}, digits only "
              f"{rate['digits only']:.2%}; flagged {rate['flagged']:.1%}, the rest {unflagged} right", flush=True)
    models = args.root / "models"
    line_model = "numbers.onnx" if args.runtime == "onnx" else "numbers.pth"
    classifier = f"{args.model}.onnx" if args.runtime == "onnx" else f"{args.model}.pth"
    result = {"date": datetime.date.today().isoformat(), "commit": commit, "model": args.model, "runtime": args.runtime,
              "models_md5": {name: md5_of(models / name) for name in (classifier, line_model)},
              "fonts": [p.name for p in fonts], "exact": rates}
    sizes = sized_variant(parser, args, ["digits", "numbers", "font_numbers"])
    out = args.out or RESULTS_DIR / f"reader-{args.model}-{args.runtime}{sizes}.json"
    write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
