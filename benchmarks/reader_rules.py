"""Each of the reader's rules left out in turn, on validation numbers of MNIST and of other writers.

    python -m benchmarks.reader_rules [--root .] [--mnist data/raw/MNIST/raw] [--writers 100] [--per-set 300]
                                      [--mnist-per-kind 1000] [--mnist-single 1000] [--out FILE]

The rules are digit_reader/rules.py's table: CASES (whose reading is the answer), FLAGS (which
readings are flagged uncertain) and the zooms (an unsure line read again at other scales). Both
models read each image once (digit_reader/numbers.py's `see`); then every variant decides on
those same readings: all the rules, and each case, flag and the zooms left out (a case left out
passes its numbers on to the next that holds; the last case, which always holds, stays). Scored
on the validation split only, never the test split: the sets of benchmarks/other_writers.py by
the validation writers (its single-digit sets --per-set each, not its 1,000); and from MNIST's validation digits (the split of --root's params.yaml,
from the raw files in --mnist), single digits, clean and photographed, and 4-digit numbers of each
kind on paper, as benchmarks/reader_accuracy.py makes them of the test digits. Prints each variant's scores
and writes them to benchmarks/results/reader-rules-val.json with the commit measured
(benchmarks/notes/reader.md#the-rules-each-left-out).
"""
import argparse
import datetime
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.hardware import RESULTS_DIR, git_commit, sized_variant
from benchmarks.reader_accuracy import numbers_on_paper, single_digits
from digit_reader.numbers import parts_of, see
from digit_reader.reader import DEFAULT_MODEL, Reader, answer
from digit_reader.rules import ALL, CASES, FLAGS
from src.config import load_params
from src.fileio import RAW_DIR, md5_of, write_json
from src.preprocess import read_raw, split_train_val
from src.reader_scores import answer_scores
from src.writer_sets import sets_of


def variants() -> dict:
    """All the rules, then each left out."""
    out = {"all rules": ALL}
    for i, case in enumerate(CASES[:-1]):
        out[f"without case {i + 1}: {case.when}"] = replace(ALL, cases=CASES[:i] + CASES[i + 1:])
    for i, flag in enumerate(FLAGS):
        out[f"without flag {i + 1}: {flag.when}"] = replace(ALL, flags=FLAGS[:i] + FLAGS[i + 1:])
    out["without the zooms"] = replace(ALL, zooms=False)
    return out


def mnist_sets(raw: Path, data_params: dict, per_kind: int, single: int) -> dict:
    """MNIST's validation digits as benchmarks/reader_accuracy.py makes its test sets."""
    _, (images, labels) = split_train_val(*read_raw("train", raw), data_params["val_size"], data_params["seed"])
    digits = single_digits(images, labels, single, np.random.default_rng(0))
    sets = {"mnist_single": digits["clean"], "mnist_single_photographed": digits["photographed"]}
    return sets | {f"mnist_{kind}": items for kind, items in numbers_on_paper(images, labels, per_kind).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--mnist", type=Path, default=RAW_DIR, help="the raw MNIST files")
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--per-set", type=int, default=300)
    parser.add_argument("--mnist-per-kind", type=int, default=1000)
    parser.add_argument("--mnist-single", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = sized_variant(parser, args, ["writers", "per_set", "mnist_per_kind", "mnist_single"])
    args.out = args.out or RESULTS_DIR / f"reader-rules-val{sizes}.json"
    commit = git_commit()
    cfg = {"seed": 0, "writers": args.writers, "single": args.per_set, "per_set": args.per_set}
    data_params = load_params(args.root / "params.yaml")["data"]
    sets = {**sets_of(cfg, "val"), **mnist_sets(args.mnist, data_params, args.mnist_per_kind, args.mnist_single)}
    reader = Reader(root=args.root)
    seen = {name: [see(image, reader.probabilities, reader.lines) for image, _ in items] for name, items in sets.items()}
    results = {}
    for variant, rules in variants().items():
        results[variant] = {name: answer_scores([answer(parts_of(s, rules)) for s in seen[name]], [t for _, t in sets[name]])
                            for name in sets}
        print(variant)
        print("   " + "  ".join(f"{name} {s['exact']:.1%} ({s['flagged']:.0%} flagged, {s['wrong_unflagged']:.1%} wrong unflagged)"
                                for name, s in results[variant].items()), flush=True)
    models = {name: md5_of(args.root / "models" / f"{name}.onnx") for name in (DEFAULT_MODEL, "numbers")}
    write_json(args.out, {"date": datetime.date.today().isoformat(), "commit": commit, "split": "val", **cfg,
                          "mnist_per_kind": args.mnist_per_kind, "mnist_single": args.mnist_single, "models_md5": models, "variants": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
