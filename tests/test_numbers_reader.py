"""The reader's side of the line model: a user's image of a number brought to one MNIST-scale line
(digit_reader/line.py), and the per-digit classifier and the line model combined
(digit_reader/numbers.py)."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw
from scipy import ndimage

from digit_reader.image import BOX, digits_in
import digit_reader.line
from digit_reader.line import LEVEL_WITHIN, MARGIN as LINE_MARGIN, levelled, line_maker, line_of, tilt
from digit_reader.numbers import LineModel, Seen, Zooms, parts_of, read_parts, see, split_several
from digit_reader.reader import answer
from digit_reader.rules import (ALL, CASES, DIGIT_SURE, FLAGS, LINE_VOTE, LONE_DIGIT_ASPECT, ONE_RATHER_THAN_SEVERAL, Part,
                                UNCERTAIN_BELOW, agreed, decide, digit_counts)
from src.ctc import BLANK, STRIDE, greedy_decode
from src.number_images import MARGIN, WIDTH_STEP, fixed_numbers
from tools.user_images import composed_on_paper, number_on_paper

from tests.conftest import ROOT, on_paper


@pytest.fixture(scope="module")
def touching(mnist_test_digits):
    images, labels = map(torch.from_numpy, mnist_test_digits)
    return fixed_numbers(images, labels, [4] * 12, ["touching"] * 12, seed=0)


@pytest.mark.parametrize("scale", [1.0, 3.0, 7.5])
def test_a_photographed_number_comes_back_at_mnists_scale(touching, scale):
    for line, width in zip(touching.images[:6], touching.widths[:6]):
        original = line[:, :int(width)].numpy()
        found = line_of(number_on_paper(original, scale))
        assert found.pixels.shape[0] == 28 and found.pixels.shape[1] % WIDTH_STEP == 0
        assert found.pixels.dtype == np.float32 and found.pixels.max() == pytest.approx(1.0)
        # about the original's size: the digits' height back to ~20 px, the number's length with it
        assert abs(found.width - int(width)) <= 0.2 * int(width) + 2
        assert abs(ndimage.center_of_mass(found.pixels)[0] - 14) < 1.0
        # the line's ends map back to the ends of the ink that segmentation keeps
        pieces = digits_in(number_on_paper(original, scale))
        start, end = pieces[0].box[0], max(p.box[2] for p in pieces)
        assert abs(found.to_image_x(MARGIN) - start) <= 2 * scale + 1
        assert abs(found.to_image_x(found.width - MARGIN) - end) <= 2 * scale + 2


def test_digits_that_overlap_come_back_at_their_own_height_not_their_unions(mnist_test_digits):
    # overlapping digits make one piece of ink, taller than any of its digits (they do not share
    # a baseline): scaled by the piece's height, the line came back ~10% too small on average
    images, labels = map(torch.from_numpy, mnist_test_digits)
    numbers = fixed_numbers(images, labels, [4] * 20, ["overlap"] * 20, seed=0)
    errors = [abs(line_of(number_on_paper(line[:, :int(width)].numpy())).width - int(width)) / int(width)
              for line, width in zip(numbers.images, numbers.widths)]
    assert np.mean(errors) < 0.07


def test_zooms_scale_the_line_about_the_estimated_height(touching):
    image = number_on_paper(touching.images[0][:, :int(touching.widths[0])].numpy())
    make = line_maker(image)
    plain, smaller, larger = make(1.0), make(0.9), make(1.1)
    assert np.array_equal(plain.pixels, line_of(image).pixels)
    digits = plain.width - 2 * LINE_MARGIN
    assert smaller.width - 2 * LINE_MARGIN == pytest.approx(0.9 * digits, abs=1.5)
    assert larger.width - 2 * LINE_MARGIN == pytest.approx(1.1 * digits, abs=1.5)
    for line in (smaller, larger):  # the same ink, mapped back to the same place in the image
        assert line.to_image_x(LINE_MARGIN) == pytest.approx(plain.to_image_x(LINE_MARGIN), abs=3)
    assert line_maker(Image.new("L", (200, 80), 255)) is None


def digits_rows_in_the_line(line) -> list[float]:
    """The row of each digit's centre of mass in a line whose digits stand apart."""
    inked = line.pixels[:, :line.width].max(0) > 0.2
    runs, count = ndimage.label(inked)
    return [ndimage.center_of_mass(line.pixels[:, :line.width][:, runs == k])[0] for k in range(1, count + 1)]


@pytest.mark.parametrize("degrees", [-12, -6, 6, 12])
def test_writing_askew_is_set_level_for_the_line_model(mnist_test_digits, degrees, monkeypatch):
    # MNIST's "2021", digits apart, turned: the line's digits sit on one row, as in the composed
    # training numbers, but for LEVEL_WITHIN (3 degrees: 3-4 rows from the first digit to the
    # last); left as they were, 7-11 rows apart (the line model read "202" from 5 degrees)
    image = on_paper(mnist_test_digits[0][[1, 3, 1, 2]], gaps=[9, 5, 12]).rotate(
        degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    rows = digits_rows_in_the_line(line_of(image))
    assert len(rows) == 4 and max(rows) - min(rows) < 4.5, rows
    # the columns stay the image's: each digit of the line maps back inside its own piece of ink
    line, pieces = line_of(image), digits_in(image)
    runs, _ = ndimage.label(line.pixels[:, :line.width].max(0) > 0.2)
    for k, piece in enumerate(pieces, 1):
        columns = np.flatnonzero(runs == k)
        assert piece.box[0] - 6 <= line.to_image_x(columns.mean()) <= piece.box[2] + 6
    monkeypatch.setattr(digit_reader.line, "tilt", lambda pieces, height: 0.0)
    rows = digits_rows_in_the_line(line_of(image))
    assert max(rows) - min(rows) > 6


def pieces_at(middles: list[tuple[int, int]], size: int = 20) -> list:
    """Square pieces of ink `size` pixels a side, centred at each (column, row)."""
    return [((slice(y - size // 2, y + size // 2), slice(x - size // 2, x + size // 2)), np.ones((size, size), bool))
            for x, y in middles]


def test_the_tilt_is_the_slope_of_the_digits_middles_and_nothing_unsure():
    rising = [(30 + 30 * i, 100 - round(0.2 * 30 * i)) for i in range(5)]
    assert tilt(pieces_at(rising), 20) == pytest.approx(-0.2, abs=0.02)
    # one digit written high moves it little; a stray mark far off the line, or digits up and down
    # at random, give no slope at all; nor do two digits, or three within 2 digits' heights
    high = [(x, y - 3) if i == 2 else (x, y) for i, (x, y) in enumerate(rising)]
    assert tilt(pieces_at(high), 20) == pytest.approx(-0.2, abs=0.05)
    assert tilt(pieces_at(rising + [(180, 160)]), 20) == 0.0
    assert tilt(pieces_at([(30, 100), (60, 80), (90, 104), (120, 84)]), 20) == 0.0
    assert tilt(pieces_at(rising[:2]), 20) == 0.0
    assert tilt(pieces_at([(30, 100), (40, 98), (55, 96)]), 20) == 0.0
    # digits that touch: one wide piece gives a point per digit's width
    box = (slice(40, 90), slice(10, 130))
    mask = np.zeros((50, 120), bool)
    for i in range(4):   # four digits 20 tall, each 6 rows higher than the last
        mask[24 - 6 * i:44 - 6 * i, 30 * i:30 * i + 28] = True
    assert tilt([(box, mask)], 20) == pytest.approx(-0.2, abs=0.03)


def test_levelling_shears_each_column_in_place_and_leaves_level_writing_alone():
    crop = np.zeros((60, 100), np.float32)
    for x in range(100):
        crop[30 + int(round(0.15 * (x - 50))), x] = 1.0     # a stroke running downhill at 0.15
    flat = levelled(crop, 0.15)
    rows = [np.flatnonzero(flat[:, x] > 0.5) for x in range(100)]
    middle = np.median([r.mean() for r in rows if len(r)])
    # level but for LEVEL_WITHIN, each column's ink kept in that column
    assert all(abs(r.mean() - middle - LEVEL_WITHIN * (x - 50)) <= 1.0 for x, r in enumerate(rows) if len(r))
    assert np.allclose(flat.sum(0), crop.sum(0), atol=0.05)
    assert levelled(crop, LEVEL_WITHIN / 2) is crop


def test_an_unsure_reading_is_read_again_at_other_zooms_and_the_most_probable_on_average_wins():
    model = LineModel.__new__(LineModel)   # no weights: each "line" is already its reading
    model.read, model.threshold = (lambda line: line), 0.995
    sure, first, second = reading("58", 0.999), reading("58"), reading("53")
    asked = []
    zooms = Zooms(model, lambda zoom: asked.append(zoom) or {1.0: sure, 0.9: second, 1.1: second}[zoom])
    assert zooms.best() is sure and asked == [1.0]   # a sure first reading is not read again
    assert [r.digits for r in zooms.every()] == ["58", "53", "53"] and asked == [1.0, 0.9, 1.1]
    assert Zooms(model, {1.0: first, 0.9: second, 1.1: reading("53")}.get).best() is second   # "53" at two zooms of three
    assert Zooms(model, {1.0: first, 0.9: second, 1.1: reading("58")}.get).best() is first


class Scripted:
    """A line model that reads its `readings` in turn, whatever the line."""
    threshold = 0.5

    def __init__(self, *readings):
        self.readings = list(readings)

    def read(self, line):
        return self.readings.pop(0)


def test_digits_split_out_of_a_piece_are_uncertain_unless_every_zoom_reads_them(touching):
    image = next(im for im in composed_on_paper(touching) if len(digits_in(im)) < 4)   # some of its digits touch

    def classify(pieces):
        return np.full((len(pieces), 10), 0.1)

    steady = read_parts(image, classify, Scripted(reading("1234"), reading("1234"), reading("1234")))
    assert read(steady) == "1234" and "line" in {p.source for p in steady} and not any(p.line_uncertain for p in steady)
    unsteady = read_parts(image, classify, Scripted(reading("1234"), reading("1234"), reading("124")))
    assert read(unsteady) == "1234" and all(p.line_uncertain for p in unsteady if p.source == "line")


def test_the_ink_is_found_once_for_the_classifier_and_the_line_model(touching, monkeypatch):
    calls, label = [], ndimage.label   # segmentation's connected components, wherever they are looked for
    monkeypatch.setattr(ndimage, "label", lambda *args, **kwargs: calls.append(1) or label(*args, **kwargs))
    image = number_on_paper(touching.images[0][:, :int(touching.widths[0])].numpy())
    parts = read_parts(image, lambda pieces: np.full((len(pieces), 10), 0.1), Scripted(*[reading("1234")] * 3))
    assert read(parts) == "1234" and len(calls) == 1


def test_the_reader_lays_out_lines_as_the_training_numbers_are():
    assert LINE_MARGIN == MARGIN


def test_reading_a_number_never_imports_torch_on_the_onnx_runtime(python_process):
    code = ("import sys, digit_reader.numbers, digit_reader.line, src.ctc; "
            "sys.exit('torch' in sys.modules)")
    assert python_process("-c", code).returncode == 0


def test_a_blank_page_has_no_line():
    assert line_of(Image.new("L", (200, 80), 255)) is None


def reading(digits="", confidence=0.99):
    """The line model's reading of `digits` at `confidence`, from columns that hold each digit
    between blanks."""
    def column(best):
        scores = np.full(11, -20.0)
        scores[best] = 20.0
        return scores

    columns = [column(BLANK)]
    for d in digits:
        columns += [column(int(d)), column(BLANK)]
    found = greedy_decode(np.stack(columns), STRIDE * len(columns))
    assert found.digits == digits
    found.confidence = confidence
    return found


def piece(x0, x1, y0=5, y1=25):
    """A piece of ink's box."""
    return (x0, y0, x1, y1)


def read(parts):
    return "".join(str(int(p.probs.argmax())) for p in parts)


def test_a_digit_per_piece_is_read_by_both_models():
    digits = [piece(10, 24), piece(30, 44)]
    probs = np.array([np.full(10, 0.1), np.eye(10)[8]])
    for confidence in (0.99, 0.2):   # sure or not
        parts = decide(digits, probs, reading("58", confidence), threshold=0.5)
        assert read(parts) == "58" and {p.source for p in parts} == {"both"}
        vote = confidence ** LINE_VOTE
        assert np.allclose(parts[0].probs, (np.full(10, 0.1) + vote * np.eye(10)[5]) / (1 + vote), atol=1e-6)
        assert not any(p.line_uncertain for p in parts)   # the same digits: no dispute
    # nothing read in the ink: the classifier's digits
    parts = decide(digits, probs, reading(""), threshold=0.5)
    assert [p.source for p in parts] == ["digit", "digit"] and np.array_equal(parts[1].probs, probs[1])


def test_an_unsure_line_model_outvotes_the_classifier_less():
    """"28" whose loopy 2 an unsure line model reads as a 0, each of its columns near certain: the
    classifier's 2 at 0.86 stands; the same 0 read surely outweighs it."""
    probs = np.array([np.eye(10)[2] * 0.86 + 0.014 * (1 - np.eye(10)[2]), np.eye(10)[8]])
    digits = [piece(10, 24), piece(30, 44)]
    assert read(decide(digits, probs, reading("08", 0.5), threshold=0.9)) == "28"
    assert read(decide(digits, probs, reading("08", 0.99), threshold=0.9)) == "08"


def test_a_digit_broken_in_two_is_one_digit_when_the_line_model_is_sure():
    # "48" with the 4's two strokes apart: three pieces, the two closest together are the 4
    digits = [piece(10, 17), piece(19, 26), piece(34, 48)]
    classified = np.array([np.eye(10)[1], np.eye(10)[7], np.eye(10)[8]])
    parts = decide(digits, classified, reading("48"), threshold=0.5)
    assert read(parts) == "48" and [p.source for p in parts] == ["line"] * 2
    assert [p.box for p in parts] == [(10, 5, 26, 25), (34, 5, 48, 25)]
    assert not any(p.line_uncertain for p in parts)
    unsure = decide(digits, classified, reading("48", 0.2), threshold=0.5)   # its digits, flagged
    assert read(unsure) == "48" and all(p.line_uncertain for p in unsure)


def test_the_extra_digits_go_to_the_widest_piece_in_reading_order():
    assert digit_counts([(0, 0, 20, 20), (30, 0, 70, 20), (80, 0, 95, 20)], 4) == [1, 2, 1]
    assert digit_counts([(0, 0, 20, 20), (30, 0, 110, 20)], 5) == [1, 4]
    assert digit_counts([(0, 0, 20, 20)], 1) == [1]
    digits = [piece(10, 24), piece(30, 70)]   # a digit, then two touching ones: twice as wide as tall
    classified = np.array([np.eye(10)[3], np.eye(10)[4]])
    parts = decide(digits, classified, reading("317"), threshold=0.5)
    assert read(parts) == "317" and [p.source for p in parts] == ["line"] * 3
    assert [p.box for p in parts] == [(10, 5, 24, 25), (30, 5, 50, 25), (50, 5, 70, 25)]
    assert not any(p.line_uncertain for p in parts)
    unsure = decide(digits, classified, reading("317", 0.2), threshold=0.5)
    assert read(unsure) == "317" and all(p.line_uncertain for p in unsure)


def test_the_line_models_digits_stand_whichever_piece_holds_the_touching_pair():
    # "1" and "8" touch in a narrow piece; the wider piece is one "0": the boxes go wrong, the digits do not
    digits = [piece(0, 18), piece(24, 44)]
    classified = np.array([np.eye(10)[8], np.eye(10)[0]])
    for confidence in (0.95, 0.5):  # sure or not
        assert read(decide(digits, classified, reading("180", confidence), threshold=0.9)) == "180"


def test_a_number_the_line_model_reads_otherwise_is_uncertain():
    digits = [piece(0, 14), piece(20, 40)]
    probs = np.array([np.eye(10)[4], np.eye(10)[7]])
    for agreed in (reading("47", 0.4), reading("47", 0.9)):   # unsure but the same digits, or sure
        assert not any(p.line_uncertain for p in decide(digits, probs, agreed, threshold=0.5))
    # one piece read as two, but as one "4" at one digit's scale: the classifier's "4" stands, but flagged
    lone = [piece(0, int(1.4 * 20))]
    disputed = decide(lone, probs[:1], reading("41", 0.4), threshold=0.5, one_digit=lambda: reading("4", 0.9))
    assert read(disputed) == "4" and all(p.line_uncertain for p in disputed)
    assert not any(p.line_uncertain for p in decide(lone, probs[:1], reading("4", 0.9), threshold=0.5))


def test_one_digit_that_another_zoom_reads_otherwise_is_uncertain():
    lone, four = [piece(0, int(0.8 * 20))], np.array([np.eye(10)[4]])
    steady = decide(lone, four, reading("4", 0.8), threshold=0.99, zooms=lambda: [reading("4", 0.8)] * 3)
    unsteady = decide(lone, four, reading("4", 0.8), threshold=0.99,
                      zooms=lambda: [reading("4", 0.8), reading("4", 0.6), reading("41", 0.5)])   # a "41" at 1.1x
    assert read(steady) == read(unsteady) == "4"
    assert not any(p.line_uncertain for p in steady) and all(p.line_uncertain for p in unsteady)
    # a number of two digits is not this flag's: its digits stand as both models read them
    two = decide([piece(0, 14), piece(20, 40)], np.array([np.eye(10)[4], np.eye(10)[7]]), reading("47", 0.8),
                 threshold=0.99, zooms=lambda: [reading("47", 0.8), reading("41", 0.5)])
    assert not any(p.line_uncertain for p in two)


def test_one_digit_neither_model_is_sure_of_is_uncertain():
    lone = [piece(0, int(0.8 * 20))]   # a "91" in marker, the 1 along the 9's tail: both read "9"
    hesitant = np.array([0.4 * np.eye(10)[4] + (DIGIT_SURE - 0.1) * np.eye(10)[9]])
    both_unsure = decide(lone, hesitant, reading("9", 0.88), threshold=0.97)
    assert read(both_unsure) == "9" and all(p.line_uncertain for p in both_unsure)
    assert not any(p.line_uncertain for p in decide(lone, hesitant, reading("9", 0.98), threshold=0.97))   # the line model sure
    sure = np.array([0.1 * np.eye(10)[4] + (DIGIT_SURE + 0.1) * np.eye(10)[9]])
    assert not any(p.line_uncertain for p in decide(lone, sure, reading("9", 0.88), threshold=0.97))   # the classifier sure
    # a number of two pieces is not this flag's: each digit stands on both models' mean
    two = decide([piece(0, 14), piece(20, 40)], np.concatenate([hesitant, hesitant]), reading("99", 0.88), threshold=0.97)
    assert read(two) == "99" and not any(p.line_uncertain for p in two)


def test_a_lone_piece_is_one_digit_where_the_line_model_reads_one_more_surely_at_one_digits_scale():
    probs = np.array([np.eye(10)[2]])
    lone = [piece(0, int(1.4 * 20))]   # wider than tall: a wide "2", or "22" in marker
    assert read(decide(lone, probs, reading("22", 0.9), threshold=0.5)) == "22"   # no reading at one digit's scale
    one = decide(lone, probs, reading("22", 0.9), threshold=0.5, one_digit=lambda: reading("2", 0.99))
    assert read(one) == "2" and all(p.line_uncertain for p in one)   # flagged: at the line's scale it read two
    # surer per digit: "22" at 0.81 is 0.9 a digit, under the one digit's 0.92, and "22" at 0.9 is 0.95 a digit,
    # over it; against two digits an unsure one digit counts where the two are less sure still (no threshold)
    assert read(decide(lone, probs, reading("22", 0.81), threshold=0.5, one_digit=lambda: reading("2", 0.92))) == "2"
    assert read(decide(lone, probs, reading("22", 0.5), threshold=0.99, one_digit=lambda: reading("2", 0.92))) == "2"
    for alone in (reading("2", 0.92), reading("2", 0.45), reading("22", 0.99)):   # less sure per digit, or not one digit
        assert read(decide(lone, probs, reading("22", 0.9), threshold=0.5, one_digit=lambda: alone)) == "22"
    # four digits read at 0.5 are 0.84 a digit: one digit at 0.8, surer than the whole reading, is not
    assert read(decide(lone, probs, reading("2026", 0.5), threshold=0.5, one_digit=lambda: reading("2", 0.8))) == "2026"
    # against three digits or more, surer per digit is not enough: the one digit must be sure too
    assert read(decide(lone, probs, reading("2026", 0.3), threshold=0.9, one_digit=lambda: reading("2", 0.8))) == "2026"
    assert read(decide(lone, probs, reading("2026", 0.3), threshold=0.9, one_digit=lambda: reading("2", 0.95))) == "2"
    # pieces that are not alone are not this case's: each is read by the line model's count
    two = decide([piece(0, 28), piece(40, 60)], np.array([np.eye(10)[2], np.eye(10)[6]]), reading("226", 0.9),
                 threshold=0.5, one_digit=lambda: reading("2", 0.99))
    assert read(two) == "226"
    # a piece wider than one digit can be (LONE_DIGIT_ASPECT) is never read at one digit's scale: squeezed
    # into one digit's width, sixteen overlapping digits read as one "2", surely
    asked = []
    continuous = [piece(0, int(LONE_DIGIT_ASPECT * 20) + 1)]
    sixteen = decide(continuous, probs, reading("2026", 0.2), threshold=0.5,
                     one_digit=lambda: asked.append(1) or reading("2", 0.999))
    assert read(sixteen) == "2026" and not asked


def test_the_classifiers_several_digits_are_split_from_its_digits_probabilities():
    probs = np.array([[0.1] * 5 + [0.0] * 5 + [0.5], [0.0] * 9 + [0.8] + [0.2]])
    digits, several = split_several(probs)
    assert np.allclose(digits.sum(1), 1) and np.allclose(digits[0, :5], 0.2) and digits[1].argmax() == 9
    assert np.array_equal(several, [0.5, 0.2])
    ten = np.full((2, 10), 0.1)
    assert split_several(ten)[0] is ten and split_several(ten)[1] is None   # a classifier without several digits


def test_the_readers_several_digits_reach_the_rules():
    """see() splits an 11-output classifier's probabilities and parts_of() hands the several digits'
    to the rules: the same lone piece, read "14" by the line model, is the classifier's "4" or the
    line model's "14" as the classifier finds it one digit or several."""
    model = LineModel.__new__(LineModel)   # no weights: it reads every line "14"
    model.read, model.threshold = (lambda line: reading("14", 0.95)), 0.5
    image = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(image).line([(120, 160), (120, 40), (70, 120), (140, 120)], fill=0, width=14)   # a closed 4
    for several, expected in ((0.1, "4"), (0.9, "14")):
        digit = np.eye(10)[4] * (1 - several) * 0.98 + (1 - several) * 0.002
        seen = see(image, lambda images: np.tile(np.append(digit, several), (len(images), 1)), model)
        assert len(seen.boxes) == 1 and np.allclose(seen.several, [several]) and np.allclose(seen.probs.sum(1), 1)
        assert read(parts_of(seen)) == expected, several


def test_without_the_line_model_a_piece_the_classifier_finds_several_digits_is_flagged():
    """The reader without its line model reads each piece as one digit; where the classifier finds
    a piece more likely several digits than one (two touching digits), that digit is flagged."""
    boxes, probs = [piece(0, 20), piece(30, 50)], np.array([np.eye(10)[5], np.eye(10)[8]])
    parts = parts_of(Seen(boxes, probs, None, np.array([0.1, ONE_RATHER_THAN_SEVERAL])))
    assert read(parts) == "58" and [p.line_uncertain for p in parts] == [False, True]
    assert answer(parts)["uncertain"] and not answer(parts_of(Seen(boxes, probs, None)))["uncertain"]


def test_a_lone_piece_read_as_two_is_the_classifiers_one_digit_where_it_finds_one_more_likely_than_several():
    """The reader's classifier has an output for several digits (SEVERAL): a lone piece that the
    line model splits into two is the classifier's one digit where that output is under
    ONE_RATHER_THAN_SEVERAL (flagged: the line model read otherwise), and the line model's two
    where it is not; a classifier without that output leaves the line model's count standing."""
    probs = np.array([np.eye(10)[4] * 0.9 + 0.01])
    lone = [piece(0, 20)]
    for several, expected in ((0.05, "4"), (ONE_RATHER_THAN_SEVERAL - 0.01, "4"), (ONE_RATHER_THAN_SEVERAL, "14"),
                              (0.9, "14"), (None, "14")):
        parts = decide(lone, probs, reading("14", 0.95), threshold=0.5,
                       several=None if several is None else np.array([several]))
        assert read(parts) == expected and all(p.line_uncertain for p in parts) == (expected == "4"), several
        if expected == "4":
            assert parts[0].source == "digit" and np.array_equal(parts[0].probs, probs[0])
    # only a lone piece read as two: three digits in one piece, or a digit too many among several
    # pieces, are the line model's (a classifier that learned writers' pairs alone calls MNIST's one digit)
    assert read(decide(lone, probs, reading("141", 0.95), 0.5, several=np.array([0.05]))) == "141"
    two, both = [piece(0, 20), piece(30, 50)], np.concatenate([probs, probs])
    assert read(decide(two, both, reading("414", 0.95), 0.5, several=np.array([0.05, 0.05]))) == "414"


def test_a_digit_too_many_among_pieces_apart_is_the_classifiers_where_another_zoom_reads_its_digits():
    """"47" whose 4 the line model reads as "14" at the line's scale but not at another zoom: each
    piece is the classifier's digit (flagged, disputed); where no zoom reads one digit a piece, or
    the classifier finds a piece several digits (two touching digits in it), the line model's
    digits stand."""
    apart, probs = [piece(0, 16), piece(30, 44)], np.array([np.eye(10)[4] * 0.9 + 0.01, np.eye(10)[7]])
    one_each = np.array([0.05, 0.05])

    def decided(zooms, several=one_each, rules=ALL):
        return decide(apart, probs, zooms[0], threshold=0.5, zooms=lambda: zooms, several=several, rules=rules)

    parts = decided([reading("147", 0.9), reading("47", 0.6), reading("147", 0.8)])
    assert read(parts) == "47" and [p.source for p in parts] == ["digit", "digit"] and all(p.line_uncertain for p in parts)
    assert np.array_equal(parts[0].probs, probs[0])
    assert read(decided([reading("147", 0.9), reading("17", 0.6), reading("147", 0.8)])) == "147"   # no zoom reads "47"
    assert read(decided([reading("147", 0.9), reading("47", 0.6)], several=np.array([0.6, 0.05]))) == "147"
    assert read(decided([reading("147", 0.9), reading("47", 0.6)], several=None)) == "147"   # no several-digits output
    without = replace(ALL, cases=CASES[:4] + CASES[5:])   # the fifth case left out
    assert read(decided([reading("147", 0.9), reading("47", 0.6)], rules=without)) == "147"
    # only several pieces read as more digits than pieces: a lone piece read "414" whose zoom reads
    # the classifier's "4", or three pieces read as two, are not this case's
    lone = decide(apart[:1], probs[:1], reading("414", 0.9), threshold=0.5, several=one_each[:1],
                  zooms=lambda: [reading("414", 0.9), reading("4", 0.6)])
    assert read(lone) == "414"
    three, three_probs = [piece(0, 10), piece(12, 22), piece(40, 54)], np.array([np.eye(10)[1], np.eye(10)[4], np.eye(10)[7]])
    fewer = decide(three, three_probs, reading("47", 0.9), threshold=0.5, several=np.full(3, 0.05),
                   zooms=lambda: [reading("47", 0.9), reading("147", 0.6)])
    assert read(fewer) == "47" and {p.source for p in fewer} == {"line"}


@settings(max_examples=200, deadline=None)
@given(digit_probs=arrays(np.float64, 10, elements=st.floats(0.001, 1.0)), line_digit=st.integers(0, 9),
       confidence=st.floats(0.0, 1.0), threshold=st.floats(0.05, 0.99), aspect=st.floats(0.3, 1.9))
def test_a_lone_digit_is_read_as_the_classifier_reads_it(digit_probs, line_digit, confidence, threshold, aspect):
    """The floor by construction (issue 26, item 4): one piece of ink the line model reads as one
    digit is the classifier's digit, its probabilities untouched, however sure the line model is of
    another; flagged where the line model read another digit."""
    probs = (digit_probs / digit_probs.sum())[None]
    parts = decide([piece(0, int(aspect * 20))], probs, reading(str(line_digit), confidence), threshold)
    assert len(parts) == 1 and parts[0].source == "digit" and np.array_equal(parts[0].probs, probs[0])
    if int(probs[0].argmax()) != line_digit:
        assert parts[0].line_uncertain


def test_a_lone_piece_wider_than_tall_is_also_read_at_one_digits_scale_once():
    model = LineModel.__new__(LineModel)   # no weights: each line is its own reading
    model.read, model.threshold = (lambda line: line), 0.9
    wide, narrow = Image.new("L", (300, 200), 255), Image.new("L", (300, 200), 255)
    ImageDraw.Draw(wide).ellipse((40, 60, 260, 140), outline=0, width=12)   # a "0" nearly three times as wide as tall
    ImageDraw.Draw(narrow).line((150, 40, 150, 160), fill=0, width=12)       # a "1"
    made = []
    zooms = Zooms(model, lambda zoom: made.append(zoom) or line_maker(wide)(zoom))
    line = zooms.one_digit()
    # as wide as MNIST's box, as MNIST sized it, but for its strokes, thickened to MNIST's width at the smaller scale
    assert line.width - 2 * LINE_MARGIN == pytest.approx(BOX, abs=2)
    assert zooms.one_digit() is line and len(made) == 2
    assert Zooms(model, line_maker(narrow)).one_digit() is None   # no wider than tall: the line is at that scale already


def test_segmentation_and_the_line_agree_on_a_separated_number(mnist_test_digits):
    images, labels = map(torch.from_numpy, mnist_test_digits)
    numbers = fixed_numbers(images, labels, [4] * 5, ["separated"] * 5, seed=2)
    for image in composed_on_paper(numbers):
        found, pieces = line_of(image), digits_in(image)
        assert found.to_image_x(MARGIN) == pytest.approx(pieces[0].box[0], abs=4)
        assert found.to_image_x(found.width - MARGIN) == pytest.approx(pieces[-1].box[2], abs=4)


def test_every_rule_names_the_section_of_the_notes_with_its_evidence():
    from tests.test_docs import anchors

    for rule in (*CASES, *FLAGS):
        page, _, section = rule.evidence.partition("#")
        assert page.startswith("benchmarks/notes/") and section in anchors(ROOT / page), rule.when


def test_a_rule_left_out_passes_its_numbers_on_to_the_next_that_holds():
    digits, probs = [piece(10, 24), piece(30, 44)], np.array([np.eye(10)[5], np.eye(10)[8]])
    assert [p.source for p in decide(digits, probs, reading("58"), 0.5)] == ["both", "both"]
    without_the_mean = replace(ALL, cases=CASES[:1] + CASES[2:])   # the second case: both models' mean
    assert [p.source for p in decide(digits, probs, reading("58"), 0.5, rules=without_the_mean)] == ["line", "line"]
    # without flags, a dispute is not flagged
    lone, one_five = [piece(0, int(1.4 * 20))], (lambda: reading("5", 0.9))
    assert all(p.line_uncertain for p in decide(lone, probs[:1], reading("51", 0.4), 0.5, one_digit=one_five))
    disputed = decide(lone, probs[:1], reading("51", 0.4), 0.5, rules=replace(ALL, flags=()), one_digit=one_five)
    assert read(disputed) == "5" and not any(p.line_uncertain for p in disputed)


def test_the_rules_benchmark_scores_the_reader_as_it_serves_and_each_rule_left_out(
        reader_project, raw_mnist, tmp_path, monkeypatch, capsys):
    import json
    import sys

    from benchmarks import reader_rules
    from digit_reader.reader import Reader

    out = tmp_path / "rules.json"
    monkeypatch.setattr(sys, "argv", ["reader_rules", "--root", str(reader_project), "--mnist", str(raw_mnist),
                                      "--writers", "3", "--per-set", "4", "--mnist-per-kind", "4", "--mnist-single", "6",
                                      "--out", str(out)])
    sets = {}   # what the benchmark reads, kept as it makes it

    def kept(make):
        def making(*args):
            made = make(*args)
            sets.update(made)
            return made
        return making
    for maker in ("sets_of", "mnist_sets"):
        monkeypatch.setattr(reader_rules, maker, kept(getattr(reader_rules, maker)))
    reader_rules.main()
    result = json.loads(out.read_text())
    assert list(result["variants"]) == list(reader_rules.variants()) and len(result["variants"]) == len(CASES) + len(FLAGS) + 1
    assert list(sets) == list(result["variants"]["all rules"]) and len(sets["mnist_separated"]) == 4
    reader = Reader(root=reader_project)   # the reader's classifier, as the benchmark and the server read
    for name, items in sets.items():   # all the rules: as the reader reads
        exact = np.mean([reader.read_image(image)["digits"] == truth for image, truth in items])
        assert result["variants"]["all rules"][name]["exact"] == pytest.approx(exact)
    assert "without the zooms" in capsys.readouterr().out


def parts_reading(digits: str, sure: float = 0.95, flagged: bool = False) -> list:
    probs = [np.eye(10)[int(d)] * sure + (1 - sure) / 10 for d in digits]
    return [Part(p, (10 * k, 0, 10 * k + 8, 20), flagged, "both") for k, p in enumerate(probs)]


def test_a_fine_grid_read_twice_answers_the_finer_reading_flagged_unless_both_agree_and_are_sure():
    def flagged(parts):
        return answer(parts)["uncertain"]

    finer = parts_reading("1234")
    assert agreed(parts_reading("1234"), finer) is finer and not flagged(finer)
    assert read(agreed(parts_reading("1284"), finer)) == "1234" and flagged(agreed(parts_reading("1284"), finer))
    assert flagged(agreed(parts_reading("1234", flagged=True), finer))                      # the first unsure
    assert flagged(agreed(parts_reading("1234", sure=UNCERTAIN_BELOW - 0.1), finer))        # a digit under the bar
    assert flagged(agreed(parts_reading("1234"), parts_reading("1234", sure=UNCERTAIN_BELOW - 0.1)))
    nothing_finer = agreed(parts_reading("74"), [])                                          # no digit found finer
    assert read(nothing_finer) == "74" and flagged(nothing_finer)
    assert agreed([], []) == []
