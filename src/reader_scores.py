"""The whole reader scored on sets of images: read right, flagged, wrong without a flag, and
the floor (each piece of ink read as one digit by the classifier alone).

One scoring for the stage evaluate_writers (the test split's writers, for `dvc metrics diff`) and
for the benchmarks that judge a change on the validation split's (benchmarks/other_writers.py,
benchmarks/reader_rules.py).
"""
import numpy as np

from src.parallel import mapped_in_order

READ_CHUNK = 100   # images sent to a reading process at a time: few, as a photo takes several times a clean
                   # image's reading, so that neither process long waits on the other's last chunk
_reader = None     # this process's reader, made by read_sets' `make_reader` before its first image


def read_sets(sets: dict, make_reader, processes: int = 1) -> dict:
    """{set: (the reader's answers, the classifier alone's digits)} for {set: [(image, digits)]}:
    both from one look at each image (digit_reader's Reader.read_image_and_floor), the images
    shared among `processes`, each with its own reader, `make_reader(threads=...)` (e.g. a partial
    of digit_reader's Reader), on one thread: a reader spends most of an image in Python, and
    onnxruntime's idle threads spin, so two processes read nearly twice as fast as one on two
    threads (benchmarks/notes/hardware.md#evaluate_writers-read-on-two-processes)."""
    images = [image for items in sets.values() for image, _ in items]
    answers = iter(mapped_in_order(_read, images, processes, READ_CHUNK, start=_start_reading,
                                   start_args=(make_reader, 1 if processes > 1 else None)))
    read = {}
    for name, items in sets.items():
        both = [next(answers) for _ in items]
        read[name] = ([whole for whole, _ in both], [floor["digits"] for _, floor in both])
    return read


def _start_reading(make_reader, threads) -> None:
    global _reader
    _reader = make_reader(threads=threads)


def _read(image) -> tuple[dict, dict]:
    return _reader.read_image_and_floor(image)


def answer_scores(readings: list[dict], truths: list[str]) -> dict:
    """Read right, flagged, and wrong without a flag, as fractions of the readings."""
    right = np.array([r["digits"] == t for r, t in zip(readings, truths)])
    flagged = np.array([r["uncertain"] for r in readings])
    return {"exact": round(float(right.mean()), 6), "flagged": round(float(flagged.mean()), 6),
            "wrong_unflagged": round(float((~right & ~flagged).mean()), 6)}


def score(readings: list[dict], pieces: list[str], truths: list[str]) -> dict:
    """answer_scores, and how often the classifier alone reads each piece right (the floor)."""
    return {**answer_scores(readings, truths), "pieces": round(float(np.mean([p == t for p, t in zip(pieces, truths)])), 6)}
