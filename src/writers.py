"""Digits by writers MNIST never had: procedural hands, drawn by a simulated pen.

MNIST's few hundred writers rarely used some shapes that many people use: a 1 with a flag and a
foot, a 7 with a crossbar, a closed 4, a 9 with a straight tail, a flat-topped 3. No other
handwritten-digit set can be installed here, so this module makes writers instead:

- `DESIGNS`: each digit's shapes, as pen strokes through control points in a box one unit high
  (x to the right, y down). A stroke is a list of pieces, each a smooth curve through its points;
  pieces meet at sharp corners.
- `Writer`: one person's hand, drawn from a seed: which design of each digit they use, their slant,
  width, habitual distortion of each shape, pen (a thin pen to a thick marker), pressure, tremor,
  ink and size. Every digit they write is that shape again, with a little new wobble.
- `write`: a line of digits by one writer, spaced or touching, as dark ink on light paper (a
  PIL image); `ruled` puts it on ruled paper, `on_a_desk` lays the page askew on a desk, and
  `photographed` makes the page look like a phone photo of it.

Writers are split by seed (`SPLITS`): a writer of the training split never appears in the
validation or the test split, so a model trained on some writers is measured on others.
"""
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

# Each design: (name, weight among the digit's designs, strokes). A stroke: pieces; a piece:
# points it passes through, with ("closed", points) for a loop that ends where it began.
DESIGNS = {
    0: [("oval", 3, [[[(0.30, 0.00), (0.07, 0.25), (0.07, 0.75), (0.30, 1.00), (0.53, 0.75), (0.53, 0.25), (0.32, 0.00)]]]),
        ("round", 1, [[("closed", [(0.32, 0.0), (0.05, 0.3), (0.12, 0.88), (0.42, 0.97), (0.62, 0.55), (0.52, 0.12)])]]),
        ("slashed", 1, [[[(0.30, 0.00), (0.07, 0.25), (0.07, 0.75), (0.30, 1.00), (0.53, 0.75), (0.53, 0.25), (0.32, 0.00)]],
                        [[(0.55, 0.05), (0.05, 0.95)]]])],
    1: [("stick", 3, [[[(0.30, 0.00), (0.27, 1.00)]]]),
        ("flag", 3, [[[(0.06, 0.28), (0.30, 0.00)], [(0.30, 0.00), (0.27, 1.00)]]]),
        ("flag and foot", 2, [[[(0.06, 0.28), (0.30, 0.00)], [(0.30, 0.00), (0.27, 1.00)]],
                              [[(0.05, 1.00), (0.50, 1.00)]]])],
    2: [("curl", 3, [[[(0.05, 0.25), (0.28, 0.00), (0.53, 0.22), (0.40, 0.55), (0.04, 1.00)], [(0.04, 1.00), (0.60, 0.98)]]]),
        ("looped", 2, [[[(0.05, 0.25), (0.28, 0.00), (0.53, 0.22), (0.38, 0.58), (0.10, 0.93)],
                        [(0.10, 0.93), (0.22, 0.82), (0.18, 0.98), (0.38, 1.00), (0.62, 0.97)]]]),
        ("z", 1, [[[(0.05, 0.10), (0.30, 0.00), (0.55, 0.12)], [(0.55, 0.12), (0.05, 1.00)], [(0.05, 1.00), (0.60, 1.00)]]])],
    3: [("round", 3, [[[(0.05, 0.15), (0.30, 0.00), (0.52, 0.20), (0.28, 0.47)],
                       [(0.28, 0.47), (0.55, 0.70), (0.30, 1.00), (0.03, 0.86)]]]),
        ("flat top", 2, [[[(0.05, 0.00), (0.56, 0.00)], [(0.56, 0.00), (0.24, 0.42)],
                          [(0.24, 0.42), (0.56, 0.64), (0.32, 1.00), (0.03, 0.85)]]])],
    4: [("open", 3, [[[(0.40, 0.00), (0.04, 0.66)], [(0.04, 0.66), (0.62, 0.66)]], [[(0.46, 0.28), (0.46, 1.00)]]]),
        ("closed", 3, [[[(0.46, 1.00), (0.46, 0.00)], [(0.46, 0.00), (0.03, 0.64)], [(0.03, 0.64), (0.64, 0.64)]]]),
        ("square", 1, [[[(0.08, 0.00), (0.06, 0.58)], [(0.06, 0.58), (0.62, 0.58)]], [[(0.48, 0.05), (0.48, 1.00)]]])],
    5: [("flag after", 3, [[[(0.13, 0.00), (0.09, 0.45)], [(0.09, 0.45), (0.36, 0.38), (0.56, 0.66), (0.30, 1.00), (0.03, 0.88)]],
                           [[(0.13, 0.00), (0.56, 0.00)]]]),
        ("one stroke", 2, [[[(0.58, 0.00), (0.13, 0.00)], [(0.13, 0.00), (0.09, 0.45)],
                            [(0.09, 0.45), (0.36, 0.38), (0.56, 0.66), (0.30, 1.00), (0.03, 0.88)]]])],
    6: [("curved", 3, [[[(0.50, 0.04), (0.24, 0.12), (0.07, 0.52), (0.16, 0.92), (0.36, 1.00), (0.54, 0.80),
                         (0.44, 0.56), (0.24, 0.55), (0.08, 0.72)]]]),
        ("straight", 2, [[[(0.48, 0.00), (0.10, 0.66)], [(0.10, 0.66), (0.22, 0.98), (0.45, 0.95), (0.52, 0.72),
                                                         (0.34, 0.55), (0.10, 0.66)]]])],
    7: [("plain", 3, [[[(0.03, 0.00), (0.58, 0.00)], [(0.58, 0.00), (0.22, 1.00)]]]),
        ("crossbar", 3, [[[(0.03, 0.00), (0.58, 0.00)], [(0.58, 0.00), (0.22, 1.00)]], [[(0.20, 0.50), (0.60, 0.50)]]]),
        ("serif", 1, [[[(0.03, 0.18), (0.03, 0.00)], [(0.03, 0.00), (0.58, 0.00)], [(0.58, 0.00), (0.40, 0.45), (0.30, 1.00)]]])],
    8: [("one stroke", 3, [[[(0.50, 0.10), (0.30, 0.00), (0.08, 0.20), (0.30, 0.46), (0.56, 0.74), (0.30, 1.00),
                             (0.04, 0.74), (0.30, 0.46), (0.52, 0.20), (0.44, 0.05)]]]),
        ("two loops", 2, [[("closed", [(0.30, 0.00), (0.10, 0.23), (0.30, 0.46), (0.50, 0.23)])],
                          [("closed", [(0.30, 0.46), (0.04, 0.73), (0.30, 1.00), (0.56, 0.73)])]])],
    9: [("curved tail", 3, [[[(0.52, 0.22), (0.30, 0.00), (0.07, 0.20), (0.26, 0.45), (0.52, 0.30)],
                             [(0.52, 0.30), (0.50, 0.70), (0.32, 1.00), (0.10, 0.92)]]]),
        ("straight tail", 3, [[[(0.52, 0.22), (0.30, 0.00), (0.07, 0.20), (0.26, 0.45), (0.52, 0.30)]],
                              [[(0.53, 0.04), (0.50, 1.00)]]])],
}

SPLITS = ("train", "val", "test")   # each split's writers come from their own seeds: no writer is in two


# --- one writer's hand ---------------------------------------------------------------------------

@dataclass
class Writer:
    designs: dict          # digit -> index into DESIGNS[digit]
    habit: dict            # digit -> this writer's fixed offsets of each control point (a list per stroke, per piece)
    slant: float           # x shift per unit of height above the baseline (positive: leaning right)
    width: float           # horizontal stretch of every design
    height: float          # the digits' height on the page, in pixels
    pen: float             # the pen's radius, as a fraction of the height
    pressure: float        # how much the pen's width varies along a stroke (0: not at all)
    tremor: float          # the hand's shake, as a fraction of the height
    ink: float             # how dark the ink is on white paper (1: black)
    wobble: float          # how much each digit differs from the writer's usual shape
    seed: int


PENS = {"thin pen": (0.018, 0.035), "pen": (0.035, 0.06), "marker": (0.07, 0.11)}   # radius / height
SIZES = {"small": (13.0, 22.0), "normal": (36.0, 90.0)}                          # digit height, pixels


def writer_of(split: str, index: int, pen: str | None = None, size: str | None = None) -> Writer:
    """The `index`-th writer of a split; the same split and index always give the same writer.
    `pen` (PENS) and `size` (SIZES) are drawn at random unless given."""
    seed = int(np.random.SeedSequence([SPLITS.index(split), index]).generate_state(1)[0])
    rng = np.random.default_rng(seed)
    designs = {d: int(rng.choice(len(options), p=weights(options))) for d, options in DESIGNS.items()}
    spread = rng.uniform(0.008, 0.035)
    habit = {d: jitter(DESIGNS[d][designs[d]][2], spread, rng) for d in DESIGNS}
    # drawn even when given, so that a writer's hand is the same whatever pen they are handed
    drawn_pen, drawn_size = str(rng.choice(list(PENS), p=[0.3, 0.5, 0.2])), str(rng.choice(list(SIZES), p=[0.2, 0.8]))
    pen, size = pen or drawn_pen, size or drawn_size
    return Writer(designs, habit, slant=rng.uniform(-0.25, 0.4), width=rng.uniform(0.75, 1.3),
                  height=rng.uniform(*SIZES[size]), pen=rng.uniform(*PENS[pen]), pressure=rng.uniform(0, 0.35),
                  tremor=rng.uniform(0, 0.012), ink=rng.uniform(0.55, 1.0), wobble=rng.uniform(0.004, 0.015),
                  seed=seed)


def weights(options) -> np.ndarray:
    w = np.array([weight for _, weight, _ in options], float)
    return w / w.sum()


def jitter(strokes, sigma: float, rng) -> list:
    """Offsets for every control point of `strokes`, normal with `sigma`; a closed piece's offsets too."""
    return [[rng.normal(0, sigma, (len(points_of(piece)), 2)) for piece in stroke] for stroke in strokes]


def points_of(piece) -> list:
    return piece[1] if piece[0] == "closed" else piece


# --- a digit's strokes as dense paths --------------------------------------------------------------

def catmull_rom(points: np.ndarray, closed: bool, per_segment: int = 16) -> np.ndarray:
    """A smooth curve through `points` (K x 2): uniform Catmull-Rom, the ends extended straight."""
    if len(points) == 2 and not closed:
        return np.linspace(points[0], points[1], per_segment + 1)
    if closed:
        padded = np.concatenate([points[-1:], points, points[:2]])
        segments = len(points)
    else:
        padded = np.concatenate([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
        segments = len(points) - 1
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(segments):
        p0, p1, p2, p3 = padded[i:i + 4]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    out.append(padded[segments + 1 if not closed else 1][None])
    return np.concatenate(out)


def digit_paths(writer: Writer, digit: int, rng) -> list[np.ndarray]:
    """The writer's `digit` this time: one dense path (P x 2, in heights, y down) per stroke."""
    strokes = DESIGNS[digit][writer.designs[digit]][2]
    paths = []
    for stroke, habit in zip(strokes, writer.habit[digit]):
        pieces = []
        for piece, offsets in zip(stroke, habit):
            points = np.asarray(points_of(piece), float) + offsets + rng.normal(0, writer.wobble, offsets.shape)
            pieces.append(catmull_rom(points, closed=piece[0] == "closed"))
        # pieces that met at a corner meet again after the jitter: each starts where the last ended
        for a, b in zip(pieces, pieces[1:]):
            b += np.linspace(a[-1] - b[0], 0, len(b))
        paths.append(np.concatenate(pieces))
    return paths


def shaped(paths: list[np.ndarray], writer: Writer, rng) -> list[np.ndarray]:
    """The writer's width and slant, a small rotation and size change of this one digit, and the
    hand's tremor: smooth shakes across the path, a few per digit height, not noise per point."""
    angle = np.deg2rad(rng.uniform(-4, 4))
    size = rng.uniform(0.94, 1.06)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    out = []
    for path in paths:
        p = path * [writer.width, 1.0]
        p[:, 0] += writer.slant * (1 - p[:, 1])
        p = (p - 0.5) @ rotation.T * size + 0.5
        if writer.tremor:
            along = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
            shake = sum(np.sin(2 * np.pi * along / rng.uniform(0.12, 0.4) + rng.uniform(0, 2 * np.pi))[:, None]
                        * rng.normal(0, 1, 2) for _ in range(2))
            p = p + writer.tremor * shake
        out.append(p)
    return out


# --- the pen on paper ---------------------------------------------------------------------------

SUPERSAMPLE = 4   # the pen draws at this many times the page's resolution, then the page is reduced


def ink_page(digit_paths_px: list[list[np.ndarray]], radius: float, writer: Writer, rng,
             size: tuple[int, int]) -> np.ndarray:
    """Ink coverage (float32, 0..1, H x W) of the given paths (in page pixels), drawn with dabs of
    a round pen of `radius` pixels whose width follows the writer's pressure and tapers at the ends."""
    width, height = size
    canvas = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    for paths in digit_paths_px:
        for path in paths:
            p = path * SUPERSAMPLE
            steps = np.linalg.norm(np.diff(p, axis=0), axis=1)
            along = np.concatenate([[0], np.cumsum(steps)])
            r = radius * SUPERSAMPLE
            spacing = max(0.5, 0.3 * r)
            at = np.arange(0, along[-1] + spacing, spacing)
            xs, ys = np.interp(at, along, p[:, 0]), np.interp(at, along, p[:, 1])
            fraction = at / max(along[-1], 1e-6)
            pressure = 1 + writer.pressure * np.sin(2 * np.pi * fraction * rng.uniform(0.5, 1.5) + rng.uniform(0, 6.3))
            taper = np.clip(np.minimum(fraction, 1 - fraction) / 0.08, 0.6, 1.0) if writer.pen < 0.07 else 1.0
            radii = np.maximum(r * pressure * taper, 0.6 * SUPERSAMPLE)
            for x, y, rr in zip(xs, ys, radii):
                draw.ellipse((x - rr, y - rr, x + rr, y + rr), fill=255)
    return np.asarray(canvas.reduce(SUPERSAMPLE), np.float32) / 255


# --- lines of digits ------------------------------------------------------------------------------

# How far apart neighbours are, in digit heights: "spaced", between their ink boxes; "touching",
# between their strokes' edges, negative where the strokes overlap, so that the ink always meets.
GAPS = {"spaced": (0.12, 0.45), "touching": (-0.1, -0.03)}


def write(writer: Writer, digits: str, spacing: str, rng) -> Image.Image:
    """`digits` in the writer's hand, left to right, their neighbours `spacing` (GAPS) apart,
    dark ink on light paper."""
    h = writer.height
    radius = max(writer.pen * h, 0.6)
    placed = []
    for d in digits:
        paths = [p * h for p in shaped(digit_paths(writer, int(d), rng), writer, rng)]
        paths = [p + [0, rng.normal(0, 0.03) * h] for p in paths]
        if placed:
            paths = beside(placed[-1], paths, rng.uniform(*GAPS[spacing]) * h, radius, spacing == "touching")
        placed.append(paths)
    every = np.concatenate([p for paths in placed for p in paths])
    margin = max(0.5 * h, 8.0)
    origin = every.min(0) - radius - margin
    size = np.ceil(every.max(0) + radius + margin - origin).astype(int)
    placed = [[p - origin for p in paths] for paths in placed]
    coverage = ink_page(placed, radius, writer, rng, (int(size[0]), int(size[1])))
    paper = rng.uniform(0.88, 1.0)
    page = paper * (1 - writer.ink * coverage)
    return Image.fromarray(np.round(page * 255).astype(np.uint8))


# Two strokes can overlap by at most their width: a touching gap is kept to this much of it. A
# thin pen's strokes (1/14 to 1/28 of the height wide) cannot overlap by GAPS' 0.1 heights, and
# the search then slid a quarter of the touching digits deep into their neighbours, overwriting them.
OVERLAP_MAX = 0.75
# A digit under its neighbour's ink along most of its path ("11" as two sticks side by side, a 1
# on a 4's stem) is one digit to anyone's eye: a touching digit keeps this much of its path at
# most under the other's ink, and stands just apart where it cannot touch otherwise.
COVERED_MAX = 0.5


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Between every point of path `a` and every point of path `b` (N x 2 each)."""
    return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))


def covered(a: np.ndarray, b: np.ndarray, radius: float) -> float:
    """The larger share of either path's points that lie under the other's ink."""
    under = distances(a, b) < 2 * radius
    return float(max(under.any(0).mean(), under.any(1).mean()))


def beside(left: list[np.ndarray], right: list[np.ndarray], gap: float, radius: float, strokes: bool) -> list:
    """`right`'s paths moved along x to stand `gap` pixels after `left`'s: after its ink box, or
    (strokes) after its nearest stroke, the pens' widths counted (overlapping by at most
    OVERLAP_MAX of their width); a few steps, since moving sideways closes the nearest distance
    by at most the move; then, if one is under the other's ink along most of its path
    (COVERED_MAX), moved back to the right until it is not."""
    a, b = np.concatenate(left), np.concatenate(right)
    if not strokes:
        return [p + [a[:, 0].max() - b[:, 0].min() + 2 * radius + gap, 0] for p in right]
    gap = max(gap, -OVERLAP_MAX * 2 * radius)
    shift = a[:, 0].max() - b[:, 0].min() + 2 * radius
    for _ in range(8):
        nearest = distances(a, b + [shift, 0]).min() - 2 * radius
        if abs(nearest - gap) < 0.25:
            break
        shift -= nearest - gap
    while covered(a, b + [shift, 0], radius) > COVERED_MAX:
        shift += radius / 2
    return [p + [shift, 0] for p in right]


PHOTO_TILT = 3.0   # degrees either way: a photo of a page is taken about square to it


def photographed(image: Image.Image, rng) -> Image.Image:
    """A page as a phone photo of it: a wider view, uneven light, a slight tilt, out of focus,
    sensor noise, and JPEG compression."""
    pad = rng.integers(10, 60, 4)
    page = np.pad(np.asarray(image, np.float32) / 255, ((pad[0], pad[1]), (pad[2], pad[3])), mode="edge")
    height, width = page.shape
    direction = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = (np.cos(direction) * xs / width + np.sin(direction) * ys / height)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    light = rng.uniform(0.55, 0.8) + rng.uniform(0.1, 0.4) * ramp
    photo = Image.fromarray(np.round(np.clip(page * light, 0, 1) * 255).astype(np.uint8))
    photo = photo.rotate(rng.uniform(-PHOTO_TILT, PHOTO_TILT), resample=Image.Resampling.BICUBIC, expand=True,
                         fillcolor=int(np.median(np.asarray(photo))))
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    noisy = np.asarray(photo, np.float32) + rng.normal(0, rng.uniform(3, 10), (photo.height, photo.width))
    photo = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG", quality=int(rng.integers(35, 80)))
    return Image.open(io.BytesIO(jpeg.getvalue())).convert("L")


RULE_PITCH = (1.15, 1.5)       # between a ruled page's lines, in the writing's heights
RULE_DARKNESS = (0.25, 0.8)    # of the paper's light the print takes away: a notebook's pale blue to black
RULE_WIDTH = (0.8, 2.5)        # the print's width, pixels


def ruled(image: Image.Image, rng) -> Image.Image:
    """A page as written on ruled paper: more paper around the writing, lines printed across the
    whole page, the writing standing on one of them (a little above or through it), and on half
    the pages a margin line down it, left of the writing."""
    page, paper, rows, columns = _with_paper_around(image, rng)
    height = rows[-1] - rows[0] + 1
    pitch, darkness, width = rng.uniform(*RULE_PITCH) * height, rng.uniform(*RULE_DARKNESS), rng.uniform(*RULE_WIDTH)
    base = rows[-1] + rng.uniform(-0.05, 0.08) * height
    lines = _printed(page.shape[0], base % pitch, pitch, width)
    if rng.random() < 0.5:
        x = max(width + 1, columns[0] - rng.uniform(0.1, 0.4) * height)
        lines = np.maximum(lines, _printed(page.shape[1], x, page.shape[1], width, down=True))
    return _with_print(page, paper, darkness, lines)


SQUARES = ((0.5, 0.8), (0.9, 1.3))   # a square's side, in the writing's heights: writing two squares tall, or one


def squared(image: Image.Image, rng) -> Image.Image:
    """A page as written on squared paper (a maths exercise book): more paper around the writing,
    lines printed across and down the whole page, the writing standing on one of them (a little
    above or through it), its squares small (the writing two squares tall) or large (one)."""
    page, paper, rows, _ = _with_paper_around(image, rng)
    height = rows[-1] - rows[0] + 1
    pitch = rng.uniform(*SQUARES[rng.integers(len(SQUARES))]) * height
    darkness, width = rng.uniform(*RULE_DARKNESS), rng.uniform(*RULE_WIDTH)
    base, left = rows[-1] + rng.uniform(-0.05, 0.08) * height, rng.uniform(0, pitch)
    lines = np.maximum(_printed(page.shape[0], base % pitch, pitch, width),
                       _printed(page.shape[1], left, pitch, width, down=True))
    return _with_print(page, paper, darkness, lines)


def _with_paper_around(image: Image.Image, rng) -> tuple:
    """The page (float32, 1 = white) with 0.2-0.6 of its height more paper on each side; the
    paper's light; the rows and the columns that hold the writing."""
    page = np.asarray(image, np.float32) / 255
    paper = float(np.median(page))
    top, bottom, left, right = (rng.uniform(0.2, 0.6, 4) * page.shape[0]).astype(int)
    page = np.pad(page, ((top, bottom), (left, right)), constant_values=paper)
    return page, paper, np.flatnonzero((page < 0.6 * paper).any(1)), np.flatnonzero((page < 0.6 * paper).any(0))


def _printed(length: int, first: float, pitch: float, width: float, down: bool = False) -> np.ndarray:
    """Lines `width` pixels wide across a page `length` rows high (or, `down`, down a page `length`
    columns wide), at `first` and every `pitch` after it: each row's (column's) cover 0-1, as a
    column (row) vector. Whole lines only: a photo's margin repeats the edge rows."""
    at = np.arange(length, dtype=np.float32)
    lines = np.zeros_like(at)
    for position in np.arange(first, length, pitch):
        if width <= position <= length - 1 - width:
            lines = np.maximum(lines, np.clip(width / 2 + 0.5 - np.abs(at - position), 0, 1))
    return lines[None, :] if down else lines[:, None]


def _with_print(page: np.ndarray, paper: float, darkness: float, lines: np.ndarray) -> Image.Image:
    """The page with `lines` printed on it, `darkness` of the paper's light taken away, under the
    writing (the darker of the two wins)."""
    return Image.fromarray(np.round(np.minimum(page, paper * (1 - darkness * lines)) * 255).astype(np.uint8))


DESK_LIGHT = (0.15, 0.6)    # the desk's light, of the paper's: dark wood to a pale grey table
SHEET_SHARE = (0.2, 0.6)    # of the photo, the share the sheet covers
SHEET_TILT = 15.0           # degrees either way: a sheet lies as it was put down, not squared to the camera


def desk_surface(shape: tuple[int, int], paper: float, rng) -> np.ndarray:
    """A desk seen from above, `shape` pixels, DESK_LIGHT of the paper's light, with a wood-like
    grain: stripes along one direction and smooth blotches."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    direction = rng.uniform(0, np.pi)
    along = np.cos(direction) * xs + np.sin(direction) * ys
    grain = 0.5 + 0.5 * np.sin(along / rng.uniform(3, 12) + rng.uniform(0, 2 * np.pi))
    blotches = np.asarray(Image.fromarray(rng.normal(0, 1, (8, 8)).astype(np.float32)).resize(shape[::-1], Image.Resampling.BICUBIC))
    return np.clip(paper * rng.uniform(*DESK_LIGHT) * (1 + 0.12 * (grain - 0.5) + 0.08 * blotches), 0, 1)


def on_a_desk(image: Image.Image, rng) -> Image.Image:
    """A page as a sheet of paper lying on a desk, seen from above, before it is photographed:
    more paper around the writing, the sheet tilted and wholly inside the view, on a darker desk
    with a wood-like grain (stripes along one direction and smooth blotches)."""
    page = np.asarray(image, np.float32) / 255
    paper = float(np.median(page))
    margins = (rng.uniform(0.3, 1.2, 4) * page.shape[0]).astype(int)
    sheet = np.pad(page, ((margins[0], margins[1]), (margins[2], margins[3])), constant_values=paper)
    tilt = rng.uniform(-SHEET_TILT, SHEET_TILT)
    covered = Image.fromarray(np.ones(sheet.shape, np.float32)).rotate(tilt, Image.Resampling.BILINEAR, expand=True)
    sheet = Image.fromarray(sheet).rotate(tilt, Image.Resampling.BICUBIC, expand=True, fillcolor=paper)
    scale = np.sqrt(rng.uniform(*SHEET_SHARE))
    edge = 2 + int(0.02 * min(sheet.size) / scale)   # desk all round: `photographed` repeats the view's edges
    view = (max(int(sheet.height / scale), sheet.height + 2 * edge), max(int(sheet.width / scale), sheet.width + 2 * edge))
    top = rng.integers(edge, view[0] - sheet.height - edge + 1)
    left = rng.integers(edge, view[1] - sheet.width - edge + 1)
    photo = desk_surface(view, paper, rng)
    inside = np.asarray(covered, np.float32)
    placed = (slice(top, top + sheet.height), slice(left, left + sheet.width))
    photo[placed] = photo[placed] * (1 - inside) + np.asarray(sheet, np.float32) * inside
    return Image.fromarray(np.round(np.clip(photo, 0, 1) * 255).astype(np.uint8))


ASKEW = (5.0, 15.0)   # degrees, either way: past the photographed pages' 3, up to the reader's levelling's reach


def askew(image: Image.Image, rng) -> Image.Image:
    """A page whose writing runs uphill or downhill: turned ASKEW degrees one way or the other
    (written along a slope, or photographed with the phone held askew), the corners paper."""
    paper = int(np.median(np.asarray(image)))
    angle = rng.uniform(*ASKEW) * rng.choice([-1.0, 1.0])
    return image.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=paper)


SIDES = ("top", "bottom", "left", "right")
CORNERS = (("top",), ("bottom",), ("left",), ("right",), ("top", "left"), ("top", "right"), ("bottom", "left"),
           ("bottom", "right"))   # the desk in the photo: along one side, or two (the sheet's corner)


def at_a_corner(image: Image.Image, rng, corner: int | None = None) -> Image.Image:
    """A page as a close photo of a sheet lying on a desk: more paper around the writing, and the
    desk along one side of the view or two (the sheet's corner; CORNERS[corner], or one drawn), its
    edge up to 5 degrees askew, 0.15-0.6 as light as the paper with a grain, never over the writing;
    photographed, and cut to the view inside the photo's turn (whose corners `photographed` fills
    with paper)."""
    page = np.asarray(image, np.float32) / 255
    paper = float(np.median(page))
    margins = dict(zip(SIDES, (rng.uniform(0.5, 1.2, 4) * page.shape[0]).astype(int)))
    page = np.pad(page, ((margins["top"], margins["bottom"]), (margins["left"], margins["right"])), constant_values=paper)
    height, width = page.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    desk = np.zeros(page.shape, bool)
    for side in CORNERS[rng.integers(len(CORNERS)) if corner is None else corner]:
        depth, slope = rng.uniform(0.3, 0.7) * margins[side], np.tan(np.radians(rng.uniform(-5, 5)))
        across, along, extent = (ys, xs, height) if side in ("top", "bottom") else (xs, ys, width)
        inward = across if side in ("top", "left") else extent - 1 - across
        desk |= inward < depth + slope * (along - along.mean())
    surface = desk_surface(page.shape, paper, rng)
    return within_the_turn(photographed(Image.fromarray(np.round(np.where(desk, surface, page) * 255).astype(np.uint8)), rng))


DESK_SLIVER = (0.01, 0.04)   # of the view across, the desk's depth at the sheet's edge (at its narrowest)


def at_the_sheets_edge(image: Image.Image, rng) -> Image.Image:
    """A page as a photo whose view ends just past the sheet's edge: at_a_corner's photo with the
    desk along one side, the view then cut so that only a sliver of the desk is left, DESK_SLIVER of
    the view deep where it is narrowest (the sheet's edge up to 5 degrees askew)."""
    side = int(rng.integers(len(SIDES)))
    photo = np.asarray(at_a_corner(image, rng, CORNERS.index((SIDES[side],))), np.float32)
    turns = {"top": 1, "bottom": 3, "left": 0, "right": 2}[SIDES[side]]   # np.rot90 turns that bring the desk to the left
    view = np.rot90(photo, turns)
    paper, desk = float(np.median(view)), float(np.median(view[:, :3]))
    # the desk's depth in each row: where a row, smoothed, first reaches halfway to the paper's light
    rows = ndimage.uniform_filter1d(view, 5, axis=1) >= (paper + desk) / 2
    depth = int(np.percentile(rows.argmax(axis=1), 5))
    keep = max(1, round(rng.uniform(*DESK_SLIVER) * view.shape[1]))
    view = view[:, max(0, depth - keep):]
    return Image.fromarray(np.rot90(view, -turns).astype(np.uint8))


def within_the_turn(photo: Image.Image) -> Image.Image:
    """A `photographed` page cut to the view inside its turn: the corners that the turn filled with
    one shade are gone, as a camera, which sees the scene go on, never makes them. (Where the page
    is paper at its edges the fill is that paper, and is left in.)"""
    inset = int(np.ceil(np.sin(np.radians(PHOTO_TILT)) * max(photo.size))) + 2
    return photo.crop((inset, inset, photo.width - inset, photo.height - inset))


def hard_shadow(page: np.ndarray, share: float, light: float, rng) -> np.ndarray:
    """A page (float32, 1 = white) under a straight-edged shadow, a phone's or a hand's: a half-plane
    of random direction over `share` of it, `light` of the light elsewhere, its edge blurred 0.5-3 px."""
    height, width = page.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    along = np.cos(direction) * xs / width + np.sin(direction) * ys / height
    inside = Image.fromarray(((along >= np.quantile(along, 1 - share)) * 255).astype(np.uint8))
    inside = np.asarray(inside.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3))), np.float32) / 255
    return page * (1 - (1 - light) * inside)
