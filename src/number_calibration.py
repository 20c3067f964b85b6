"""A confidence that means something: temperature scaling and the uncertain threshold.

Temperature scaling (Guo et al. 2017): one scalar dividing the logits, chosen on validation
numbers to minimise their CTC negative log-likelihood; it changes no reading, only how sure the
model says it is. The confidence of a reading is then the probability of the digits read, over
all CTC alignments (src/number_model.py's greedy_decode).

The threshold: the lowest confidence at which the validation numbers read at least that sure are
right at least `unflagged_accuracy` of the time. Below it a number is flagged uncertain. Near that
accuracy the share of numbers kept hardly moves it, so a few errors more or less in the sample move
the threshold far; hence many numbers, read set by set
(benchmarks/notes/reader.md#2026-12-05-twenty-sixth-session-a-threshold-from-many-numbers).
"""
from typing import NamedTuple

import torch

from src.number_model import ctc_loss, greedy_decode

FLAG_ALL = 2.0   # a threshold above any probability: every number flagged
TEMPERATURES = [round(0.25 * 2 ** (i / 8), 4) for i in range(33)]  # 0.25 .. 4, geometric


class Readings(NamedTuple):
    """The line model's fp32 logits for a set of numbers, with their labels and widths: what
    calibration needs of a set, without its images."""
    logits: torch.Tensor
    labels: list[str]
    widths: torch.Tensor


def fit_temperature(sets: list[Readings]) -> float:
    """The temperature of TEMPERATURES with the lowest total CTC loss over `sets`: a grid, deterministic."""
    losses = [sum(ctc_loss(s.logits, s.labels, s.widths, t, reduction="sum").item() for s in sets)
              for t in TEMPERATURES]
    return TEMPERATURES[min(range(len(losses)), key=losses.__getitem__)]


def choose_threshold(confidences: list[float], correct: list[bool], unflagged_accuracy: float) -> float:
    """The lowest threshold whose unflagged readings (confidence >= threshold) are right at
    least `unflagged_accuracy` of the time; above every confidence if none is. A threshold keeps
    every reading of its confidence, so it is judged only after the last of them."""
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    threshold, right = FLAG_ALL, 0
    for k, i in enumerate(order, 1):
        right += correct[i]
        last_of_its_confidence = k == len(order) or confidences[order[k]] != confidences[i]
        if last_of_its_confidence and right / k >= unflagged_accuracy:
            threshold = confidences[i]
    return threshold


def flag_report(confidences: list[float], correct: list[bool], threshold: float) -> dict:
    """The share flagged uncertain and the accuracy of the rest."""
    kept = [c for conf, c in zip(confidences, correct) if conf >= threshold]
    return {"flagged": round(1 - len(kept) / max(1, len(correct)), 6),
            "unflagged_accuracy": round(sum(kept) / len(kept), 6) if kept else None,
            "numbers": len(correct)}


def calibrate(model, sets: list[Readings], unflagged_accuracy: float) -> dict:
    """Fit the temperature and the threshold on the readings of validation numbers `sets`, store
    both in the model's buffers, and return what was chosen with its effect on those numbers."""
    temperature = fit_temperature(sets)
    confidences, correct = [], []
    for s in sets:
        readings = greedy_decode(s.logits, s.widths, temperature)
        confidences += [r.confidence for r in readings]
        correct += [r.digits == label for r, label in zip(readings, s.labels)]
    threshold = choose_threshold(confidences, correct, unflagged_accuracy)
    model.temperature.fill_(temperature)
    model.threshold.fill_(threshold)
    return {"temperature": temperature, "threshold": threshold, "validation": flag_report(confidences, correct, threshold)}
