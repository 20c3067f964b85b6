"""The image's margin: what the paper is made of, and the light a photo put on it.

A margin is the paper around the writing: its median is the paper's shade (digit_reader/image.py's
`to_ink`), and a plane fitted to it is the light of a photo lit from one side (`even_light`).
"""
import numpy as np

UNEVEN_LIGHT = 0.08        # a margin this uneven (5th to 95th percentile) is a photo's light, flattened first


def frame_width(shape) -> int:
    """A margin's width: 2% of the shorter side."""
    return max(1, round(0.02 * min(shape)))


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
    low, high = np.percentile(frame, [5, 95])
    if high - low <= UNEVEN_LIGHT:
        return gray
    t = frame_width(gray.shape)
    in_frame = np.zeros(gray.shape, bool)
    in_frame[:t] = in_frame[-t:] = in_frame[:, :t] = in_frame[:, -t:] = True
    return np.clip(gray - plane_through(gray, in_frame) + np.median(frame), 0, 1).astype(np.float32)


def plane_through(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The plane fitted (least squares) to `values` at the pixels `where`, over the whole image:
    the light a photo put on the paper those pixels show."""
    h, w = values.shape
    ys, xs = np.nonzero(where)
    (a, b, c), *_ = np.linalg.lstsq(np.stack([np.ones(ys.size), xs / w, ys / h], 1), values[ys, xs], rcond=None)
    return a + b * (np.arange(w) / w)[None, :] + c * (np.arange(h) / h)[:, None]
