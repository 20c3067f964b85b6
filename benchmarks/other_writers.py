"""The whole reader on other writers' validation sets: where each ingredient is measured.

    python -m benchmarks.other_writers [--root .] [--split val] [--writers 100] [--single 1000]
                                       [--per-set 300] [--out FILE]

The stage evaluate_writers scores the **test** split's writers, once, for `dvc metrics diff`: a
recipe tuned on them would be tuned on its own exam. This scores the **validation** split's writers
(never trained on either; src/writers.py) with the same sets and the same scores, with the models
under --root: what a change to the line model's training or to the reader's rules is judged on
(benchmarks/notes/reader.md#2026-12-02-other-writers-the-benchmark-and-the-first-rules). Prints each
set's scores and writes them to benchmarks/results/writers-<split>.json with the commit measured.
"""
import argparse
import datetime
from functools import partial
from pathlib import Path

from benchmarks.hardware import RESULTS_DIR, git_commit, sized_variant
from digit_reader.reader import DEFAULT_MODEL, Reader
from src.fileio import md5_of, write_json
from src.parallel import workers
from src.reader_scores import read_sets, score
from src.writer_sets import sets_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--single", type=int, default=1000)
    parser.add_argument("--per-set", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commit = git_commit()
    cfg = {"seed": 0, "writers": args.writers, "single": args.single, "per_set": args.per_set}
    sets = sets_of(cfg, args.split, workers())
    read = read_sets(sets, partial(Reader, root=args.root), workers())
    scores = {name: score(readings, pieces, [t for _, t in sets[name]]) for name, (readings, pieces) in read.items()}
    for name, s in scores.items():
        print(f"{name:15} exact {s['exact']:.1%} (classifier alone {s['pieces']:.1%}), flagged {s['flagged']:.1%}, "
              f"wrong and not flagged {s['wrong_unflagged']:.1%}")
    models = {name: md5_of(args.root / "models" / f"{name}.onnx") for name in (DEFAULT_MODEL, "numbers")}
    out = args.out or RESULTS_DIR / f"writers-{args.split}{sized_variant(parser, args, ['writers', 'single', 'per_set'])}.json"
    write_json(out, {"date": datetime.date.today().isoformat(), "commit": commit, "split": args.split, **cfg,
                     "models_md5": models, "sets": scores})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
