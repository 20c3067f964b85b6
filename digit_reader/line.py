"""A user's image of a number -> one line at MNIST's scale, as the line model was trained on.

The line model (src/number_model.py) was trained on numbers written from MNIST digits: white
ink on black, 28 rows high, each digit about 20 px tall in the rows MNIST puts it (4 to 24), a
few blank columns at each end. A photo or a drawing of a number is brought there the way
digit_reader/image.py brings one digit to MNIST's field:

1. the same decoding, grey channel and ink, found once for both (image.py's `find_ink`);
2. the ink that segmentation keeps (image.py's `segment`: specks and hyphens dropped);
3. thin strokes thickened to MNIST's stroke width at the target scale;
4. scaled so that a digit is 20 px tall (MNIST's box), aspect kept, Lanczos: the height of a
   digit is the median height of the pieces of ink (several digits that touch are one piece,
   as tall as one digit); the whole line's ink is taller, as its digits do not sit on one
   baseline, and the composed training numbers' digits are 20 px each, not the line. That
   estimate is rough where digits touch, so `line_maker` can also make the line a little
   smaller or larger (digit_reader/numbers.py reads an unsure number at several zooms);
5. placed with its centre of mass on row 14, as MNIST centres each digit, 4 columns from the
   left, the width rounded up to the model's step.

`Line.to_image_x` maps a column of the line back to the image's own pixels, for the boxes.
"""
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
    ink = found.values
    kept = np.zeros(ink.shape, bool)
    for box, mask in found.pieces:
        kept[box] |= mask
    rows, cols = np.flatnonzero(kept.any(1)), np.flatnonzero(kept.any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = 2  # the anti-aliased edge around the kept ink
    ys, xs = slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad)
    own = ndimage.binary_dilation(kept, iterations=pad)[ys, xs]
    crop = ink[ys, xs] * own
    stroke = stroke_width(kept[y0:y1, x0:x1])
    digit_height = float(np.median([piece_digit_height(mask) for _, mask in found.pieces]))
    top, left, factor = found.origin[0], found.origin[1], found.factor

    def make(zoom: float) -> Line:
        scale = min(zoom * BOX / digit_height, (MAX_COLUMNS - 2 * MARGIN) / (x1 - x0))
        pixels, used, width_scale, ink_left = _scaled(crop, stroke, scale)
        # back to the file's pixels: crop column j is column left + xs.start + j of the shrunk image
        return Line(pixels, used, width_scale / factor, (left + xs.start + ink_left) * factor,
                    int(round((top + y0) * factor)), int(round((top + y1) * factor)))

    return make


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
