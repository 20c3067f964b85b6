"""A user's image of a digit or a number -> MNIST-style 28x28 digits, as the model was trained on.

A photo or a drawing is not MNIST: dark ink on light paper, any size, off-centre, with margins,
in colour, sometimes transparent. The models only know MNIST's digits, which LeCun et al.
normalised this way (http://yann.lecun.com/exdb/mnist/): white digit on black, the digit's box
scaled to fit 20x20 preserving its aspect ratio (with anti-aliasing, hence grey levels), then
placed in a 28x28 field so that its centre of mass is at the centre. Merely inverting and
resizing the whole image reads far fewer digits
(benchmarks/notes/reader.md#2026-11-25-making-a-users-image-look-like-mnist).

The steps, each a function below, in order:
1. `decode`: bytes -> a Pillow image, refusing what is not an image, truncated, empty or huge.
2. `to_gray`: any mode (RGB, RGBA, palette, 16-bit, CMYK) -> one float channel in [0, 1].
3. `to_ink`: find the background, invert so that the ink is light on dark, stretch its contrast;
   lines printed on the paper are painted over (digit_reader/paper.py) and the ink found again.
   A photo of a sheet lying on a desk is first cut to the sheet, set upright (digit_reader/sheet.py).
4. `segment`: split the ink into digits (connected components, pieces of one digit merged),
   left to right, ignoring specks.
5. `normalise_digit`: per digit, MNIST's own size and position normalisation.
`digits_in(decode(data))` runs them all; digit_reader/numbers.py runs `find_ink` (steps 2-4) once
and `digits_of` (step 5), as the line model reads the same ink, for the CLI and the API alike.
"""
import functools
import heapq
import io
import math
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from digit_reader.margin import border, lit_evenly
from digit_reader.marks import marks_in
from digit_reader.paper import FINER, fine_grid, printed_lines, without_lines
from digit_reader.sheet import Turn, in_the_file, on_the_sheet
from src.errors import PipelineError

MAX_SIDE = 10_000          # pixels on a side; a 100,000 x 1 image is refused, not processed
MAX_PIXELS = 40_000_000    # below Pillow's own bomb limit (89 MP): a 40 MP phone photo is fine
# A decompression bomb: far more pixels per byte of file than photos and scans have, in an image
# large enough to cost (the evidence: benchmarks/notes/serving.md#2026-12-02-hostile-images-bounded-issue-24)
MAX_PIXELS_PER_BYTE = 100
RATIO_FROM_PIXELS = 2_000_000
WORK_SIDE = 1024           # larger images are first reduced: a digit does not need more
BOX = 20                   # MNIST: the digit's longer side, in pixels
FIELD = 28                 # MNIST: the image's side
CENTRE = 14.0              # MNIST's mean centre of mass is (13.99, 14.00), row and column index
MIN_CONTRAST = 0.2         # ink this close to the background is no ink: a blank page is blank
INK_LEVEL = 0.4            # a pixel is ink above this fraction of the ink's full contrast
BLOB = 0.5                 # a mark whose stroke is this thick for its longer side is a dot or a blot, not a digit
MAX_PIECES = 250           # separate marks (specks dropped) an image may hold: a number has a few dozen at most
# A 5's top bar written apart (segment): at most this tall, as a fraction of its body's height; its
# bottom at most BAR_ABOVE of that height above the body's top, its top within the body's top BAR_TOP.
BAR_HEIGHT, BAR_ABOVE, BAR_TOP = 0.35, 0.1, 0.2
STROKE = 3.0               # MNIST's median stroke width in the 20-px box (2.3-4.1 for 80% of digits)


class ImageError(PipelineError, ValueError):
    """The bytes are not an image this module can read; the message names the problem."""


@dataclass
class Digit:
    image: np.ndarray          # 28 x 28 float32 in [0, 1]: white digit on black, as MNIST / 255
    box: tuple[int, int, int, int]   # x0, y0, x1, y1 (exclusive) in the original image's pixels


# --- 1. decoding ---------------------------------------------------------------------------

def decode(data: bytes) -> Image.Image:
    """Decode PNG, JPEG, BMP, GIF (first frame), WebP, ... at the reader's working resolution
    (`load`); one-line ImageError otherwise."""
    return load(open_image(data))


def open_image(data: bytes) -> Image.Image:
    """The image in `data` with its header read and checked, no pixel decoded yet: what it will
    cost is known (`pixels`) before it is paid. A decompression bomb (a small file that expands
    to gigabytes, or a page of ink dots whose decode costs far more than its upload) is refused
    here, for nothing."""
    if not data:
        raise ImageError("empty body: no image data")
    with _pillow_errors(data):
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width == 0 or height == 0:
            raise ImageError(f"the image is {width}x{height} pixels: it has no pixels")
        if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
            raise ImageError(f"the image is {width}x{height} pixels: too large (at most {MAX_SIDE} "
                             f"on a side and {MAX_PIXELS // 1_000_000} megapixels)")
        per_byte = width * height / len(data)
        if width * height > RATIO_FROM_PIXELS and per_byte > MAX_PIXELS_PER_BYTE:
            raise ImageError(f"decompression bomb refused: the image is {width}x{height} pixels in {len(data)} bytes, "
                             f"{per_byte:.0f} pixels per byte, over the limit of {MAX_PIXELS_PER_BYTE} for images over "
                             f"{RATIO_FROM_PIXELS // 1_000_000} megapixels (a page mostly blank: send it at most "
                             f"{WORK_SIDE} pixels on a side, the size the reader works at)")
    return image


def pixels(image: Image.Image) -> int:
    return image.size[0] * image.size[1]


def load(image: Image.Image) -> Image.Image:
    """Decode an `open_image` at the working resolution: JPEG at 1/2..1/8 scale for free (draft),
    turned upright as the user saw it (a phone photo's EXIF orientation; in place, so that an
    upright image is not copied), then reduced by area averaging (`shrink`) before any other step
    copies it. `info["scale"]`: the file's pixels per pixel of the result, for boxes in the
    file's pixels."""
    width = image.size[0]
    with _pillow_errors():
        if image.format == "JPEG":
            image.draft("L", (WORK_SIDE, WORK_SIDE))
        image.load()
        drafted = width / image.size[0]  # >1 if JPEG's draft mode decoded at a reduced scale
        ImageOps.exif_transpose(image, in_place=True)
        image, factor = shrink(image)
    image.info["scale"] = drafted * factor
    return image


@contextmanager
def _pillow_errors(data: bytes = b""):
    """Pillow's many ways of saying that bytes are not a good image, as one-line ImageErrors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own limits (89 and 179 megapixels) come first; the reader's are lower
        raise ImageError(f"decompression bomb refused: {error} (the reader takes at most {MAX_SIDE} pixels on a "
                         f"side and {MAX_PIXELS // 1_000_000} megapixels)") from None
    except UnidentifiedImageError:
        # Pillow also lands here for a known format with an invalid header, such as 0 x 0 pixels
        raise ImageError(f"not a readable image: unknown format or invalid header, such as a size of 0 pixels "
                         f"({len(data)} bytes; expected PNG, JPEG, BMP, GIF or WebP)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, ZeroDivisionError,
            MemoryError) as error:
        # Pillow's decoders report truncated or corrupt data with any of these
        raise ImageError(f"corrupt or truncated image: {' '.join(str(error).split()) or type(error).__name__}") from None


# --- 2. one grey channel --------------------------------------------------------------------

def to_gray(image: Image.Image) -> np.ndarray:
    """Luminance as float32 in [0, 1] (1 = white), whatever the mode.

    Transparency: a canvas drawing is often ink on transparent pixels, whose hidden colour is
    arbitrary (usually black). Compositing onto white would hide white ink, onto black would
    hide black ink, so the image goes onto the colour that contrasts with its ink."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16- and 32-bit greys: Pillow's conversion to 8 bits clips instead of scaling
        # by the image's own brightest value: 12-bit data in a 16-bit file is not near-black
        values = np.asarray(image, dtype=np.float32)
        return np.clip(values / max(float(values.max()), 1.0), 0, 1)
    if image.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in image.info:
        return np.asarray(converted(image, "L"), dtype=np.float32) / 255.0
    image = converted(image, "RGBA")
    if image.getchannel("A").getextrema()[0] == 255:  # opaque after all (a browser canvas's PNG)
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    rgba = np.asarray(image, dtype=np.float32) / 255.0
    alpha = rgba[..., 3]
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"
    # The ink's colour is that of the strokes' insides: their anti-aliased fringes, next to the
    # transparent pixels, are many (a third of the pixels of an enlarged MNIST digit) and in between.
    # If most of the image is opaque, it is the paper (a photo with transparent corners): the
    # transparent parts become more of the same paper.
    opaque = alpha > 0.5
    if opaque.mean() > 0.5:
        backdrop = float(np.median(gray[opaque]))
    else:
        inside = ndimage.binary_erosion(opaque, iterations=2)
        ink = gray[inside] if inside.any() else gray[opaque]
        backdrop = 1.0 if ink.size == 0 or float(np.median(ink)) < 0.5 else 0.0
    return gray * alpha + backdrop * (1 - alpha)


# --- 3. background and ink -------------------------------------------------------------------

def shrink(image: Image.Image) -> tuple[Image.Image, int]:
    """Reduce an image larger than WORK_SIDE by an integer factor (area averaging, in Pillow's C
    code, before any float copy): a 40-megapixel photo costs what a 1-megapixel one does. Returns
    the image and the factor its coordinates were divided by."""
    factor = -(-max(image.size) // WORK_SIDE)
    if factor <= 1:
        return image, 1
    if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):  # palette, 16-bit, CMYK, ...
        transparent = "transparency" in image.info or image.mode in ("PA", "RGBa", "La")
        image = converted(image, "I" if image.mode.startswith("I;16") else "RGBA" if transparent else "RGB")
    return image.reduce(factor), factor


def converted(image: Image.Image, mode: str) -> Image.Image:
    """`image` in `mode`; a colour mode Pillow opens but cannot convert (a CIELab or HSV TIFF) is
    one ImageError naming it."""
    try:
        return image.convert(mode)
    except ValueError as error:
        raise ImageError(f"unsupported colour mode {image.mode} ({error}): expected greyscale, RGB, "
                         "palette or CMYK") from None


def to_ink(gray: np.ndarray) -> np.ndarray | None:
    """Ink as float32 in [0, 1] (1 = the strongest ink, 0 = the background), or None if there
    is no ink (a blank image).

    - The background is what the border is made of (its median): a page's margin, a canvas's
      fill. Light background (paper) -> invert, so that the digit is light on dark like MNIST; so
      too a darker one (grey or coloured paper, a dim photo) whose ink is darker still than the
      paper is light: the ink lies further below the background than anything lies above it.
    - Contrast is stretched so that the background is 0 and the ink's core is 1: MNIST's strokes
      are saturated (median maximum 255), whatever pen or lighting the user had. The core is the
      median of the pixels above half the strongest one, so one hot pixel does not set it.
    - A photo's uneven light is made even first, a shadow across it lifted (`lit_evenly`).
    """
    gray = lit_evenly(gray)
    paper = float(np.median(border(gray)))
    if paper > 0.5 or paper - float(gray.min()) > float(gray.max()) - paper:
        gray = 1.0 - gray
    background = float(np.median(border(gray)))
    strongest = float(gray.max())
    if strongest - background < MIN_CONTRAST:
        return None
    core = float(np.median(gray[gray > background + 0.5 * (strongest - background)]))
    if core - background < MIN_CONTRAST:
        return None
    return np.clip((gray - background) / (core - background), 0, 1).astype(np.float32)


# --- 4. segmentation ------------------------------------------------------------------------

def segment(ink: np.ndarray) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """The digits in `ink`, left to right: each its box (row and column slices of `ink`) and
    the boolean mask of its ink within that box.

    Connected components of ink (8-connected, as strokes touch diagonally), then:
    - pieces stacked above one another are one digit (a 5 whose top bar is detached, a broken
      8): a number is written left to right, so two components that share most of their width
      belong to one digit, unless both are full height (two digits written too close, or a 1
      under an overhanging 7); and two that share no row, one wholly above the other, are one
      digit if they share a third of the narrower one's width, whatever their heights (a 5's
      lifted top bar, drawn to the right of its body and as wide);
    - a short piece at least a third as wide as a digit, starting over its columns at its top, is
      that digit's (a 5's top bar written apart, hanging to the right: as short as a hyphen, it
      was dropped and the body read as a 3 or a 1);
    - specks are dropped: groups much smaller than the largest digit (dust, JPEG noise, a
      decimal point), or much shorter (a hyphen);
    - so are blobs, whose stroke is about as thick as they are long: a dot, a tap on the page, a
      blot."""
    labels, slices, areas, keep = marks_in(ink > INK_LEVEL)
    if not keep:   # no ink, or specks only: no digit
        return []
    if len(keep) > MAX_PIECES:   # a dotted page, a photo of gravel: not a number, and grouping them takes minutes
        raise ImageError(f"too many separate marks in the image ({len(keep)}; a number has at most {MAX_PIECES}): "
                         f"crop it to the digits")
    boxes = {i: (slices[i][1].start, slices[i][0].start, slices[i][1].stop, slices[i][0].stop) for i in keep}
    groups = grouped(boxes, sorted(keep, key=lambda i: boxes[i][0]), max(b[3] - b[1] for b in boxes.values()))
    marks = []   # each group's box (x0, y0, x1, y1), mask and ink, blobs left out
    for group in groups:
        x0, y0, x1, y1 = functools.reduce(_union, (boxes[i] for i in group))
        mask = np.isin(labels[y0:y1, x0:x1], np.array(group) + 1)
        if stroke_width(mask) < BLOB * max(mask.shape):
            marks.append(((x0, y0, x1, y1), mask, sum(areas[i] for i in group)))
    if not marks:   # a dot, a tap: no digit
        return []
    largest, tallest = max(size for *_, size in marks), max(u[3] - u[1] for u, *_ in marks)
    digits = [(u, mask) for u, mask, size in marks if size >= 0.08 * largest and u[3] - u[1] >= 0.3 * tallest]
    digits.sort(key=lambda d: d[0][0] + d[0][2])
    return [((slice(y0, y1), slice(x0, x1)), mask) for (x0, y0, x1, y1), mask in digits]


def grouped(boxes: dict, order: list, tallest: int) -> list[list]:
    """The pieces `order` (left to right) in groups that are one digit each: again and again, the
    first two groups in that order that _same_digit finds one digit become one, the later joining
    the earlier, until no two do. Each pair is judged once for as long as neither group changes
    (a heap of the pairs found one digit, in order), not all pairs again after every merge."""
    rank = {piece: r for r, piece in enumerate(order)}
    members = {piece: [piece] for piece in order}
    union = {piece: boxes[piece] for piece in order}
    version = dict.fromkeys(order, 0)
    one_digit = []   # (rank of the earlier, rank of the later, earlier, later, their versions)

    def judge(a, b):
        if rank[a] > rank[b]:
            a, b = b, a
        if _same_digit(union[a], union[b], tallest):
            heapq.heappush(one_digit, (rank[a], rank[b], a, b, version[a], version[b]))

    for i, a in enumerate(order):
        for b in order[i + 1:]:
            judge(a, b)
    while one_digit:
        _, _, a, b, version_a, version_b = heapq.heappop(one_digit)
        if a not in members or b not in members or (version[a], version[b]) != (version_a, version_b):
            continue   # judged before one of them changed
        members[a] += members.pop(b)
        union[a] = _union(union[a], union.pop(b))
        version[a] += 1
        for other in members:
            if other != a:
                judge(a, other)
    return [members[piece] for piece in sorted(members, key=rank.get)]


def _union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _same_digit(a, b, tallest) -> bool:
    return _stacked(a, b, tallest) or _lifted_bar(a, b) or _lifted_bar(b, a)


def _stacked(a, b, tallest) -> bool:
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    narrower = min(a[2] - a[0], b[2] - b[0])
    if min(a[3], b[3]) <= max(a[1], b[1]):  # no row in common: one above the other
        return overlap >= narrower / 3
    both_tall = min(a[3] - a[1], b[3] - b[1]) >= 0.75 * tallest
    return overlap >= 0.5 * narrower and not both_tall


def _lifted_bar(bar, body) -> bool:
    """`bar` is `body`'s top bar, written apart: a 5's, whose bar starts over the body's top and
    hangs to its right (on MNIST's digits on paper, 5s only: benchmarks/notes/reader.md#a-5s-lifted-bar-hanging-to-the-right)."""
    bar_height, body_height = bar[3] - bar[1], body[3] - body[1]
    return (bar_height <= BAR_HEIGHT * body_height and bar[2] - bar[0] >= (body[2] - body[0]) / 3
            and body[0] <= bar[0] < body[2]
            and body[1] - BAR_ABOVE * body_height <= bar[3] and bar[1] <= body[1] + BAR_TOP * body_height)


# --- 5. MNIST's normalisation of one digit ---------------------------------------------------

def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: a stroke of length L and width w has area wL and about 2L
    boundary pixels."""
    area = mask.sum()
    boundary = area - ndimage.binary_erosion(mask).sum()
    return 2.0 * area / max(boundary, 1)


def thicken(crop: np.ndarray, stroke: float, scale: float) -> tuple[np.ndarray, int]:
    """`crop` with its strokes thickened to about MNIST's width once scaled by `scale`, if they
    would be much thinner (a fine pen on a large image), by a dilation with a disk; and the disk's
    radius, by which the crop has grown on every side (0: unchanged)."""
    if stroke * scale >= 0.6 * STROKE:
        return crop, 0
    radius = max(1, round((STROKE / scale - stroke) / 2))
    return dilate_disk(crop, radius), radius


def dilate_disk(values: np.ndarray, radius: int) -> np.ndarray:
    """`values` (>= 0) padded by `radius` on every side, then each pixel the maximum over the disk
    of `radius` around it: ndimage.grey_dilation with a disk footprint, computed as one 1-D maximum
    filter per distinct half-width of the disk's rows, each shifted to the rows that have it. About
    `radius` passes over the image instead of radius² per pixel: a piece of several touching
    digits in a large photo needs a radius of tens of pixels (the timings:
    benchmarks/notes/reader.md#the-cost-of-the-zooms-and-a-faster-thickening)."""
    padded = np.pad(values, radius)
    height = padded.shape[0]
    rows = np.pad(padded, ((radius, radius), (0, 0)))   # room for the vertical shifts
    result = np.zeros_like(padded)
    offsets = {}
    for dy in range(-radius, radius + 1):
        offsets.setdefault(math.isqrt(radius * radius - dy * dy), []).append(dy)
    for half, dys in offsets.items():
        widest = ndimage.maximum_filter1d(rows, 2 * half + 1, axis=1, mode="constant")
        for dy in dys:
            np.maximum(result, widest[radius + dy:radius + dy + height], out=result)
    return result


def scaled_ink(crop: np.ndarray, stroke: float, scale: float, longer_side: int | None = None):
    """The steps a digit (normalise_digit) and a line (line.py) share: `crop`'s strokes thickened
    to about MNIST's width at `scale`, cut to the ink's box, resized with anti-aliasing (Lanczos)
    by `scale` or, given `longer_side`, so that the box's longer side is that many pixels, and its
    strokes saturated (MNIST's are; a thin stroke averages to grey). Returns (the resized ink,
    its columns per crop column, the crop column of the ink's left edge)."""
    crop, radius = thicken(crop, stroke, scale)
    rows, cols = np.nonzero(crop > INK_LEVEL)
    crop = crop[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    if longer_side:
        scale = longer_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.clip(np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)), 0, 1)
    if small.max() > 0:
        small = small / small.max()
    return small, size[0] / w, cols.min() - radius   # the thickening padded the crop by radius


def normalise_digit(ink: np.ndarray, box: tuple[slice, slice], mask: np.ndarray) -> np.ndarray:
    """One digit -> 28x28 float32, as MNIST made its digits. `box` is the digit's slice of `ink`
    and `mask` its pixels within that box.

    - Crop to the bounding box of the digit's ink: margins and position carry no information.
      Only this digit's pixels (and their anti-aliased edges) are kept: a neighbour's stroke
      inside the box is not part of it.
    - Thin strokes are thickened to about MNIST's width: a fine pen on a large photo would
      otherwise shrink to faint one-pixel lines the model never saw.
    - Scale the longer side to 20 px, preserving the aspect ratio (a 1 stays narrow), with
      anti-aliasing (Lanczos; its support widens with the reduction), as MNIST did.
    - Put it in a 28x28 field so that its centre of mass is at the centre, as MNIST did (this,
      not the box's centre, is where MNIST's digits are).
    """
    pad = 2  # the anti-aliased edge around the ink's pixels
    ys = slice(max(0, box[0].start - pad), box[0].stop + pad)
    xs = slice(max(0, box[1].start - pad), box[1].stop + pad)
    crop = ink[ys, xs]
    own = np.zeros(crop.shape, bool)
    own[box[0].start - ys.start:box[0].stop - ys.start, box[1].start - xs.start:box[1].stop - xs.start] = mask
    crop = crop * ndimage.binary_dilation(own, iterations=pad)
    small, _, _ = scaled_ink(crop, stroke_width(own), BOX / max(mask.shape), longer_side=BOX)
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    cy, cx = ndimage.center_of_mass(small) if small.sum() > 0 else ((small.shape[0] - 1) / 2, (small.shape[1] - 1) / 2)
    top = int(np.clip(round(CENTRE - cy), 0, FIELD - small.shape[0]))
    left = int(np.clip(round(CENTRE - cx), 0, FIELD - small.shape[1]))
    field[top:top + small.shape[0], left:left + small.shape[1]] = small
    return field


# --- all of it -----------------------------------------------------------------------------

@dataclass
class Ink:
    """A decoded image's ink, found once for both readers of it: this module's digits and
    digit_reader/line.py's line."""
    values: np.ndarray           # to_ink's contrast, on the inked region and 2 px around it
    pieces: list                 # segment(values): each digit's box (slices of `values`) and mask
    origin: tuple[int, int]      # row and column of values[0, 0] in the shrunk image (turned by `turn`)
    factor: float                # the file's own pixels per pixel of the shrunk image
    turn: Turn | None = None     # a sheet on a desk set upright (digit_reader/sheet.py), in the file's pixels
    finer: "Ink | None" = None   # on a fine grid, the ink with the grid painted at FINER times the resolution (find_ink)


def find_ink(image: Image.Image, finer: bool = False) -> Ink | None:
    """Steps 2-4 on a decoded image; None if it holds no ink. With `finer`, on a fine grid
    (digit_reader/paper.py's FINE) the ink is found a second time, the grid painted at FINER
    times the page's resolution: `Ink.finer`, for the reader to read both."""
    scale = image.info.get("scale", 1.0)   # decode() has brought it to the working resolution
    image, factor = shrink(image)
    gray = to_gray(image)
    sheet = on_the_sheet(gray)   # a photo of a sheet lying on a desk: the sheet alone, upright
    if sheet is not None:
        gray = sheet.values
    ink = to_ink(gray)
    if ink is None:
        return None
    printed = printed_lines(ink)   # a ruled page's lines, a margin line: paper, not ink
    plain = without_lines(gray, ink, printed) if printed else None
    found = _inked_region(ink if plain is None else to_ink(plain), sheet, factor * scale)
    if found is not None and finer and plain is not None and fine_grid(printed):
        again = painted_finer(gray)
        found.finer = None if again is None else _inked_region(to_ink(again), sheet, factor * scale)
    return found


def painted_finer(gray: np.ndarray) -> np.ndarray | None:
    """`gray` with its printed lines painted over at FINER times its resolution, then brought
    back to it; None if no line is found there."""
    height, width = gray.shape
    big = np.asarray(Image.fromarray(gray).resize((FINER * width, FINER * height), Image.Resampling.BILINEAR))
    ink = to_ink(big)
    plain = None if ink is None else without_lines(big, ink)
    return None if plain is None else np.asarray(Image.fromarray(plain).reduce(FINER), dtype=np.float32)


def _inked_region(ink: np.ndarray | None, sheet, factor: float) -> Ink | None:
    """The Ink of `ink` (None if there is none), positions in the file's pixels (`factor` of
    its own a pixel here; on `sheet`, the sheet's cut and turn taken into account)."""
    if ink is None:
        return None
    # the rest works on the inked region only: a digit drawn on a canvas covers a tenth of it
    inked = ink > INK_LEVEL
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        return None
    y0, x0 = max(0, rows[0] - 2), max(0, cols[0] - 2)
    values = ink[y0:rows[-1] + 3, x0:cols[-1] + 3]
    if sheet is None:
        return Ink(values, segment(values), (int(y0), int(x0)), factor)
    origin, turn = (int(y0 + sheet.origin[0]), int(x0 + sheet.origin[1])), sheet.turn
    return Ink(values, segment(values), origin, factor, turn and turn.scaled(factor))


def digits_in(image: Image.Image) -> list[Digit]:
    """The digits of a decoded image, left to right ([] if it holds no ink), boxed in its pixels."""
    found = find_ink(image)
    digits = digits_of(found) if found else []
    return [replace(d, box=in_the_file(d.box, found.turn)) for d in digits]


def digits_of(found: Ink) -> list[Digit]:
    """Step 5 on each piece of ink, boxes in the file's own pixels (turned by `found.turn`, as the
    line's are: the reader turns them back once it has read both, digit_reader/numbers.py)."""
    y0, x0 = found.origin
    digits = []
    for box, mask in found.pieces:
        corners = (x0 + box[1].start, y0 + box[0].start, x0 + box[1].stop, y0 + box[0].stop)
        digits.append(Digit(normalise_digit(found.values, box, mask), tuple(int(round(v * found.factor)) for v in corners)))
    return digits
