"""digit_reader/paper.py: lines printed on the paper are taken out before the ink is cut into
digits, and nothing else is: checked on other writers' numbers (src/writers.py) written on ruled
paper against the same numbers on plain paper, and on strokes that only look like lines."""

import numpy as np
import pytest
from PIL import Image

from digit_reader.image import find_ink, to_gray, to_ink
from digit_reader.paper import FINE, fine_grid, printed_lines, without_lines
from src.writer_sets import writer_sets
from src.writers import photographed, ruled, squared, write, writer_of


def number(i: int, digits: str = "4071", spacing: str = "spaced", size: str = "normal"):
    rng = np.random.default_rng([26, i])
    return write(writer_of("val", i, size=size), digits, spacing, rng), rng


def piece_sizes(image) -> list[tuple[int, int]]:
    """Each piece's height and width, left to right."""
    return [(box[0].stop - box[0].start, box[1].stop - box[1].start) for box, _ in find_ink(image).pieces]


def lines_found(image) -> bool:
    gray = to_gray(image)
    return without_lines(gray, to_ink(gray)) is not None


def close(a, b, pixels=4) -> bool:
    return len(a) == len(b) and all(abs(ha - hb) <= pixels and abs(wa - wb) <= pixels for (ha, wa), (hb, wb) in zip(a, b))


def page(shape=(120, 240), paper=0.95) -> np.ndarray:
    return np.full(shape, paper, np.float32)


def image_of(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(values * 255).astype(np.uint8))


def test_numbers_on_ruled_paper_come_apart_as_on_plain_paper():
    """Lines across the page, the digits standing on one, half the pages with a margin line: each
    digit is the piece it is on plain paper, give or take the print's few pixels."""
    trials, same = 30, 0
    for i in range(trials):
        plain, rng = number(i)
        lined = ruled(plain, rng)
        assert lines_found(lined)
        same += close(piece_sizes(lined), piece_sizes(plain))
    assert same >= 0.9 * trials, f"{same} of {trials}"


def test_a_squared_pages_grid_is_found_whatever_the_squares_size():
    """Lines across and down, the writing two squares tall or one, normal or small: the grid is
    found on every page (the noise level taken from ink thin both ways), and most digits come
    apart as on plain paper (the rest lose a stroke that lies along a grid line, painted out with
    it: docs/reading-digits.md's limits)."""
    trials, found, same = 40, 0, 0
    for i in range(trials):
        plain, rng = number(300 + i, size="small" if i % 4 == 3 else "normal")
        grid = squared(plain, rng)
        found += lines_found(grid)
        same += close(piece_sizes(grid), piece_sizes(plain))
    assert found == trials
    assert same >= 0.7 * trials, f"{same} of {trials}"


def test_without_the_painting_a_ruled_page_is_misread():
    """The check above can fail: the same pages, their lines left in, come apart otherwise."""
    import digit_reader.image as image

    saved, image.without_lines = image.without_lines, lambda gray, ink, printed=None: None
    try:
        same = sum(close(piece_sizes(ruled(plain, rng)), piece_sizes(plain)) for plain, rng in map(number, range(10)))
    finally:
        image.without_lines = saved
    assert same <= 2


def test_photographed_ruled_pages_askew_and_unevenly_lit_come_apart_as_on_plain_paper():
    trials, same = 20, 0
    for i in range(trials):
        plain, rng = number(100 + i)
        same += len(find_ink(photographed(ruled(plain, rng), rng)).pieces) == 4
    assert same >= 0.85 * trials, f"{same} of {trials}"


def test_small_writing_between_lines_comes_apart_as_on_plain_paper():
    trials, same = 20, 0
    for i in range(trials):
        plain, rng = number(200 + i, size="small")
        same += close(piece_sizes(ruled(plain, rng)), piece_sizes(plain))
    assert same >= 0.85 * trials, f"{same} of {trials}"


def test_a_stroke_through_a_line_keeps_its_ink_and_the_line_goes():
    values = page()
    values[70:72, :] = 0.5                 # the print, grey
    values[30:100, 100:105] = 0.05         # a 1 written through it
    values[30:100, 140:145] = 0.05         # and another beside it
    assert lines_found(image_of(values))
    sizes = piece_sizes(image_of(values))
    assert len(sizes) == 2 and all(height >= 68 and width <= 8 for height, width in sizes), sizes


def test_a_stroke_written_along_a_line_stays():
    """An L standing on the line, its foot drawn along it in darker ink (a 2's base on a
    notebook's line): the foot is a stroke, not print."""
    values = page()
    values[80:82, :] = 0.55
    values[30:82, 100:104] = 0.05
    values[79:83, 100:140] = 0.05
    values[30:82, 170:174] = 0.05
    sizes = piece_sizes(image_of(values))
    assert len(sizes) == 2 and sizes[0][1] >= 39, sizes


@pytest.mark.parametrize("digits", ["7", "10"])
def test_strokes_from_edge_to_edge_of_a_tight_crop_are_digits(digits):
    """A 7's bar, or a 1 as tall as the crop, reach both edges; they are not longer than the
    writing is tall, so they are not lines."""
    plain, _ = number(7, digits)
    ink = np.asarray(plain) < 128
    rows, columns = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    tight = plain.crop((columns[0], rows[0], columns[-1] + 1, rows[-1] + 1))
    assert not lines_found(tight)


def test_a_blank_ruled_page_is_left_as_it_is():
    values = page()
    values[[30, 60, 90], :] = 0.4
    assert not lines_found(image_of(values))


def test_writing_with_paper_all_round_is_not_searched_for_lines(monkeypatch):
    import digit_reader.paper as paper

    monkeypatch.setattr(paper, "_lines", lambda inked: pytest.fail("searched an image with paper at its edges"))
    plain, _ = number(3)
    assert len(find_ink(plain).pieces) == 4


@pytest.mark.parametrize("shape", [(3, 1024), (5, 700), (700, 5), (9, 1024), (40, 1000), (6, 6)])
def test_images_of_any_shape_with_a_line_across_and_down_are_searched_without_failing(shape):
    gray, ink = np.full(shape, 0.9, np.float32), np.zeros(shape, np.float32)
    ink[shape[0] // 2, :] = ink[:, shape[1] // 3] = 1
    painted = without_lines(gray, ink)
    assert painted is None or painted.shape == shape


def grid_page(across: int, down: int | None) -> np.ndarray:
    """A page with grey lines every `across` rows and every `down` columns (None: none down)."""
    values = page()
    values[::across, :] = 0.5
    if down:
        values[:, ::down] = 0.5
    return values


def on_a_fine_grid(gray: np.ndarray) -> bool:
    return fine_grid(printed_lines(to_ink(gray)))


def test_a_fine_grid_is_told_from_a_coarse_one_and_from_ruled_paper():
    assert on_a_fine_grid(grid_page(FINE - 5, FINE - 5))
    assert on_a_fine_grid(grid_page(FINE + 20, FINE - 5))   # the finer way decides
    assert not on_a_fine_grid(grid_page(FINE + 5, FINE + 5))
    assert not on_a_fine_grid(grid_page(FINE - 5, None))   # ruled: lines one way only


def test_only_the_reader_asks_for_a_fine_grid_painted_again():
    """find_ink paints a fine grid a second time, at FINER times the page's resolution, only when asked
    (the reader asks; the writers' stages, which cut training digits out, do not), and never a
    ruled page's lines."""
    plain, rng = number(11, size="small")
    fine = squared(plain, rng)
    assert on_a_fine_grid(to_gray(fine))
    assert find_ink(fine).finer is None
    again = find_ink(fine, finer=True)
    assert again.finer is not None and again.finer.pieces and again.finer.finer is None
    assert [box for box, _ in again.pieces] == [box for box, _ in find_ink(fine).pieces]   # the first painting as before
    plain, rng = number(12, size="small")
    assert find_ink(ruled(plain, rng), finer=True).finer is None


@pytest.mark.bulk
def test_fine_grids_read_twice_read_more_numbers_right_and_flag_what_the_two_readings_dispute(reader_project, monkeypatch):
    """The validation writers' squared pages whose grid is fine (FINE), written and photographed:
    read twice (the grid painted at the page's resolution and at FINER times it), more are read right
    than from the first painting alone, and no more wrong without a flag."""
    import digit_reader.image as image
    from digit_reader.reader import Reader

    sets = writer_sets({"squared": 80, "paper_squared": 80}, "val", 100, 0)
    pages = [(page, digits) for name in sets for page, digits in sets[name] if on_a_fine_grid(to_gray(page))]
    reader = Reader(root=reader_project, runtime="onnx")

    def scores():
        answers = [(reader.read_image(page), digits) for page, digits in pages]
        return (sum(a["digits"] == digits for a, digits in answers),
                sum(a["digits"] != digits and not a["uncertain"] for a, digits in answers))

    right, wrong_unflagged = scores()
    monkeypatch.setattr(image, "fine_grid", lambda printed: False)
    right_first, wrong_unflagged_first = scores()
    assert len(pages) >= 20
    assert right > right_first and wrong_unflagged <= wrong_unflagged_first, (right, right_first, len(pages))
