"""A sheet of paper photographed lying on a desk: the sheet, cut out of the photo.

`to_ink` (digit_reader/image.py) takes the image's margin for the paper. In a photo that shows the
desk around a sheet, the margin is the desk, darker than the sheet, so the sheet was taken for the
ink and its writing was lost ("0", "82", "121" for 4-digit numbers, flagged). A sheet is told from
the desk by all of:
- the margin (the desk) is darker than the image's brightest pixels (half as many as a sheet
  covers at least: SHEET / 2): its median at most DESK of their light. A page's margin is paper,
  as light as the page, even where a photo's light falls off across it;
- the margin is no flat fill (its 5th to 95th percentile FLAT apart at least): a desk in a photo
  has grain and noise, while a light digit drawn on a black canvas, or an MNIST image, has a
  background of one value;
- the pixels brighter than halfway between the two hold one connected region that, its holes
  (the writing) filled, covers SHEET of the image;
- the region is solid: the bright pixels fill SOLID of it (a light 0 or 8 on a dark board leaves
  its loops dark), and it is no stroke: as thick (twice its area over its perimeter) as THICK of
  its longer side (a light 1 is thin); and it is convex, as a sheet (even one the photo cuts) is:
  it fills CONVEX of its convex hull (a light 6 or 8 drawn thick leaves room between its strokes).
A sheet lying askew is turned upright first, about its centre: by the angle of the smallest
rectangle around the region (as people write along a sheet's edges; the reader does not turn
writing otherwise), if that is TURN_MIN or more. The image is then cut to the region's box, less
an INSET of the box's size on each side (the sheet's edge, softened by the photo), and what is
still desk in that box is painted with the sheet's own shade. Positions in the upright sheet go
back to the photo's through `in_the_file`. Nothing is cut from an image whose margin is paper:
the evidence for each setting, and the images it was checked on:
benchmarks/notes/reader.md#2026-12-05-twenty-fourth-session-a-sheet-on-a-desk.

A photo taken close shows the desk along one or two sides only (a corner of the sheet), and the
margin's median is paper. Then (`sheet_at_a_side`) the desk is the margin's darker part where it
is broad (dark bands up to 2 * NARROW pixels wide, a printed line or a stroke, are no desk), at
least SIDE_FRAME of the margin, at most DESK_SIDE of the sheet's light, no flat fill; and the
sheet's region passes the same guards. Such a sheet is cut but not turned (its edges in the photo
are a part of its outline; the line model's input is set level on its own: digit_reader/line.py).
Either way, a last guard (`beside_a_desk`): what lies outside the region is a desk in the sheet's
own light. A page lit steeply from one side has a dim side as dark and broad as a desk, and printed
lines or writing along the edge of its lit part; carried across the page, the lit part's light (a
plane) makes that dim side paper again, while a desk stays dark; and a region that is part of a
sheet (the light evened by a margin half desk, half paper) leaves paper outside:
benchmarks/notes/reader.md#2026-12-05-twenty-fifth-session-a-sheets-corner-in-the-photo.
And no writing beyond the cut (`writing_beyond`): a hard shadow across a page (a phone's, a hand's)
is as dark, broad and straight-edged as a desk, but the writing goes on under a shadow and across its
edge, never onto a desk. A mark of ink (MARK pixels at least, darker than REL of its surroundings'
light and by DROP) beyond the sheet's edge, or running across it, is writing, and nothing is cut:
benchmarks/notes/reader.md#2026-12-05-twenty-ninth-session-a-hard-shadow-across-the-page and
#writing-across-the-cut.

Last, a photo whose view ends just past the sheet's edge shows the desk as a sliver along a side,
too narrow for sheet_at_a_side's opening: a stroke along the side, read as a 1 or setting the ink's
contrast, numbers read wrong without a flag. Then (`sheet_at_its_edge`) the desk is the dark pixels
(under DESK_SIDE of the sheet's light) that lie along ALONG of a side, all within SLIVER of it, no
flat fill; the sheet's region passes the same guards, and no writing lies beyond or across the cut
(`beside_a_desk`, which opens strokes away, would open the sliver away too):
benchmarks/notes/reader.md#a-sliver-of-desk-at-the-views-edge.
"""
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull

from digit_reader.margin import block_means, border, even_light, plane_through

SEARCH = 256       # pixels: the sheet is looked for on a copy at most this large (block means)
DESK = 0.75        # the desk's light at most, of the sheet's
FLAT = 0.01        # the margin's 5th to 95th percentile: closer is a canvas's fill, not a desk
SHEET = 0.08       # of the image, the share the sheet covers at least
SOLID = 0.85       # of the sheet's region (holes filled), the share its bright pixels fill
THICK = 0.2        # twice the region's area over its perimeter, in its longer side's lengths
CONVEX = 0.95      # of its convex hull, the share the region fills
INSET = 0.02       # of the sheet's box, cut off each side with the sheet's edge
TURN_MIN = 1.0     # degrees: a sheet turned less is read as it lies (turning resamples the photo)
# A sheet's corner or side in the photo, the desk along one or two sides only (sheet_at_a_side)
DESK_SIDE = 0.65   # the desk's light at most, of the sheet's
SIDE_FRAME = 0.15  # of the margin, the share the desk takes at least
NARROW = 2         # pixels of the reduced copy: dark bands up to twice this wide are print or strokes, not desk
DIM = 0.8          # in the sheet's own light carried across the photo, darker than this is desk (or print, or ink)
OUTSIDE = 0.8      # of what lies outside the sheet's region, the share that is desk at least
# Writing beyond the sheet's edge: a shadow, not a desk (writing_beyond)
STROKE = 7         # pixels of the reduced copy: the surroundings' light is the brightest within this (strokes closed away)
REL = 0.6          # ink is darker than this of its surroundings' light
DROP = 0.12        # and darker by this much (the noise of a dark desk is darker than REL of its own light)
EDGE = 6           # pixels of the reduced copy: the photo's edge is left out
AWAY = 1           # pixels of the reduced copy: ink this far beyond the sheet's edge is beyond it (a digit beside a shadow's edge)
MARK = 15          # pixels of the reduced copy: a mark of ink at least this large is writing (all of it, not only its part beyond)
# The desk a sliver along a side: the view ends just past the sheet's edge (sheet_at_its_edge)
ALONG = 0.9        # of a side, the share along which the sliver lies on it: a stroke or a digit is shorter
SLIVER = 0.1       # of the view across, the deepest a sliver goes: a dim side is broad


class Turn(NamedTuple):
    """A turn of an image about a point: `degrees` counter-clockwise, as Pillow turns images."""
    degrees: float
    x: float
    y: float

    def scaled(self, factor: float) -> "Turn":
        return Turn(self.degrees, self.x * factor, self.y * factor)


class Sheet(NamedTuple):
    values: np.ndarray           # the photo cut to the sheet, upright; the desk left in it painted
    origin: tuple[int, int]      # row and column of values[0, 0] in the photo turned by `turn`
    turn: Turn | None            # how the photo was turned to set the sheet upright (None: it was not)


def on_the_sheet(gray: np.ndarray) -> Sheet | None:
    """If `gray` (float32 in [0, 1], 1 = white) is a sheet lying on a desk, the sheet; else None."""
    small, factor = reduced(gray)
    found = sheet_region(even_light(small))   # a page lit from one side: its lit half is no sheet
    if found is None or not cut_there(small, found[0]):
        for finder, guard in ((sheet_at_a_side, cut_there), (sheet_at_its_edge, no_writing_beyond)):
            beside = finder(small)   # a desk along a side: the sheet is cut, not turned
            if beside is not None and guard(small, beside[0]):
                return Sheet(*cut(gray, beside[0], factor, beside[2]), None)
        return None
    region, hull, shade = found
    degrees = tilt(hull)
    if abs(degrees) < TURN_MIN:
        return Sheet(*cut(gray, region, factor, shade), None)
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    turn = Turn(degrees, (cols[0] + cols[-1] + 1) / 2 * factor, (rows[0] + rows[-1] + 1) / 2 * factor)
    upright = Image.fromarray(gray).rotate(degrees, Image.Resampling.BICUBIC, center=(turn.x, turn.y), fillcolor=shade)
    region = Image.fromarray(region).rotate(degrees, center=(turn.x / factor, turn.y / factor))
    return Sheet(*cut(np.asarray(upright), np.asarray(region), factor, shade), turn)


def sheet_region(small: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """In a reduced photo, its light made even: the sheet's region (holes filled), the vertices of
    its convex hull (rows, columns) and the sheet's shade; None where any guard fails."""
    return region_on(small, border(small), DESK)


def sheet_at_a_side(small: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """sheet_region() for a reduced photo whose desk shows along one or two of its sides only."""
    frame = border(small)
    light = float(np.percentile(small, 100 * (1 - SHEET / 2)))
    dark = small < (float(np.percentile(frame, 5)) + light) / 2
    # An opening only takes pixels away: a margin dark too little before it stays so after (on a
    # page without a desk, most images, the opening is then skipped).
    if border(dark).sum() < SIDE_FRAME * frame.size:
        return None
    desk = frame[border(ndimage.binary_opening(dark, iterations=NARROW))]
    if desk.size < SIDE_FRAME * frame.size:
        return None
    return region_on(small, desk, DESK_SIDE)


def sheet_at_its_edge(small: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """sheet_region() for a reduced photo whose view ends just past the sheet's edge: the desk a
    sliver along one side (or more), too narrow for sheet_at_a_side's opening. Dark pixels (under
    DESK_SIDE of the sheet's light) lie along ALONG of the side, and all that they touch lies within
    SLIVER of it."""
    # most images: not dark along a side even against their brightest pixel (a percentile costs more)
    if not any((side < DESK_SIDE * small.max()).mean() >= ALONG for side in outer_lines(small)):
        return None
    light = float(np.percentile(small, 100 * (1 - SHEET / 2)))
    dark = small < DESK_SIDE * light
    if not any(side.mean() >= ALONG for side in outer_lines(dark)):
        return None
    labels, _ = ndimage.label(dark)
    desk = np.zeros(small.shape, bool)
    for axis, on_side in zip((1, 1, 0, 0), outer_lines(labels)):   # the axis across the side
        if (on_side > 0).mean() < ALONG:
            continue
        sliver = np.isin(labels, np.unique(on_side[on_side > 0]))
        across, depth = np.flatnonzero(sliver.any(axis=1 - axis)), small.shape[axis]
        if min(across[-1] + 1, depth - across[0]) > SLIVER * depth:   # deeper: a broad dim side, or writing that touches it
            return None
        desk |= sliver
    return region_on(small, small[desk], DESK_SIDE)


def outer_lines(values: np.ndarray) -> tuple:
    """The image's outermost column on the left and on the right, row at the top and at the bottom."""
    return values[:, 0], values[:, -1], values[0], values[-1]


def cut_there(small: np.ndarray, region: np.ndarray) -> bool:
    """The last guards of a cut to `region`: a desk beyond it, and no writing."""
    return beside_a_desk(small, region) and not writing_beyond(small, region)


def no_writing_beyond(small: np.ndarray, region: np.ndarray) -> bool:
    """The last guard of a cut to a sheet whose desk is a sliver (beside_a_desk, which opens
    print and strokes away, would open the sliver away too)."""
    return not writing_beyond(small, region)


def writing_beyond(small: np.ndarray, region: np.ndarray) -> bool:
    """Whether writing reaches beyond the sheet's `region` in the reduced photo `small` (AWAY from
    its edge, EDGE from the photo's): a mark of ink of MARK pixels at least, each darker than REL
    of the brightest within STROKE pixels, and by DROP, that lies beyond it or runs across its edge.
    A shadow across a page has the writing under it and across its edge; a desk has none."""
    light = ndimage.grey_closing(small, size=(STROKE, STROKE))
    labels, count = ndimage.label((small < REL * light) & (light - small > DROP), structure=np.ones((3, 3)))
    if count == 0:
        return False
    beyond = ~ndimage.binary_dilation(region, iterations=AWAY)
    beyond[:EDGE], beyond[-EDGE:], beyond[:, :EDGE], beyond[:, -EDGE:] = False, False, False, False
    sizes = np.bincount(labels.ravel())
    reaching = np.bincount(labels[beyond].ravel(), minlength=sizes.size) > 0
    return bool((reaching[1:] & (sizes[1:] >= MARK)).any())


def beside_a_desk(small: np.ndarray, region: np.ndarray) -> bool:
    """Whether what lies outside the sheet's `region` in the reduced photo `small` is a desk in the
    sheet's own light: with that light carried across the photo (a plane fitted to the region's
    paper, its ink left out), OUTSIDE of it is dark (under DIM; print and strokes opened away), its
    median at most DESK. A page lit from one side has its dim side in that plane, and a sheet found
    in part leaves the rest of its paper outside."""
    paper = region & (small >= DIM * np.median(small[region]))
    relative = small / np.maximum(plane_through(small, paper), 1e-3)
    dark = ndimage.binary_opening(relative < DIM, iterations=NARROW) & ~region
    outside = int((~region).sum())
    return outside > 0 and dark.sum() >= OUTSIDE * outside and float(np.median(relative[dark])) <= DESK


def region_on(small: np.ndarray, desk_pixels: np.ndarray, darkest: float) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The sheet's region, its hull's vertices and its shade, if `desk_pixels` are a desk at most
    `darkest` of the sheet's light and the region brighter than halfway passes every guard."""
    desk, light = float(np.median(desk_pixels)), float(np.percentile(small, 100 * (1 - SHEET / 2)))
    low, high = np.percentile(desk_pixels, [5, 95])
    if desk > darkest * light or high - low < FLAT:
        return None
    labels, count = ndimage.label(small > (desk + light) / 2)
    if count == 0:
        return None
    bright = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    region = ndimage.binary_fill_holes(bright)
    area = int(region.sum())
    edge = np.argwhere(region & ~ndimage.binary_erosion(region))
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    longer = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    if area < SHEET * small.size or bright.sum() < SOLID * area or 2 * area < THICK * longer * len(edge):
        return None
    hull = ConvexHull(edge)
    if area < CONVEX * hull.volume:
        return None
    return region, edge[hull.vertices], float(np.median(small[bright]))


def tilt(hull: np.ndarray) -> float:
    """The angle, in degrees within ±45, that turns the smallest rectangle around the convex
    polygon `hull` (its vertices: rows and columns, in order) square with the image's axes: the
    rectangle has a side along one of the polygon's edges (Freeman and Shapira 1975)."""
    best, angle = np.inf, 0.0
    for a, b in zip(hull, np.roll(hull, -1, axis=0)):
        theta = np.arctan2(b[0] - a[0], b[1] - a[1])
        along = hull[:, 1] * np.cos(theta) + hull[:, 0] * np.sin(theta)
        across = hull[:, 0] * np.cos(theta) - hull[:, 1] * np.sin(theta)
        if np.ptp(along) * np.ptp(across) < best:
            best, angle = np.ptp(along) * np.ptp(across), np.degrees(theta)
    return float((angle + 45) % 90 - 45)


def in_the_file(box: tuple, turn: Turn | None) -> tuple:
    """A box (x0, y0, x1, y1) in the photo turned by `turn` -> the box around it in the photo itself."""
    if turn is None:
        return box
    x0, y0, x1, y1 = box
    radians = np.radians(turn.degrees)
    xs, ys = np.array([x0, x1, x1, x0], float) - turn.x, np.array([y0, y0, y1, y1], float) - turn.y
    back_x = turn.x + xs * np.cos(radians) - ys * np.sin(radians)
    back_y = turn.y + xs * np.sin(radians) + ys * np.cos(radians)
    return (int(np.floor(back_x.min())), int(np.floor(back_y.min())), int(np.ceil(back_x.max())), int(np.ceil(back_y.max())))


def reduced(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """`gray` reduced by an integer factor (block means) to at most SEARCH pixels a side, and
    the factor (the last rows and columns that do not fill a block are left out)."""
    factor = max(1, -(-max(gray.shape) // SEARCH))
    return block_means(gray, factor), factor


def cut(gray: np.ndarray, region: np.ndarray, factor: int, shade: float) -> tuple[np.ndarray, tuple[int, int]]:
    """`gray` cut to `region` (found on a copy reduced `factor` times), less INSET on each side,
    its pixels outside the region painted `shade`."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    inset = max(1, round(INSET * factor * max(rows[-1] - rows[0], cols[-1] - cols[0])))
    y0, y1 = rows[0] * factor + inset, min(gray.shape[0], (rows[-1] + 1) * factor) - inset
    x0, x1 = cols[0] * factor + inset, min(gray.shape[1], (cols[-1] + 1) * factor) - inset
    inside = ndimage.binary_erosion(region, iterations=-(-inset // factor))
    inside = np.kron(inside, np.ones((factor, factor), bool))[y0:y1, x0:x1]
    sheet = gray[y0:y1, x0:x1].copy()
    sheet[:inside.shape[0], :inside.shape[1]][~inside] = shade
    return sheet, (int(y0), int(x0))
