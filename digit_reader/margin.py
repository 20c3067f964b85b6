"""The image's margin: what the paper is made of, and the light a photo put on it.

A margin is the paper around the writing: its median is the paper's shade (digit_reader/image.py's
`to_ink`), and a plane fitted to it is the light of a photo lit from one side (`even_light`). A
hard shadow across the page (a phone's, a hand's) is no plane: there the paper's own light is
estimated, place by place, and the shadow lifted (`lit_evenly`). The evidence for each setting:
benchmarks/notes/reader.md#2026-12-05-thirtieth-session-a-shadows-light-lifted.
"""
import numpy as np
from PIL import Image
from scipy import ndimage

UNEVEN_LIGHT = 0.08        # a margin this uneven (5th to 95th percentile) is a photo's light, flattened first
REDUCE = 4                 # the paper's light is estimated on a copy this many times smaller: the noise averaged away
CLOSE = 0.06               # of that copy's shorter side: a grey closing this wide takes the strokes away, keeps a shadow's edge
SMOOTH = 9                 # pixels of that copy: a median over them smooths the closing's noise, keeps the edge
SHADOW = 0.04              # of the lit paper's light: a fifth of the image this much darker than a plane through the
                           # paper's light is a shadow (every image of the writers' sets but 7 desk corners stays under)
SHADOW_AT_EDGE = 0.02      # and a fifth of the image's outer fifth this much darker: a shadow falls across the page
                           # from beyond it, where a marker's strokes too wide to close away lie inside it


def frame_width(shape) -> int:
    """A margin's width: 2% of the shorter side."""
    return max(1, round(0.02 * min(shape)))


def frame_of(shape, width: int) -> np.ndarray:
    """The pixels within `width` of the image's sides, as a mask."""
    mask = np.zeros(shape, bool)
    mask[:width] = mask[-width:] = mask[:, :width] = mask[:, -width:] = True
    return mask


def border(values: np.ndarray) -> np.ndarray:
    """The pixels of a frame frame_width() wide: what a margin is made of."""
    t = frame_width(values.shape)
    return np.concatenate([values[:t].ravel(), values[-t:].ravel(), values[:, :t].ravel(), values[:, -t:].ravel()])


def even_light(gray: np.ndarray) -> np.ndarray:
    """A photo lit from one side, its light made even: a plane fitted to the margin (which is paper,
    not ink) is taken out, keeping the margin's median. Under a lamp, the far side of a page can be
    darker than faint ink near it, and one threshold then took a shadowed edge for the digits
    (benchmarks/notes/reader.md#a-page-lit-from-one-side). An even margin (a canvas, a scan) is
    left as it is."""
    frame = border(gray)
    return gray if evenly_lit(frame) else plane_taken_out(gray, frame)


def evenly_lit(frame: np.ndarray) -> bool:
    """Whether a margin's pixels (`border`) are within UNEVEN_LIGHT of each other (5th to 95th percentile)."""
    low, high = np.percentile(frame, [5, 95])
    return high - low <= UNEVEN_LIGHT


def plane_taken_out(gray: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """`gray` less the plane fitted to its margin, whose pixels are `frame`, keeping their median."""
    in_frame = frame_of(gray.shape, frame_width(gray.shape))
    return np.clip(gray - plane_through(gray, in_frame) + np.median(frame), 0, 1).astype(np.float32)


def plane_through(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The plane fitted (least squares) to `values` at the pixels `where`, over the whole image:
    the light a photo put on the paper those pixels show."""
    h, w = values.shape
    ys, xs = np.nonzero(where)
    (a, b, c), *_ = np.linalg.lstsq(np.stack([np.ones(ys.size), xs / w, ys / h], 1), values[ys, xs], rcond=None)
    return a + b * (np.arange(w) / w)[None, :] + c * (np.arange(h) / h)[:, None]


def lit_evenly(gray: np.ndarray) -> np.ndarray:
    """`even_light`, but under a hard shadow the paper's light estimated place by place and the
    image divided by it: brightened only, where the paper lies in shadow, to the lit paper's light.
    A shadow's edge is a step no plane fits: flattened by one, the shadowed paper stayed darker than
    the margin's median and was read as ink."""
    frame = border(gray)
    if evenly_lit(frame):
        return gray
    small = block_means(gray, REDUCE)
    closed = strokes_closed(small)
    if closed is None or not in_shadow(closed):
        return plane_taken_out(gray, frame)   # even_light's, the margin's percentiles not taken again
    # a median smooths the closing's noise and keeps the shadow's edge; the closing sits on the
    # noise's peaks, and its rise over the copy, taken off, leaves the paper's own light; a pixel's
    # erosion lets the dark side of the edge win where the copy is scaled back up
    light = ndimage.median_filter(closed, size=SMOOTH)
    light = ndimage.grey_erosion(light - float(np.median(closed - small)), size=(3, 3))
    full = np.asarray(Image.fromarray(light.astype(np.float32)).resize(gray.shape[::-1], Image.Resampling.BILINEAR))
    gain = np.maximum(1.0, float(np.percentile(light, 90)) / np.maximum(full, 1e-3))
    return np.clip(gray * gain, 0, 1).astype(np.float32)


def block_means(gray: np.ndarray, factor: int) -> np.ndarray:
    """`gray` `factor` times smaller, each pixel the mean of its block (the last rows and columns
    that do not fill a block left out)."""
    h, w = gray.shape[0] // factor * factor, gray.shape[1] // factor * factor
    return gray[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def strokes_closed(small: np.ndarray) -> np.ndarray | None:
    """The reduced copy's paper, its strokes closed away (a grey closing CLOSE wide); None for an
    image too small to tell."""
    if min(small.shape) < SMOOTH:
        return None
    size = max(3, round(CLOSE * min(small.shape)))
    return ndimage.grey_closing(small, size=(size, size))


def in_shadow(light: np.ndarray) -> bool:
    """A fifth of the paper's light lies SHADOW below a plane through all of it, and a fifth of its
    outer fifth SHADOW_AT_EDGE below (of the lit paper's light, its 90th percentile): a step of
    light that comes in from the image's edge, not a lamp's slope."""
    below = light - plane_through(light, np.ones(light.shape, bool))
    lit = float(np.percentile(light, 90))
    edge = frame_of(light.shape, max(1, round(0.2 * min(light.shape))))
    return (-float(np.percentile(below, 20)) > SHADOW * lit
            and -float(np.percentile(below[edge], 20)) > SHADOW_AT_EDGE * lit)
