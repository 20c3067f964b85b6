"""Marks on the page: connected pieces of ink, specks aside.

Segmentation (digit_reader/image.py) groups marks into digits, and the search for printed lines
(digit_reader/paper.py) measures the tallest mark a line must outrun; both must agree on what a
speck is, so the rule stands here once.
"""
from typing import NamedTuple

import numpy as np
from scipy import ndimage

# A speck: a mark of fewer than SPECK_PIXELS pixels, or under SPECK_SHARE of the largest mark's
# (dust, JPEG noise); left out before grouping, so that noise never bridges two digits.
SPECK_PIXELS = 4
SPECK_SHARE = 0.002


class Marks(NamedTuple):
    labels: np.ndarray   # each pixel's mark, 1..count (0: no ink)
    slices: list         # each mark's (rows, columns) slices, mark k + 1 at index k
    areas: np.ndarray    # each mark's pixels, likewise
    kept: list           # the indices (into slices and areas) of the marks that are not specks


def marks_in(inked: np.ndarray) -> Marks:
    """The 8-connected pieces of `inked` (strokes touch diagonally), and which are not specks."""
    labels, count = ndimage.label(inked, structure=np.ones((3, 3)))
    if count == 0:
        return Marks(labels, [], np.zeros(0, np.int64), [])
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    least = max(SPECK_PIXELS, SPECK_SHARE * areas.max())
    return Marks(labels, ndimage.find_objects(labels), areas, [i for i in range(count) if areas[i] >= least])
