"""How the reader decides between its two models: every rule, in the order it is applied.

Both models read the same ink. The per-digit classifier reads each piece of ink (a connected
component, digit_reader/image.py) as one digit; the line model (src/number_model.py) reads the
whole line, and so reads digits that touch or overlap, which no segmentation can split. What the
line model read (its digits, their count, its calibrated confidence) against the pieces decides
whose reading is the answer. CASES is that decision as a table: the first case that holds is
applied. Then FLAGS mark the readings that are wrong far more often than the others as
uncertain (on top of the line model's own confidence, calibrated on composed lines where the scale
is known: src/number_calibration.py).

Each rule names the section of the notes that made it. What each adds now, on the validation
numbers of MNIST and of the other writers, is measured by leaving it out, each in turn
(`python -m benchmarks.reader_rules`; benchmarks/notes/reader.md#the-rules-each-left-out); a
rule without a measured gain there is not kept.

Counting, not positions: CTC puts a digit's spike anywhere on or beside the digit, so the spikes'
columns say little about which piece a digit belongs to; a wrong share only moves a box, never
changes the digits read.
"""
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from src.ctc import Reading

ZOOMS = (1.0, 0.9, 1.1)   # digit heights, as fractions of the estimate, at which an unsure line is read
LINE_VOTE = 2        # in both models' mean, the line model's share is its reading's confidence to this power
# Any digit answered with a lower probability is flagged, not silently guessed:
# benchmarks/notes/reader.md#how-far-uncertain-can-be-trusted
UNCERTAIN_BELOW = 0.7
DIGIT_SURE = 0.7     # a lone digit is flagged where the classifier's top probability is under this and the line model is unsure
LONE_DIGIT_ASPECT = 2.0   # a piece at most this many times as wide as tall may be one digit: 6 of MNIST's 60,000 training digits are wider
ONE_RATHER_THAN_SEVERAL = 0.5   # a piece is one digit to the classifier where its probability of several digits is under this: more likely one


@dataclass
class Part:
    probs: np.ndarray           # the 10 digit probabilities
    box: tuple                  # x0, y0, x1, y1 in the image's pixels
    line_uncertain: bool        # uncertain on the line model's account (FLAGS); without it, on the classifier's (classified)
    source: str                 # "digit" (the classifier), "line" (the line model) or "both" (their mean)


class Facts:
    """What the rules ask of one number: its pieces of ink (boxes, the classifier's
    probabilities) and the line model's reading of them."""

    def __init__(self, boxes, digit_probs: np.ndarray, reading: Reading, threshold: float,
                 zooms: Callable[[], list[Reading]] | None = None, one_digit: Callable[[], Reading | None] = lambda: None,
                 several: np.ndarray | None = None):
        self.boxes, self.digit_probs, self.reading = [tuple(b) for b in boxes], digit_probs, reading
        self.several = several           # per piece, the classifier's probability that it is several digits (or None)
        self.pieces, self.read = len(self.boxes), len(reading.digits)
        self.threshold = threshold
        self.sure = reading.confidence >= threshold
        self.zooms = zooms if zooms is not None else (lambda: [reading])   # the line model's readings at every zoom (asked lazily)
        self.one_digit = one_digit       # the line read at one digit's scale, or None (digit_reader/numbers.py; lazily)


def one_wide_digit(f: Facts) -> bool:
    """A lone piece no wider than one digit can be, which the line model, reading the line at one
    digit's scale, reads as one digit more surely than it reads each of the several digits it
    reads at the line's scale (a reading of n digits is as sure as the product of n: compared per
    digit, its n-th root). Against three digits or more, the one digit must also be sure (the
    threshold): three or four overlapping digits squeezed into one digit's width read as one
    digit surely enough to beat them per digit."""
    (x0, y0, x1, y1), = f.boxes
    if x1 - x0 > LONE_DIGIT_ASPECT * (y1 - y0):
        return False
    alone = one_digit_there(f)
    return alone is not None and alone.confidence > f.reading.confidence ** (1 / f.read) and (
        f.read == 2 or alone.confidence >= f.threshold)


def several_to_the_classifier(several) -> np.ndarray:
    """Per piece, whether the classifier, which learned two touching digits as a class of their own
    (SEVERAL), finds it more likely several digits than one."""
    return np.asarray(several) >= ONE_RATHER_THAN_SEVERAL


def each_one_to_the_classifier(f: Facts) -> bool:
    """The classifier finds every piece more likely one digit than several."""
    return f.several is not None and not several_to_the_classifier(f.several).any()


def zooms_agree(f: Facts) -> bool:
    """The line model reads the same digits at every zoom."""
    return len({r.digits for r in f.zooms()}) == 1


def a_zoom_reads_the_classifiers_digits(f: Facts) -> bool:
    """At one of its zooms, the line model reads one digit per piece of ink: the classifier's digits."""
    digits = digits_read(f.digit_probs)
    return any(r.digits == digits for r in f.zooms())


def one_digit_there(f: Facts) -> Reading | None:
    """The line model's reading at one digit's scale, if it reads one digit there."""
    alone = f.one_digit()
    return alone if alone is not None and len(alone.digits) == 1 else None


def digits_read(probs) -> str:
    """The digits read from each digit's probabilities."""
    return "".join(str(int(p.argmax())) for p in probs)


# --- The answers: whose digits, in which boxes ---

def classified(boxes, digit_probs, several: np.ndarray | None = None) -> list[Part]:
    """Each piece one digit, as the classifier reads it. With `several` (the reader without its line
    model, which has nothing else to count digits by), a piece that the classifier finds more likely
    several digits than one is flagged: two touching digits read as one."""
    unsure = np.zeros(len(boxes), bool) if several is None else several_to_the_classifier(several)
    return [Part(probs, box, bool(flag), "digit") for probs, box, flag in zip(digit_probs, boxes, unsure)]


def classifier(f: Facts) -> list[Part]:
    return classified(f.boxes, f.digit_probs)


def mean_of_both(f: Facts) -> list[Part]:
    """Each piece one digit, its probabilities the mean of both models' (they make different
    mistakes), the line model's weighted by its confidence in its reading (LINE_VOTE): an unsure
    reading's per-digit probabilities can be near 1 all the same."""
    vote = f.reading.confidence ** LINE_VOTE
    return [Part((probs + vote * np.asarray(line_probs)) / (1 + vote), box, False, "both")
            for probs, line_probs, box in zip(f.digit_probs, f.reading.probs, f.boxes)]


def line_model(f: Facts) -> list[Part]:
    """The line model's digits, uncertain if it is unsure. Where it reads fewer digits than there
    are pieces, the neighbouring pieces closest together are joined; where more, the extra digits
    are shared among the widest pieces, each cut in equal widths. Where it reads nothing in the
    ink, the classifier's digits."""
    if not f.read:
        return classifier(f)
    if f.read <= f.pieces:
        return [Part(np.asarray(probs), box, not f.sure, "line")
                for probs, box in zip(f.reading.probs, merge_closest(f.boxes, f.read))]
    parts, first = [], 0
    for (x0, y0, x1, y1), count in zip(f.boxes, digit_counts(f.boxes, f.read)):
        edges = np.linspace(x0, x1, count + 1).round().astype(int).tolist()
        parts += [Part(np.asarray(f.reading.probs[first + j]), (edges[j], y0, edges[j + 1], y1), not f.sure, "line")
                  for j in range(count)]
        first += count
    return parts


@dataclass(frozen=True)
class Case:
    """A row of CASES: when it holds, `answer` gives the number's parts."""
    when: str
    holds: Callable[[Facts], bool]
    answer: Callable[[Facts], list[Part]]
    evidence: str     # the section of the notes with the rule's measured gain


CASES = (
    Case("one piece read as one digit: the classifier's digit, so that a lone digit is never read worse than the "
         "classifier reads it (issue 26's floor, by construction); the reader's classifier learned other writers' "
         "digits too (train.reader), which the line model's share of a mean brought before",
         lambda f: f.pieces == 1 and f.read == 1, classifier,
         "benchmarks/notes/reader.md#a-classifier-of-the-readers-own-thirteenth-session"),
    Case("as many digits as pieces: each piece one digit, both models' mean, the line model's weighted by its "
         "confidence (they make different mistakes)",
         lambda f: f.read == f.pieces, mean_of_both, "benchmarks/notes/reader.md#both-models-mean-weighted-by-the-line-models-confidence"),
    Case("one piece read as two digits, which the classifier, that learned two touching digits as a class of their "
         "own (several digits), finds more likely one digit: the classifier's digit (flagged, as the line model "
         "disputes it): a lone digit that the line model splits in two is read as the classifier reads it (issue "
         "26's floor), where a touching pair still reads as two",
         lambda f: f.pieces == 1 and f.read == 2 and each_one_to_the_classifier(f), classifier,
         "benchmarks/notes/reader.md#several-digits-a-class-of-the-classifiers-own-fourteenth-session"),
    Case("one piece read as two or more digits, but as one digit at one digit's scale (its ink as wide as MNIST's "
         "box), more surely than each of the several (and surely, against three or more), and no wider than one "
         "digit can be: a digit wider than tall, not touching ones",
         lambda f: f.pieces == 1 and f.read >= 2 and one_wide_digit(f), classifier,
         "benchmarks/notes/reader.md#a-lone-piece-at-one-digits-scale"),
    Case("several pieces read as more digits than pieces, which at another zoom the line model reads as one digit "
         "a piece, the classifier's digits, each piece one digit to the classifier (more likely one than several): "
         "the classifier's digits (flagged, as the line model disputes them): a digit of a number whose digits "
         "stand apart, split in two by the line model at one scale only (a 4 read as 14), is read as the classifier "
         "reads it (issue 26's floor)",
         lambda f: 2 <= f.pieces < f.read and each_one_to_the_classifier(f) and a_zoom_reads_the_classifiers_digits(f),
         classifier, "benchmarks/notes/reader.md#a-digit-too-many-that-another-zoom-does-not-read-fifteenth-session"),
    Case("any other count: the line model's digits (touching digits; a digit broken in two; flagged where it is unsure)",
         lambda f: True, line_model,
         "benchmarks/notes/reader.md#2026-11-30-the-reader-on-paper-second-pass-a-digits-height-per-column-the-line-models-digits-first"),
)


# --- The flags, applied after the choice: the first that holds marks its parts uncertain ---

@dataclass(frozen=True)
class Flag:
    """A row of FLAGS: when `holds(parts, facts)`, the parts that `marks` are flagged."""
    when: str
    holds: Callable[[list[Part], Facts], bool]
    marks: Callable[[Part], bool]
    evidence: str


def disputed(parts: list[Part], f: Facts) -> bool:
    return digits_read(p.probs for p in parts) != f.reading.digits


def split_unstable(parts: list[Part], f: Facts) -> bool:
    return any(p.source == "line" and not p.line_uncertain for p in parts) and not zooms_agree(f)


def one_digit_unsteady(parts: list[Part], f: Facts) -> bool:
    return len(parts) == 1 and not zooms_agree(f)


def one_digit_both_unsure(parts: list[Part], f: Facts) -> bool:
    return len(parts) == 1 and f.pieces == 1 and not f.sure and f.digit_probs.max() < DIGIT_SURE


FLAGS = (
    Flag("the line model reads other digits than the answer, sure or not (two touching digits alone read as one "
         "wide digit: the pairs' commonest misreading)",
         disputed, lambda part: True, "benchmarks/notes/reader.md#how-far-uncertain-can-be-trusted"),
    Flag("digits the line model split out of the ink, where its zooms read otherwise: the split rests on the "
         "estimate of the line's scale", split_unstable, lambda part: part.source == "line",
         "benchmarks/notes/reader.md#how-far-uncertain-can-be-trusted"),
    Flag("one digit, where the line model's zooms read otherwise (two touching digits read as one, where a zoom "
         "sees two)", one_digit_unsteady, lambda part: True,
         "benchmarks/notes/reader.md#a-lone-piece-read-as-two-digits-confidently"),
    Flag("one digit of one piece that neither model is sure of: the line model under its threshold, the classifier "
         "under DIGIT_SURE (two touching digits read as one, where a zoom sees no second)", one_digit_both_unsure,
         lambda part: True, "benchmarks/notes/reader.md#a-lone-digit-neither-model-is-sure-of"),
)


@dataclass(frozen=True)
class Rules:
    """The rules in force: CASES and FLAGS, and whether an unsure line is read again at ZOOMS
    (digit_reader/numbers.py). Fewer of them to measure what each one adds
    (benchmarks/reader_rules.py)."""
    cases: tuple = CASES
    flags: tuple = FLAGS
    zooms: bool = True


ALL = Rules()


def decide(boxes, digit_probs: np.ndarray, reading: Reading, threshold: float,
           zooms: Callable[[], list[Reading]] | None = None, rules: Rules = ALL,
           one_digit: Callable[[], Reading | None] = lambda: None, several: np.ndarray | None = None) -> list[Part]:
    """The parts of a number, left to right, with their flags: the first of the cases that holds,
    then the first of the flags that holds. `zooms` gives the line model's readings at every zoom
    (`reading` among them; without it, `reading` alone), `one_digit` what it reads at one digit's
    scale (each asked only where it matters), `several` each piece's probability of several digits
    (None: a classifier without that output)."""
    facts = Facts(boxes, digit_probs, reading, threshold, zooms, one_digit, several)
    parts = next(case.answer(facts) for case in rules.cases if case.holds(facts))
    for flag in rules.flags:
        if flag.holds(parts, facts):
            return [replace(p, line_uncertain=True) if flag.marks(p) else p for p in parts]
    return parts


def unsure(probs: np.ndarray, line_uncertain: bool = False) -> bool:
    """Whether a digit is flagged uncertain in the answer: its top probability under
    UNCERTAIN_BELOW, or flagged on the line model's account."""
    return bool(probs.max() < UNCERTAIN_BELOW or line_uncertain)


def agreed(first: list[Part], finer: list[Part]) -> list[Part]:
    """A fine grid's page, read twice (digit_reader/paper.py's FINE): its grid painted at the
    page's resolution (`first`) and at FINER times it (`finer`, more often right there). The finer
    reading, flagged unless both read the same digits and neither is flagged; the first, flagged,
    where the finer one found no digit."""
    if not finer:
        return [replace(p, line_uncertain=True) for p in first]
    same = digits_read(p.probs for p in first) == digits_read(p.probs for p in finer)
    if same and not any(unsure(p.probs, p.line_uncertain) for p in first + finer):
        return finer
    return [replace(p, line_uncertain=True) for p in finer]


def merge_closest(boxes, count: int) -> list[tuple]:
    """`boxes` (x0, y0, x1, y1), left to right, merged down to `count`: each time, the two
    neighbours with the narrowest gap between them become their union."""
    boxes = [tuple(box) for box in boxes]
    while len(boxes) > count:
        k = min(range(len(boxes) - 1), key=lambda i: boxes[i + 1][0] - boxes[i][2])
        a, b = boxes[k], boxes[k + 1]
        boxes[k:k + 2] = [(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))]
    return boxes


def digit_counts(boxes, total: int) -> list[int]:
    """How many of `total` digits each piece of ink (x0, y0, x1, y1) holds: one each, and any
    more to the piece that is widest for its height and the digits it already holds."""
    counts = [1] * len(boxes)
    for _ in range(total - len(boxes)):
        widest = max(range(len(boxes)), key=lambda k: (boxes[k][2] - boxes[k][0]) / ((boxes[k][3] - boxes[k][1]) * counts[k]))
        counts[widest] += 1
    return counts
