"""The whole reader scored on sets of images: read right, flagged, wrong without a flag, and
the floor (each piece of ink read as one digit by the classifier alone).

One scoring for the stage evaluate_writers (the test split's writers, for `dvc metrics diff`) and
for the benchmarks that judge a change on the validation split's (benchmarks/other_writers.py,
benchmarks/reader_rules.py).
"""
import numpy as np


def read_sets(sets: dict, reader) -> dict:
    """{set: (the reader's answers, the classifier alone's digits)} for {set: [(image, digits)]}:
    both from one look at each image (digit_reader's Reader.read_image_and_floor)."""
    read = {}
    for name, items in sets.items():
        answers = [reader.read_image_and_floor(image) for image, _ in items]
        read[name] = ([whole for whole, _ in answers], [floor["digits"] for _, floor in answers])
    return read


def answer_scores(readings: list[dict], truths: list[str]) -> dict:
    """Read right, flagged, and wrong without a flag, as fractions of the readings."""
    right = np.array([r["digits"] == t for r, t in zip(readings, truths)])
    flagged = np.array([r["uncertain"] for r in readings])
    return {"exact": round(float(right.mean()), 6), "flagged": round(float(flagged.mean()), 6),
            "wrong_unflagged": round(float((~right & ~flagged).mean()), 6)}


def score(readings: list[dict], pieces: list[str], truths: list[str]) -> dict:
    """answer_scores, and how often the classifier alone reads each piece right (the floor)."""
    return {**answer_scores(readings, truths), "pieces": round(float(np.mean([p == t for p, t in zip(pieces, truths)])), 6)}
