"""A user's image of a number -> one line at MNIST's scale, as the line model was trained on.

The line model (src/number_model.py) was trained on numbers written from MNIST digits: white
ink on black, 28 rows high, each digit about 20 px tall in the rows MNIST puts it (4 to 24), a
few blank columns at each end. A photo or a drawing of a number is brought there the way
digit_reader/image.py brings one digit to MNIST's field:

1. the same decoding, grey channel and ink, found once for both (image.py's `find_ink`);
2. the ink that segmentation keeps (image.py's `segment`: specks and hyphens dropped);
3. set level: writing that runs uphill or downhill (a line written askew, a photo taken askew)
   is sheared column by column so that its digits sit on one line, as the composed training
   numbers' digits do (`tilt`, `levelled`); the columns stay where they were, for the boxes;
4. thin strokes thickened to MNIST's stroke width at the target scale;
5. scaled so that a digit is 20 px tall (MNIST's box), aspect kept, Lanczos: the height of a
   digit is the median height of the pieces of ink (several digits that touch are one piece,
   as tall as one digit); the whole line's ink is taller, as its digits do not sit on one
   baseline, and the composed training numbers' digits are 20 px each, not the line. That
   estimate is rough where digits touch, so `line_maker` can also make the line a little
   smaller or larger (digit_reader/numbers.py reads an unsure number at several zooms);
6. placed with its centre of mass on row 14, as MNIST centres each digit, 4 columns from the
   left, the width rounded up to the model's step.

`Line.to_image_x` maps a column of the line back to the image's own pixels, for the boxes.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digit_reader.image import BOX, CENTRE, FIELD, Ink, find_ink, scaled_ink, stroke_width
from src.ctc import STRIDE as WIDTH_STEP  # the line model's columns per output: a line's width is a multiple

MARGIN = 4           # blank columns before the ink, as src/number_images.py's MARGIN (a test checks)
WIDEST_DIGIT = 1.1    # a piece up to this many times as wide as tall is one digit tall (90% of MNIST's digits are no wider); touching ones are wider
MAX_COLUMNS = 4096   # a line wider than this (a 200-digit number) is scaled down to fit
# Levelling (`tilt`): writing whose digits' middles run at most LEVEL_WITHIN off level is left as
# it is; beyond, it is sheared back to that, up to LEVEL_MOST. The evidence (the fitted tilt of
# level numbers, what each tilt reads): benchmarks/notes/reader.md#2026-12-05-twenty-fifth-session-writing-askew.
LEVEL_WITHIN = math.tan(math.radians(3.0))
LEVEL_MOST = math.tan(math.radians(20.0))
LEVEL_SPAN, LEVEL_FIT = 2.0, 0.25   # the digits' middles span this many digit heights, and lie this near their line


@dataclass
class Line:
    pixels: np.ndarray      # 28 x W float32 in [0, 1], white ink on black
    width: int              # columns really used (the rest is padding to WIDTH_STEP)
    scale: float            # line pixels per image pixel
    x0: float               # image column of the line's column MARGIN (the ink's left edge)
    y0: int                 # the ink's rows in the image
    y1: int

    def to_image_x(self, column: float) -> int:
        return int(round(self.x0 + (column - MARGIN) / self.scale))


def line_of(image: Image.Image) -> Line | None:
    """The number in a decoded image as one MNIST-scale line; None if it holds no ink."""
    make = line_maker(image)
    return make(1.0) if make else None


def line_maker(image: Image.Image) -> Callable[[float], Line] | None:
    """The number in a decoded image, ready to be made into a line at any zoom: at zoom 1 a digit
    is BOX pixels tall, as far as its height can be estimated. None if the image holds no ink."""
    found = find_ink(image)
    return maker_of(found) if found else None


def maker_of(found: Ink) -> Callable[[float], Line] | None:
    """line_maker() for ink already found (image.py's find_ink); None if no piece of it was kept."""
    if not found.pieces:
        return None
    kept = np.zeros(found.values.shape, bool)
    for box, mask in found.pieces:
        kept[box] |= mask
    rows, cols = np.flatnonzero(kept.any(1)), np.flatnonzero(kept.any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    digit_height = float(np.median([piece_digit_height(mask) for _, mask in found.pieces]))
    pad = 2  # the anti-aliased edge around the kept ink
    ys, xs = slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad)
    own = ndimage.binary_dilation(kept, iterations=pad)[ys, xs]
    crop = levelled(found.values[ys, xs] * own, tilt(found.pieces, digit_height))
    stroke = stroke_width(kept[y0:y1, x0:x1])
    top, left, factor = found.origin[0], found.origin[1], found.factor

    def make(zoom: float) -> Line:
        scale = min(zoom * BOX / digit_height, (MAX_COLUMNS - 2 * MARGIN) / (x1 - x0))
        pixels, used, width_scale, ink_left = _scaled(crop, stroke, scale)
        # back to the file's pixels: crop column j is column left + xs.start + j of the shrunk image
        return Line(pixels, used, width_scale / factor, (left + xs.start + ink_left) * factor,
                    int(round((top + y0) * factor)), int(round((top + y1) * factor)))

    return make


def tilt(pieces: list, digit_height: float) -> float:
    """The slope (rows per column; positive: running downhill to the right) of the line through
    the middles of the digits, 0 where it cannot be told. Each piece of ink one digit wide gives
    its box's middle row at its middle column; a wider piece (digits that touch) one point per
    digit's width of it. The slope is the median of the points' pairwise slopes (Theil-Sen), from
    three points or more spanning LEVEL_SPAN digits' heights (a shorter number does not drift off
    its line), and only if every point lies within LEVEL_FIT of a digit's height of that line: a
    stray mark, or digits written up and down at random, set nothing level."""
    points = [point for box, mask in pieces for point in _middles(box, mask, digit_height)]
    if len(points) < 3:
        return 0.0
    x, y = np.array(points).T
    if np.ptp(x) < LEVEL_SPAN * digit_height:
        return 0.0
    i, j = np.triu_indices(len(x), 1)
    apart = x[j] - x[i] >= digit_height / 2
    if not apart.any():
        return 0.0
    slope = float(np.median((y[j] - y[i])[apart] / (x[j] - x[i])[apart]))
    off = y - slope * x
    return slope if np.abs(off - np.median(off)).max() <= LEVEL_FIT * digit_height else 0.0


def _middles(box: tuple, mask: np.ndarray, digit_height: float) -> list[tuple[float, float]]:
    """(column, row) of the middle of each digit's width of a piece of ink, in the image."""
    rows, cols = box
    width = mask.shape[1]
    count = max(1, round(width / (WIDEST_DIGIT * digit_height)))
    out = []
    for part in np.array_split(np.arange(width), count):
        inked = np.flatnonzero(mask[:, part].any(1))
        if len(inked):
            out.append((cols.start + part.mean(), rows.start + (inked[0] + inked[-1] + 1) / 2))
    return out


def levelled(crop: np.ndarray, slope: float) -> np.ndarray:
    """The ink `crop` sheared up and down, column by column, so that writing of `slope` runs at
    most LEVEL_WITHIN off level (unchanged within); each column keeps its place, so that a column
    of the line is still a column of the image."""
    shear = math.copysign(min(max(0.0, abs(slope) - LEVEL_WITHIN), LEVEL_MOST - LEVEL_WITHIN), slope)
    if shear == 0:
        return crop
    extra = int(math.ceil(abs(shear) * crop.shape[1] / 2)) + 1   # rows the ink may move, up or down
    # out[r, c] = crop[r - extra + shear * (c - middle), c]
    offset = (-extra - shear * crop.shape[1] / 2, 0.0)
    return ndimage.affine_transform(crop, np.array([[1.0, shear], [0.0, 1.0]]), offset,
                                    (crop.shape[0] + 2 * extra, crop.shape[1]), order=1)


def _scaled(crop: np.ndarray, stroke: float, scale: float):
    """The line's pixels at `scale`: (28 x W pixels, columns used, line columns per crop column,
    the crop column of the ink's left edge)."""
    small, width_scale, ink_left = scaled_ink(crop, stroke, scale)
    height, width = small.shape
    used = width + 2 * MARGIN
    pixels = np.zeros((FIELD, WIDTH_STEP * -(-used // WIDTH_STEP)), np.float32)
    top = int(round(CENTRE - ndimage.center_of_mass(small)[0])) if small.sum() > 0 else 0
    rows = slice(max(0, -top), min(height, FIELD - top))   # a line taller than the field loses its ends
    pixels[top + rows.start:top + rows.stop, MARGIN:MARGIN + width] = small[rows]
    return pixels, used, width_scale, ink_left


def piece_digit_height(mask: np.ndarray) -> int:
    """The height of a digit in one piece of ink (its boolean mask): the piece's height if it is
    no wider than one digit; else, several digits touching, the tallest single column of ink, as
    digits that touch rarely sit on one baseline and their union is taller than any of them."""
    height, width = mask.shape
    if width <= WIDEST_DIGIT * height:
        return height
    rows = np.arange(height)[:, None]
    top = np.where(mask, rows, height).min(0)
    bottom = np.where(mask, rows + 1, 0).max(0)
    return int((bottom - top).max())
