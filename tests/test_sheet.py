"""digit_reader/sheet.py: a photo of a sheet lying on a desk is cut to the sheet before its ink is
found, and nothing else is cut: checked on other writers' numbers (src/writers.py) on a desk
against the same pages, and on light digits on dark grounds that only look like sheets."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

import digit_reader.image as image
from digit_reader.image import digits_in, find_ink, to_gray
from digit_reader.sheet import on_the_sheet
from src.writers import on_a_desk, photographed, write, writer_of


def page(i: int, digits: str = "5284"):
    rng = np.random.default_rng([24, i])
    return write(writer_of("val", i), digits, "spaced", rng), rng


def pieces(picture) -> int:
    found = find_ink(picture)
    return 0 if found is None else len(found.pieces)


def test_numbers_on_a_sheet_on_a_desk_come_apart_into_their_digits():
    """Photographed on a desk, askew: the sheet is found and its four digits are four pieces, as
    on the page alone."""
    trials = 20
    desks = [photographed(on_a_desk(*page(i)), page(i)[1]) for i in range(trials)]
    assert sum(on_the_sheet(to_gray(d)) is not None for d in desks) == trials
    assert sum(pieces(d) == 4 for d in desks) >= 0.9 * trials


def test_without_the_cut_the_desk_is_taken_for_the_paper(monkeypatch):
    """The check above can fail: with the sheet left on its desk, the sheet is the ink."""
    monkeypatch.setattr(image, "on_the_sheet", lambda gray: None)
    desks = [photographed(on_a_desk(*page(i)), page(i)[1]) for i in range(10)]
    assert sum(pieces(d) == 4 for d in desks) <= 2


def test_digits_on_a_sheet_are_boxed_in_the_files_pixels():
    """A sheet laid squarely at a known place on a wooden desk (a colour photo): every digit's box,
    in the file's pixels, lies on the sheet where the number was written."""
    number, _ = page(3, "2021")
    desk = Image.new("RGB", (900, 700), (120, 84, 50))
    draw = ImageDraw.Draw(desk)
    for y in range(0, 700, 9):   # the wood's grain
        draw.line([(0, y), (900, y + 30)], fill=(104, 72, 44), width=3)
    sheet = Image.new("RGB", (number.width + 200, number.height + 160), (242, 240, 232))
    sheet.paste(number.convert("RGB"), (100, 80))
    desk.paste(sheet, (250, 200))
    digits = digits_in(desk)
    assert len(digits) == 4
    written = (350, 280, 350 + number.width, 280 + number.height)
    for digit in digits:
        x0, y0, x1, y1 = digit.box
        assert written[0] - 3 <= x0 < x1 <= written[2] + 3 and written[1] - 3 <= y0 < y1 <= written[3] + 3, digit.box


def test_a_blank_sheet_on_a_desk_holds_no_digit():
    blank = Image.new("L", (200, 60), 245)
    rng = np.random.default_rng(1)
    assert digits_in(photographed(on_a_desk(blank, rng), rng)) == []


def thick_eight(ground: float, noise: float, side: int = 280) -> np.ndarray:
    """A light 8 drawn with a marker on a dark ground: two fat rings whose holes are small."""
    picture = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(picture)
    for box in ((95, 40, 185, 130), (85, 120, 195, 235)):
        draw.ellipse(box, outline=255, width=34)
    values = np.asarray(picture, np.float32) / 255 * 0.8 + ground
    return np.clip(values + np.random.default_rng(0).normal(0, noise, values.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("name, gray", [
    ("a light 8 on a black canvas, MNIST's way", thick_eight(0.0, 0.0)),
    ("a light 8 drawn thick on a dark, noisy board", thick_eight(0.15, 0.025)),
    ("a page lit from one side", to_gray(photographed(*page(5)))),
    ("a page on plain paper", to_gray(page(6)[0])),
    ("a blank white page", np.full((100, 100), 0.95, np.float32)),
])
def test_what_is_no_sheet_on_a_desk_is_left_as_it_is(name, gray):
    assert on_the_sheet(gray) is None, name
