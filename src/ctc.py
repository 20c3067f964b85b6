"""Reading the line model's scores: greedy CTC decoding and the probability of a reading, in NumPy.

Used by the pipeline's stages and by the reader alike, so that a reader on the onnx runtime
never imports torch: best class per column, repeats merged, blanks dropped; each digit's
probabilities at the column where it is most probable; the confidence is the probability of
the digits read summed over all CTC alignments (the forward algorithm of Graves et al. 2006),
which tests/test_numbers.py checks against PyTorch's CTC loss.
"""
from dataclasses import dataclass, field

import numpy as np

BLANK = 10           # class index of CTC's blank; 0-9 are the digits themselves
CLASSES = 11
STRIDE = 4           # input columns per output column of the line model


@dataclass
class Reading:
    digits: str
    confidence: float                   # the probability of `digits` (all CTC alignments), after temperature
    probs: list                         # per digit: its 10 digit probabilities (renormalised without blank)
    spans: list                         # per digit: (first, last + 1) input columns of its frames
    log_probs: np.ndarray = field(default=None, repr=False)   # T x 11, after temperature

    def probability_of(self, digits: str) -> float:
        """The probability of another reading, `digits`, of the same columns."""
        return float(np.exp(label_log_probability(self.log_probs, [int(d) for d in digits])))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def label_log_probability(log_probs: np.ndarray, label: list[int]) -> float:
    """log P(label | columns) for T x 11 log-probabilities: the CTC forward recursion over the
    label with blanks between and around its digits."""
    extended = np.full(2 * len(label) + 1, BLANK)
    extended[1::2] = label
    # a column may skip the blank between two different digits, never between two equal ones
    skip = np.zeros(len(extended), bool)
    skip[3::2] = extended[3::2] != extended[1:-2:2]
    alpha = np.full(len(extended), -np.inf)
    alpha[:2] = log_probs[0, extended[:2]]
    for t in range(1, len(log_probs)):
        stay, step = alpha, np.concatenate([[-np.inf], alpha[:-1]])
        jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], alpha[:-2]])[:len(alpha)], -np.inf)
        alpha = np.logaddexp(np.logaddexp(stay, step), jump) + log_probs[t, extended]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if len(extended) > 1 else alpha[-1])


def greedy_decode(logits: np.ndarray, width: int, temperature: float = 1.0) -> Reading:
    """One line's T x 11 logits (of which the first ceil(width / 4) columns are the line's)."""
    n = min(len(logits), -(-width // STRIDE))
    scaled = logits[:n].astype(np.float64) / temperature
    probs = softmax(scaled)
    path = probs.argmax(-1)
    digits, digit_probs, spans = [], [], []
    t = 0
    while t < n:
        end = t
        while end + 1 < n and path[end + 1] == path[t]:
            end += 1
        if path[t] != BLANK:
            peak = t + int(probs[t:end + 1, path[t]].argmax())
            digits.append(int(path[t]))
            digit_probs.append((probs[peak, :BLANK] / probs[peak, :BLANK].sum()).tolist())
            spans.append((t * STRIDE, (end + 1) * STRIDE))
        t = end + 1
    log_probs = scaled - np.logaddexp.reduce(scaled, axis=-1, keepdims=True)
    confidence = float(np.exp(label_log_probability(log_probs, digits))) if n else 0.0
    return Reading("".join(map(str, digits)), confidence, digit_probs, spans, log_probs)
