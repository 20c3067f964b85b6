"""digit_reader/sheet.py: a photo of a sheet lying on a desk is cut to the sheet before its ink is
found, and nothing else is cut: checked on other writers' numbers (src/writers.py) on a desk
against the same pages, and on light digits on dark grounds that only look like sheets."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

import digit_reader.image as image
import digit_reader.sheet as sheet
from digit_reader.image import digits_in, find_ink, to_gray
from digit_reader.margin import even_light
from digit_reader.sheet import on_the_sheet
from src.writers import at_a_corner, at_the_sheets_edge, on_a_desk, photographed, ruled, write, writer_of


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
    """The check above can fail: with the sheet left on its desk, the sheet is the ink (the desk
    is lifted as a shadow's dark paper would be, digit_reader/margin.py's `lit_evenly`, where that
    is left on: this asks what the cut does alone)."""
    monkeypatch.setattr(image, "on_the_sheet", lambda gray: None)
    monkeypatch.setattr(image, "lit_evenly", even_light)
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


def askew_on_a_desk(number: Image.Image, degrees: float, at=(200, 150)):
    """The number on a sheet turned `degrees` on a grey desk; and the file's pixels of its ink."""
    sheet = Image.new("L", (number.width + 200, number.height + 160), 240)
    sheet.paste(number, (100, 80))
    shape = Image.new("L", sheet.size, 255).rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    sheet = sheet.rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    rng = np.random.default_rng(0)
    desk = Image.fromarray(np.clip(rng.normal(90, 8, (sheet.height + 300, sheet.width + 400)), 0, 255).astype(np.uint8))
    desk.paste(sheet, at, shape)
    ys, xs = np.nonzero((np.asarray(sheet) < 100) & (np.asarray(shape) > 250))
    return desk, (xs + at[0], ys + at[1])


@pytest.mark.parametrize("degrees", [-12, 8])
def test_a_sheet_lying_askew_is_read_upright_and_boxed_in_the_photos_pixels(degrees):
    """The sheet is turned upright (its digits then stand level), and every digit's box, turned
    back to the photo, holds its ink: each box some of it, all boxes all of it."""
    number, _ = page(7, "3075")
    desk, (ink_x, ink_y) = askew_on_a_desk(number, degrees)
    found = find_ink(desk)
    assert found.turn is not None and abs(found.turn.degrees + degrees) < 1.5, found.turn   # turned back
    middles = [(box[0].start + box[0].stop) / 2 for box, _ in found.pieces]
    heights = [box[0].stop - box[0].start for box, _ in found.pieces]
    assert len(middles) == 4 and np.ptp(middles) < 0.15 * np.median(heights), middles
    boxes = [d.box for d in digits_in(desk)]
    inside = [(x0 - 2 <= ink_x) & (ink_x <= x1 + 2) & (y0 - 2 <= ink_y) & (ink_y <= y1 + 2) for x0, y0, x1, y1 in boxes]
    assert all(held.any() for held in inside) and np.logical_or.reduce(inside).all()


def test_a_sheet_turned_less_than_a_degree_is_read_as_it_lies():
    desk, _ = askew_on_a_desk(page(7, "3075")[0], 0.4)
    assert find_ink(desk).turn is None


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


def test_a_sheets_corner_in_the_photo_is_cut_out_and_its_number_comes_apart():
    """Photographed close, the desk along one side of the view or two (the sheet's corner): the
    margin's median is paper, yet the sheet is found and its four digits are four pieces."""
    trials = 16
    corners = [at_a_corner(*page(i)) for i in range(trials)]
    assert sum(on_the_sheet(to_gray(c)) is not None for c in corners) >= 0.9 * trials
    assert sum(pieces(c) == 4 for c in corners) >= 0.9 * trials


def test_without_the_search_along_the_sides_a_sheets_corner_is_ink(monkeypatch):
    """The check above can fail: with only the search for a desk all round, the desk is ink (as
    above, without the lifting of a shadow's light)."""
    monkeypatch.setattr(sheet, "sheet_at_a_side", lambda small: None)
    monkeypatch.setattr(image, "lit_evenly", even_light)
    corners = [at_a_corner(*page(i)) for i in range(8)]
    assert sum(pieces(c) == 4 for c in corners) <= 2


SLIVERS = [13, 29, 52, 64, 83, 85, 88]   # pages whose desk is too narrow for the search along the sides


@pytest.mark.parametrize("number", SLIVERS)
def test_a_sliver_of_desk_at_the_views_edge_is_cut_away_and_the_number_comes_apart(number):
    """Photographed with the sheet's edge just inside the view: the sheet is found and its four
    digits are four pieces."""
    sliver = at_the_sheets_edge(*page(number))
    assert on_the_sheet(to_gray(sliver)) is not None and pieces(sliver) == 4


def test_without_the_search_for_a_sliver_the_desk_at_the_views_edge_is_ink(monkeypatch):
    """The check above can fail: the sliver is a stroke along the side, or sets the ink's contrast."""
    monkeypatch.setattr(sheet, "sheet_at_its_edge", lambda small: None)
    assert not any(pieces(at_the_sheets_edge(*page(n))) == 4 for n in SLIVERS)


def test_a_stroke_along_a_canvass_edge_is_no_sliver_of_desk(monkeypatch):
    """A flat fill is a canvas, not a desk (FLAT): a line drawn down its side stays."""
    canvas = np.full((120, 200), 0.95, np.float32)
    canvas[:, :3] = 0.1
    canvas[30:90, 80:86] = 0.1
    assert on_the_sheet(canvas) is None
    monkeypatch.setattr(sheet, "FLAT", 0.0)
    assert on_the_sheet(canvas) is not None


def lit_steeply(picture, degrees: float, far: float = 0.35) -> np.ndarray:
    """A page lit from one side: its light falls from 1 to `far` towards `degrees` (0: rightwards)."""
    values = np.asarray(picture, np.float32) / 255
    rows, cols = np.mgrid[0:values.shape[0], 0:values.shape[1]]
    ramp = np.cos(np.radians(degrees)) * cols / values.shape[1] + np.sin(np.radians(degrees)) * rows / values.shape[0]
    ramp = (ramp - ramp.min()) / np.ptp(ramp)
    return (values * (1 - (1 - far) * ramp)).astype(np.float32)


STEEPLY_LIT_RULED = [(1, 0), (2, 180), (9, 270), (31, 90)]   # (page, degrees) each cut without the last guard


@pytest.mark.parametrize("number, degrees", STEEPLY_LIT_RULED)
def test_a_ruled_page_lit_steeply_is_no_sheet_on_a_desk(number, degrees):
    """Its dim side is as dark and broad as a desk, and a printed line or the writing runs along the
    edge of its lit part; in the lit part's light carried across the page it is paper."""
    assert on_the_sheet(lit_steeply(ruled(*page(number)), degrees)) is None


def test_without_the_sheets_own_light_a_ruled_page_lit_steeply_is_cut(monkeypatch):
    """Nor the guard against writing beyond the cut: its printed lines run on into the dim side,
    and that guard alone refuses these pages too."""
    monkeypatch.setattr(sheet, "beside_a_desk", lambda small, region: True)
    monkeypatch.setattr(sheet, "writing_beyond", lambda small, region: False)
    assert all(on_the_sheet(lit_steeply(ruled(*page(n)), d)) is not None for n, d in STEEPLY_LIT_RULED)


def under_a_shadow(i: int) -> Image.Image:
    """Page i with paper around its writing, a hard shadow over half of it at 45% of the light,
    photographed."""
    from benchmarks.shadows import photographed_under

    picture, rng = page(i)
    values = np.asarray(picture, np.float32) / 255
    values = np.pad(values, int(0.8 * values.shape[0]), constant_values=float(np.median(values)))
    return photographed_under(values, (0.5, 0.45), rng)


SHADOWED = [0, 2, 4, 9]   # pages each cut without the guard


@pytest.mark.parametrize("number", SHADOWED)
def test_a_page_under_a_hard_shadow_is_no_sheet_on_a_desk(number):
    """The shadow is as dark, broad and straight-edged as a desk, but the writing goes on under it."""
    assert on_the_sheet(to_gray(under_a_shadow(number))) is None


def test_without_the_writing_beyond_the_cut_a_shadowed_page_is_cut(monkeypatch):
    monkeypatch.setattr(sheet, "writing_beyond", lambda small, region: False)
    assert all(on_the_sheet(to_gray(under_a_shadow(n))) is not None for n in SHADOWED)


def beside_a_shadows_edge(i: int, light: float) -> Image.Image:
    """benchmarks/shadows.py's page i under its shadow over 35% of the page at `light` of the light."""
    from benchmarks import shadows

    return shadows.photo(i, shadows.CONDITIONS.index((f"shadow over 35%, {light:.0%} light", (0.35, light))))


# the shadow's edge runs beside or through the number's first or last digit: cut there, the number
# was read a digit short, unflagged ("5898" as "898")
EDGE_THROUGH_WRITING = [(3, 0.45), (34, 0.45), (87, 0.45), (54, 0.6), (64, 0.6)]


@pytest.mark.parametrize("number, light", EDGE_THROUGH_WRITING)
def test_a_digit_beside_a_shadows_edge_is_writing_beyond_the_cut(number, light):
    assert on_the_sheet(to_gray(beside_a_shadows_edge(number, light))) is None


def test_without_the_writing_beyond_the_cut_the_digit_beside_a_shadows_edge_is_cut_off(monkeypatch):
    monkeypatch.setattr(sheet, "writing_beyond", lambda small, region: False)
    assert all(on_the_sheet(to_gray(beside_a_shadows_edge(n, light))) is not None for n, light in EDGE_THROUGH_WRITING)


def test_with_the_sheets_edge_left_out_as_wide_as_the_photos_a_digit_beside_a_shadow_is_cut_off(monkeypatch):
    """The check above can fail: ink within EDGE of the cut was not looked at, and the digit beside
    the shadow's edge was cut away with the shadow."""
    monkeypatch.setattr(sheet, "AWAY", sheet.EDGE)
    assert all(on_the_sheet(to_gray(beside_a_shadows_edge(n, light))) is not None for n, light in EDGE_THROUGH_WRITING)
