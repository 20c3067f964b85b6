"""Lines printed on the paper: a notebook's rules, a margin line, a form's or a table's border.

To `to_ink` (digit_reader/image.py) a printed line is ink like a pen's: a rule under a number
joined its digits into one piece, and a margin line was read as a 1 (other writers' numbers on
ruled paper read right 31% of the time). A printed line is told from a written stroke by all of:
- it runs from edge to edge of the image (EDGE: a photographed page may end a little inside it),
  while a photo or a crop of handwriting keeps paper around the writing; and not along the
  image's very edge, where a photographed page's own border is;
- it is straight: at one angle, within MAX_TILT degrees of the rows (or of the columns), its ink
  covers COVER of the columns (rows) it crosses, in a band a few pixels high;
- it is LONGER times as long as the tallest mark left when it is taken out (a 7's bar or a 1 as
  long as a tight crop is wide or tall stays a digit), and at most THIN of that mark's height thick.
Ink here is what stands above the ink around it across the line's direction (a top-hat over
REACH), at LEVEL at least and NOISE times a noisy photo's noise. The line is painted over with the
paper around it, except where a stroke crosses it or lies along it (MORE ink across it there),
and the ink is found again. The evidence for each setting:
benchmarks/notes/reader.md#2026-12-05-twenty-first-session-lines-printed-on-the-paper.
"""
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from digit_reader.marks import marks_in

MAX_TILT = 5.0     # degrees: a phone photo of a page is rarely held more askew
COVER = 0.8        # of the columns a line crosses, the share its band holds ink in: print breaks in a photo's noise
LONGER = 1.2       # a line's length, in heights of the tallest mark: a digit on ruled paper cropped 1.5 heights wide
                   # is 1.4; a tightly cropped 7's bar 0.7, a 1 as tall as a tight crop about 1
THIN = 0.4         # a line's thickness, in heights of the tallest mark: a wider band is shade, not print
MORE = 1.25        # a column with this much more ink across a line than the line's usual holds a stroke too
COARSE = 0.5       # degrees between the angles tried first; then, around the best, half a pixel across the image
SEARCH = 128       # pixels: the angle is searched on a copy this wide, then refined on the image
LEVEL = 0.15       # of the ink's contrast: faint print (a notebook's pale blue) is a line too, if not ink to segment
NOISE = 1.5        # times the noise (the 90th percentile of the top-hat: most of an image is paper)
REACH = 0.04       # of the image's longer side: the top-hat's length, longer than a line is thick
EDGE = 0.1         # of the side along a line: its ink comes this close to both ends
# A fine grid: lines both ways, squares under FINE pixels (the median step between its lines, the
# finer way). There the fixed margins above and below (a line's soft edge 2 px each side, a stroke
# across it 3 px beyond it) take most of a square, and strokes beside a line go with it, so the
# reader paints such a page again at FINER times its resolution (digit_reader/image.py's
# `painted_finer`) and flags the number unless both readings agree (digit_reader/rules.py's
# `agreed`): benchmarks/notes/reader.md#a-fine-grid-read-at-a-finer-resolution.
FINE = 25
FINER = 3


@dataclass
class Line:
    """A printed line across an image (or, transposed, down it): its ink lies between rows
    `first` and `last` at column 0, rising tan(tilt) a column, in `length` columns."""
    first: int
    last: int
    tilt: float
    length: int
    down: bool = False


class Printed(NamedTuple):
    """The lines printed across and down an image's ink, and what they were found in: the ink thin
    across the rows, the ink thin across the columns, and the level above which either is ink."""
    lines: list[Line]
    across: np.ndarray
    down: np.ndarray
    level: float


def without_lines(gray: np.ndarray, ink: np.ndarray, printed: Printed | None = None) -> np.ndarray | None:
    """`gray` with its printed lines painted over with the paper around them, or None if it has
    none. `ink`: to_ink's ink of `gray`; `printed`: its printed_lines(), if already found."""
    found = printed or printed_lines(ink)
    if found is None:
        return None
    lines, across, down, level = found
    strokes = (across > level) | (down > level)
    cores = [_band(ink.shape, line, 0) for line in lines]
    on_lines = np.sum(cores, axis=0, dtype=np.uint8) if len(cores) > 1 else cores[0].astype(np.uint8)
    masks = []
    for core, line in zip(cores, lines):
        # where two printed lines cross, neither is a stroke through the other
        others = on_lines - core > 0
        along, crossing = (down, across) if line.down else (across, down)
        masks.append(_line_pixels(np.where(others, 0.0, along), (crossing > level) & ~others, line, level))
    tallest = _tallest_mark(strokes & ~np.logical_or.reduce(masks))
    if not tallest:   # nothing but lines: a blank ruled page, or a 1 from edge to edge, is left as it is
        return None
    kept = [(mask, line) for mask, line in zip(masks, lines)
            if line.length >= LONGER * tallest and line.last - line.first + 1 <= THIN * tallest and mask.any()]
    if not kept:
        return None
    painted = gray.astype(np.float32, copy=True)
    for mask, line in kept:
        if line.down:
            _paint(painted.T, mask.T, strokes.T)
        else:
            _paint(painted, mask, strokes)
    return painted


def fine_grid(printed: Printed | None) -> bool:
    """Whether the printed lines (printed_lines()) are a fine grid: two lines or more each way,
    FINE pixels apart or closer (the median step between neighbours, the finer way)."""
    if printed is None:
        return False
    starts = [[line.first for line in printed.lines if line.down == down] for down in (False, True)]
    return min(map(len, starts)) >= 2 and min(float(np.median(np.diff(s))) for s in starts) < FINE


def printed_lines(ink: np.ndarray) -> Printed | None:
    """The lines printed across and down `ink` (to_ink's), or None where none is found."""
    faint = ink > LEVEL
    if not (_reaches_edges(faint) or _reaches_edges(faint.T)):
        return None
    # Ink thinner than REACH across the rows (lines across, a digit's bars) and across the
    # columns (lines down, a digit's upright strokes): a photo's uneven light, which to_ink's plane
    # leaves where a line crosses the border, is not ink here.
    reach = max(5, 2 * round(REACH * max(ink.shape) / 2) + 1)
    across = ink - ndimage.grey_opening(ink, size=(reach, 1))
    down = ink - ndimage.grey_opening(ink, size=(1, reach))
    # the noise: ink thin both ways (a squared page's lines down are as strong in `down` as print)
    level = max(LEVEL, NOISE * float(np.percentile(np.minimum(across, down), 90)))
    lines = _lines(across > level) + [replace(line, down=True) for line in _lines((down > level).T)]
    return Printed(lines, across, down, level) if lines else None


def _reaches_edges(inked: np.ndarray) -> bool:
    """Whether ink comes within EDGE of both the left and the right edge."""
    edge = max(1, round(EDGE * inked.shape[1]))
    return inked.shape[0] >= 3 and inked.shape[1] >= 3 and inked[:, :edge].any() and inked[:, -edge:].any()


def _lines(inked: np.ndarray) -> list[Line]:
    """The lines across `inked`, near its rows' direction."""
    height, width = inked.shape
    if not _reaches_edges(inked):
        return []
    tilt = _tilt(inked)
    if tilt is None:
        return []
    ys, xs = np.nonzero(inked)
    hits, offset = _coverage(ys, xs, inked.shape, tilt, band=1)
    cover = hits.sum(1)
    inside = _inside(inked.shape, tilt, offset, len(cover))
    full = (cover >= COVER * np.maximum(inside, 1)) & (inside >= width / 2)
    # a band of one row each side counted the rows next to a line's as covered
    lines = [Line(int(min(rows[0] + 1, rows[-1] - 1) - offset), int(max(rows[-1] - 1, rows[0] + 1) - offset), tilt,
                  int(cover[rows].max())) for rows in _runs(np.flatnonzero(full))]
    # one on the image's edge has no paper beyond it: a strip of a photographed page at its edge
    middle = np.tan(np.radians(tilt)) * (width - 1) / 2
    return [line for line in lines if line.first + middle >= 1 and line.last + middle <= height - 2]


def _tilt(inked: np.ndarray) -> float | None:
    """The angle (degrees) at which lines across `inked` cover the most columns: searched on a
    copy at most SEARCH pixels wide (a block is ink if any of its pixels is), first in steps of
    COARSE with a band as high as a line drifts across the image in half a step, then in steps
    of half a pixel across it in exact rows; then again on `inked` itself, around that angle.
    None where even the first, wider band covers too few columns for a line."""
    factor = max(1, min(-(-max(inked.shape) // SEARCH), min(inked.shape) // 3))   # a thin image stays 3 wide
    small = inked[:inked.shape[0] // factor * factor, :inked.shape[1] // factor * factor]
    small = small.reshape(small.shape[0] // factor, factor, small.shape[1] // factor, factor).any(axis=(1, 3))
    ys, xs = np.nonzero(small)
    band = max(1, int(np.ceil(small.shape[1] * np.tan(np.radians(COARSE / 2)))))
    tilt, cover = _best_tilt(ys, xs, small.shape, np.arange(-MAX_TILT, MAX_TILT + COARSE / 2, COARSE), band)
    if cover < COVER * small.shape[1] / 2:   # a line may leave through the top, but not before half-way
        return None
    fine = np.degrees(0.5 / small.shape[1])
    tilt, _ = _best_tilt(ys, xs, small.shape, tilt + np.arange(-COARSE, COARSE + fine / 2, fine), band=0)
    if factor == 1:
        return tilt
    ys, xs = np.nonzero(inked)
    finer = np.degrees(0.5 / inked.shape[1])
    return _best_tilt(ys, xs, inked.shape, tilt + np.arange(-fine, fine + finer / 2, finer), band=0)[0]


def _best_tilt(ys, xs, shape, tilts, band: int) -> tuple[float, int]:
    """Of `tilts` (degrees, in order), the one at which a line's band covers the most columns,
    and how many."""
    best = np.array([_coverage(ys, xs, shape, t, band)[0].sum(1).max() for t in tilts])
    tied = np.flatnonzero(best == best.max())   # a thick line in a narrow image fits several: the middle one
    return float(tilts[tied[len(tied) // 2]]), int(best.max())


def _coverage(ys, xs, shape, tilt: float, band: int):
    """For every line y = r + x tan(tilt) (r = index - offset), whether each column has ink within
    `band` rows of it; and the offset."""
    height, width = shape
    slope = np.tan(np.radians(tilt))
    offset = int(np.ceil(max(0.0, slope * (width - 1)))) + band
    rows = height + int(np.ceil(abs(slope) * (width - 1))) + 2 * band
    hits = np.zeros((rows, width), bool)
    hits[np.round(ys - xs * slope).astype(int) + offset, xs] = True
    return (ndimage.maximum_filter1d(hits, 2 * band + 1, axis=0) if band else hits), offset


def _inside(shape, tilt: float, offset: int, rows: int) -> np.ndarray:
    """For each of _coverage's lines, the columns where it lies inside the image."""
    height, width = shape
    at = (np.arange(rows)[:, None] - offset) + np.arange(width)[None, :] * np.tan(np.radians(tilt))
    return ((at >= 0) & (at <= height - 1)).sum(1)


def _runs(indices: np.ndarray) -> list[np.ndarray]:
    """Consecutive integers, grouped."""
    return [run for run in np.split(indices, np.flatnonzero(np.diff(indices) > 1) + 1) if run.size]


def _rows(shape, line: Line, r: int):
    """Row r of `line`'s frame (r = line.first: its first row) in each column: the rows, and
    whether each is inside the image."""
    height, width = shape
    y = np.round(r + np.arange(width) * np.tan(np.radians(line.tilt))).astype(int)
    return y, (y >= 0) & (y < height)


def _band(shape, line: Line, spread: int) -> np.ndarray:
    """The pixels of `line`'s rows, and `spread` more each side, in the original orientation."""
    frame = shape[::-1] if line.down else shape
    mask = np.zeros(frame, bool)
    for r in range(line.first - spread, line.last + spread + 1):
        y, inside = _rows(frame, line, r)
        mask[y[inside], np.flatnonzero(inside)] = True
    return mask.T if line.down else mask


def _line_pixels(along: np.ndarray, crossing: np.ndarray, line: Line, level: float) -> np.ndarray:
    """The pixels to paint over of `line`: its rows and two more each side for the print's soft
    edge, in the columns that hold the line alone. `along`: the ink thin across the line's rows;
    `crossing`: the ink thin along them, strokes that may cross it. A column holds more than the
    line where a stroke crosses it (ink three rows beyond it on both sides), or where it holds
    more ink across the line than the line's own (a 2's base written along it). A stroke
    that ends on it (a digit standing on it) loses the pixels that lie on the line: a little of
    its length, where keeping them left feet of print under the digits that were misread."""
    if line.down:
        return _line_pixels(along.T, crossing.T, replace(line, down=False), level).T
    shape, columns = along.shape, np.arange(along.shape[1])

    def at(values, r, outside):
        y, inside = _rows(shape, line, r)
        out = np.full(shape[1], outside, values.dtype)
        out[inside] = values[y[inside], columns[inside]]
        return out

    band = range(line.first - 2, line.last + 3)
    across = np.array([at(along, r, 0.0) for r in band])
    on_line = (across > level).any(axis=0)
    if not on_line.any():
        return np.zeros(shape, bool)
    mass = across.sum(axis=0)   # the ink across the line: a stroke on it or beside it adds some
    crossed = at(crossing, line.first - 3, False) & at(crossing, line.last + 3, False)
    alone = ~crossed & (mass <= _usual_and_more(mass[on_line]))
    mask = np.zeros(shape, bool)
    for r in band:
        # the line's own rows; its soft edge wherever it is not a stroke's
        paint = alone & ~at(crossing, r, False) if r < line.first or r > line.last else alone
        y, inside = _rows(shape, line, r)
        mask[y[paint & inside], columns[paint & inside]] = True
    return mask


def _usual_and_more(values: np.ndarray) -> float:
    """The most of `values` that is still the line's usual: MORE times its median, or more where
    a photo's noise spreads it (three median absolute deviations)."""
    usual = float(np.median(values))
    return usual + max((MORE - 1) * usual, 3 * float(np.median(np.abs(values - usual))))


def _tallest_mark(inked: np.ndarray) -> int:
    """The height of the tallest mark (connected ink, specks aside) in `inked`; 0 if none."""
    found = marks_in(inked)
    return max((found.slices[i][0].stop - found.slices[i][0].start for i in found.kept), default=0)


def _paint(gray: np.ndarray, mask: np.ndarray, strokes: np.ndarray) -> None:
    """`mask`'s pixels (a line across `gray`) replaced, in place, by the mean of the paper near them
    in their column: the paper just above and below a rule, its light and grain included, never a
    stroke's ink."""
    reach = 2 * int(mask.sum(axis=0).max()) + 5   # the line's own thickness, and as much paper again each side
    rows = np.flatnonzero(mask.any(axis=1))
    near = slice(max(0, rows[0] - reach), rows[-1] + reach + 1)
    window, inside = gray[near], mask[near]
    paper = (~inside & ~strokes[near]).astype(np.float32)
    total = ndimage.uniform_filter1d(window * paper, reach, axis=0)
    weight = ndimage.uniform_filter1d(paper, reach, axis=0)
    fill = np.where(weight > 1e-6, total / np.maximum(weight, 1e-6), float(np.median(window)))
    window[inside] = fill[inside]
