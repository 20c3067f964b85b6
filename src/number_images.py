"""Numbers written from MNIST digits: lines of 1 to 8 digits that touch, overlap or stand apart.

Used by training (MNIST's training split, augmented, drawn fresh every step) and by evaluation
(the validation and test splits, unaugmented, drawn once from a fixed seed), so that both see
numbers made the same way.

Geometry, at MNIST's scale (28 px digit field, about 20 px of ink height): the `spacing` between
two neighbouring digits is the number of blank columns between their ink boxes; a negative
spacing is an overlap of that many columns. The test kinds, as the issue defines them:

- touching: overlap of 0-4 px (spacing -4..0), as people write;
- overlap: heavy overlap of 5-8 px (spacing -8..-5);
- separated: gaps of 2-8 px.

An overlap is at most half the narrower digit's ink width: a "1" is 3-6 px wide, and an 8 px
overlap would put it inside its neighbour's box or past its far side, which no one writes.

Training digits are augmented to look like other people's handwriting (size, rotation, slant,
baseline, elastic wobble, stroke thickness, blur), and neighbours standing apart are sometimes
joined by a pen stroke, as in a number written without lifting the pen.

A line is white ink on black, uint8, 28 rows high; digits are composited by the brighter pixel,
so that crossing strokes stay ink. Lines of a batch are padded on the right with background to a
common width, a multiple of `WIDTH_STEP` (the line model's downsampling).
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

HEIGHT = 28
MARGIN = 4                 # background columns before the first and after the last digit's ink
INK = 16                   # uint8: fainter pixels are cleared, so that an ink box is unambiguous
WIDTH_STEP = 4
KINDS = {"touching": (-4, 0), "overlap": (-8, -5), "separated": (2, 8)}
TEST_LENGTH = 4            # the test numbers of each kind (kind_sets) have 4 digits, as the targets


@dataclass
class Numbers:
    images: torch.Tensor           # N x 28 x W uint8, white ink on black, right-padded
    labels: list[str]              # the digits of each line
    widths: torch.Tensor           # N: the columns each line really uses (the rest is padding)
    ink: list[list[tuple[int, int]]]   # per line, per digit: its ink columns [x0, x1)
    offsets: list[int] = field(default_factory=list)   # per digit, in order: its 28-column tile's first column

    def __len__(self):
        return len(self.labels)


def ink_columns(digits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, end) ink column of each N x 28 x 28 digit: [first, end). A blank digit gets (0, 1)."""
    has_ink = digits.amax(1) >= INK
    width = digits.shape[-1]
    columns = torch.arange(width)
    first = torch.where(has_ink, columns, width).amin(1)
    end = torch.where(has_ink, columns + 1, 0).amax(1)
    blank = end == 0
    return first.masked_fill(blank, 0), end.masked_fill(blank, 1)


def compose(digits: torch.Tensor, lengths: list[int], spacings: torch.Tensor) -> Numbers:
    """Write `digits` (uint8 D x 28 x 28, with sum(lengths) == D, in reading order) as lines of
    `lengths[i]` digits each; `spacings` (D - len(lengths) values, in order) separates the ink
    boxes of each line's neighbouring digits, an overlap limited to half the narrower digit's
    width. Labels are left empty: the caller knows them."""
    digits = digits.masked_fill(digits < INK, 0)
    first, end = ink_columns(digits)
    # plain ints for the per-digit loop below: a tensor indexed element by element is slow
    first, inked = first.tolist(), (end - first).tolist()
    offsets, ink, widths = [], [], []
    gaps = iter(spacings.tolist())
    index = 0
    for length in lengths:
        left, line_ink = MARGIN, []
        for j in range(length):
            if j:
                left += max(next(gaps), -(min(inked[index - 1], inked[index]) // 2))
            x0 = left
            offsets.append(x0 - first[index])  # where the 28-column tile starts
            left = x0 + inked[index]
            line_ink.append((x0, left))
            index += 1
        ink.append(line_ink)
        widths.append(max(x1 for _, x1 in line_ink) + MARGIN)
    width = WIDTH_STEP * math.ceil(max(widths) / WIDTH_STEP)
    # One scatter for the whole batch: each tile's pixels go to (line, row, offset + column), the
    # canvas widened by a tile on both sides so that blank tile columns never fall off it.
    line_of = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    canvas_width = width + 2 * HEIGHT
    cols = torch.tensor(offsets)[:, None] + HEIGHT + torch.arange(HEIGHT)            # D x 28
    flat = (line_of[:, None, None] * HEIGHT + torch.arange(HEIGHT)[None, :, None]) * canvas_width + cols[:, None, :]
    canvas = torch.zeros(len(lengths) * HEIGHT * canvas_width, dtype=torch.uint8)
    canvas.scatter_reduce_(0, flat.flatten(), digits.flatten(), "amax")
    images = canvas.view(len(lengths), HEIGHT, canvas_width)[:, :, HEIGHT:HEIGHT + width].contiguous()
    return Numbers(images, [""] * len(lengths), torch.tensor(widths), ink, offsets)


def concatenate(parts: list[Numbers]) -> Numbers:
    """One set of all the lines of `parts`, padded to the widest."""
    width = max(p.images.shape[2] for p in parts)
    return Numbers(torch.cat([F.pad(p.images, (0, width - p.images.shape[2])) for p in parts]),
                   [label for p in parts for label in p.labels], torch.cat([p.widths for p in parts]),
                   [ink for p in parts for ink in p.ink])


def draw_spacings(kinds: list[str], lengths: list[int], generator: torch.Generator) -> torch.Tensor:
    """One spacing per neighbouring pair, uniform in the range of its line's kind."""
    ranges = torch.tensor([KINDS[k] for k, n in zip(kinds, lengths) for _ in range(n - 1)]).view(-1, 2)
    return uniform_int(ranges[:, 0], ranges[:, 1], generator)


def uniform_int(low: torch.Tensor, high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Integers uniform in [low, high], elementwise."""
    return low + (torch.rand(low.shape, generator=generator) * (high - low + 1)).long().clamp(max=high - low)


def write_numbers(images: torch.Tensor, labels: torch.Tensor, lengths: list[int], spacings: torch.Tensor,
                  generator: torch.Generator, augment: dict | None = None) -> Numbers:
    """Lines of `lengths[i]` digits drawn at random from a split (`images`, `labels`)."""
    chosen = torch.randint(0, len(labels), (sum(lengths),), generator=generator)
    digits = images[chosen]
    if augment:
        digits = augment_digits(digits, augment, generator)
    numbers = compose(digits, lengths, spacings)
    if augment and augment["join"]:
        join_neighbours(numbers, digits.masked_fill(digits < INK, 0), lengths, augment["join"], generator)
    text = "".join(map(str, labels[chosen].tolist()))
    starts = [0, *torch.tensor(lengths).cumsum(0).tolist()]
    numbers.labels = [text[a:b] for a, b in zip(starts, starts[1:])]
    return numbers


def fixed_numbers(images, labels, lengths: list[int], kinds: list[str], seed: int) -> Numbers:
    """A fixed set of unaugmented numbers: the same `seed` gives the same lines."""
    generator = torch.Generator().manual_seed(seed)
    return write_numbers(images, labels, lengths, draw_spacings(kinds, lengths, generator), generator)


def kind_sets(images, labels, cfg) -> dict:
    """{kind: 4-digit test numbers of that kind}; each kind from its own seed, so that no kind's
    numbers depend on another's."""
    return {kind: fixed_numbers(images, labels, [TEST_LENGTH] * cfg["per_kind"], [kind] * cfg["per_kind"], cfg["seed"] + i)
            for i, kind in enumerate(KINDS)}


def training_numbers(images, labels, batch_size: int, cfg: dict, generator: torch.Generator,
                     writer_lines: "LinePool | None" = None) -> Numbers:
    """A fresh batch for one training step: numbers of one length, drawn uniformly from
    cfg['lengths'], so that a batch is hardly padded; as many of them as make batch_size
    numbers of the mean length (fewer long numbers, more short ones: every step costs about the
    same). Each spacing is uniform in cfg['spacing'], every digit augmented as cfg['augment'] says.
    With `writer_lines` and cfg['writer_lines'] > 0, that fraction of the count again is added:
    lines by other writers, drawn from the pool."""
    low, high = cfg["lengths"]
    length = int(uniform_int(torch.tensor([low]), torch.tensor([high]), generator))
    count = max(1, round(batch_size * (low + high) / 2 / length))
    pairs = count * (length - 1)
    spacings = uniform_int(torch.full((pairs,), cfg["spacing"][0]), torch.full((pairs,), cfg["spacing"][1]), generator)
    numbers = write_numbers(images, labels, [length] * count, spacings, generator, cfg["augment"])
    if writer_lines is None or not cfg["writer_lines"]:
        return numbers
    # of the batch's length, so that a batch stays hardly padded
    return concatenate([numbers, writer_lines.draw(max(1, round(cfg["writer_lines"] * count)), length, generator)])


# --- lines by other writers (the stage writer_lines) ------------------------------------------

@dataclass
class LinePool:
    """Lines made by the reader from other writers' numbers (src/writer_lines.py), side by side."""
    pixels: torch.Tensor    # uint8 28 x (all lines' columns), white ink on black
    starts: torch.Tensor    # N + 1: line i is columns starts[i]:starts[i + 1]
    labels: list[str]
    by_length: dict = field(init=False)   # digits -> the indices of the lines that have that many

    def __post_init__(self):
        self.by_length = {}
        for i, label in enumerate(self.labels):
            self.by_length.setdefault(len(label), []).append(i)

    def __len__(self):
        return len(self.labels)

    def draw(self, count: int, length: int, generator: torch.Generator) -> Numbers:
        """`count` lines of `length` digits at random (of any length if the pool has none of
        that one), right-padded to a common width (a multiple of WIDTH_STEP)."""
        of_length = self.by_length.get(length) or list(range(len(self)))
        chosen = [of_length[i] for i in torch.randint(0, len(of_length), (count,), generator=generator).tolist()]
        widths = [int(self.starts[i + 1] - self.starts[i]) for i in chosen]
        width = WIDTH_STEP * math.ceil(max(widths) / WIDTH_STEP)
        images = torch.stack([F.pad(self.pixels[:, self.starts[i]:self.starts[i + 1]], (0, width - w))
                              for i, w in zip(chosen, widths)])
        return Numbers(images, [self.labels[i] for i in chosen], torch.tensor(widths), [[] for _ in chosen])


# --- augmentation: other people's handwriting -------------------------------------------------

def join_neighbours(numbers: Numbers, digits: torch.Tensor, lengths: list[int], probability: float,
                    generator: torch.Generator, samples: int = 24) -> None:
    """In place: join each pair of neighbouring digits that stand apart, with `probability`, by a
    2-pixel pen stroke from the first one's rightmost ink to the second one's leftmost, as a
    number written without lifting the pen. `numbers` is `compose`'s lines of `digits` (masked
    as `compose` masks them), whose ink columns and tiles' offsets place each stroke."""
    ink = [box for line in numbers.ink for box in line]   # per digit, in order: its ink columns on its line
    joins, starts = [], [0, *torch.tensor(lengths).cumsum(0).tolist()]
    chosen = (torch.rand(len(digits), generator=generator) < probability).tolist()
    for line, (a, b) in enumerate(zip(starts, starts[1:])):
        for k in range(a, b - 1):
            x0, x1 = ink[k][1] - 1, ink[k + 1][0]   # the last ink column of one, the first of the next
            if chosen[k] and x1 - x0 > 1:
                joins.append((line, k, x0 - numbers.offsets[k], x0, k + 1, x1 - numbers.offsets[k + 1], x1))
    if not joins:
        return
    line, k0, c0, x0, k1, c1, x1 = torch.tensor(joins).T
    y0, y1 = ink_rows(digits, k0, c0), ink_rows(digits, k1, c1)
    t = torch.linspace(0, 1, samples)
    ys = (y0[:, None] + t * (y1 - y0)[:, None]).round().long()
    xs = (x0[:, None] + t * (x1 - x0)[:, None]).round().long()
    height, width = numbers.images.shape[1:]
    flat = []
    for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1)):  # a 2 x 2 pen
        r, c = (ys + dy).clamp(0, height - 1), (xs + dx).clamp(0, width - 1)
        flat.append(((line.long()[:, None] * height + r) * width + c).flatten())
    numbers.images.view(-1).scatter_reduce_(0, torch.cat(flat), torch.full((len(flat) * flat[0].numel(),), 255, dtype=torch.uint8), "amax")


def ink_rows(digits: torch.Tensor, index: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """The mean row of the ink of digit index[i] in its column column[i]. Exact in float32 (sums
    of whole numbers under 2 ** 24), so the same in any order of summation."""
    weights = digits[index, :, column].float()
    rows = torch.arange(HEIGHT, dtype=torch.float32)
    return (weights * rows).sum(1) / weights.sum(1).clamp(min=1)


SHAPE_CHANGES = ("scale", "rotate", "slant", "baseline", "elastic", "thickness", "blur")   # augment's keys but `join`


def augment_digits(digits: torch.Tensor, cfg: dict, generator: torch.Generator) -> torch.Tensor:
    """Each uint8 28 x 28 digit with its own size, slant, rotation, baseline, elastic wobble,
    stroke thickness and blur, drawn uniformly within cfg's bounds; one grid_sample for all."""
    n = len(digits)

    def uniform(bound):
        return (2 * torch.rand(n, generator=generator) - 1) * bound

    zoom = 1 + uniform(cfg["scale"])
    angle = torch.deg2rad(uniform(cfg["rotate"]))
    shear = torch.tan(torch.deg2rad(uniform(cfg["slant"])))
    baseline = uniform(cfg["baseline"]) * 2 / HEIGHT          # pixels -> grid units
    if not any(cfg[key] for key in SHAPE_CHANGES):
        # the digits would come back as they are (the default): skip the resampling, but draw as
        # it draws (the thickness is the last draw), so that every line after is the same
        uniform(0)
        return digits
    x = digits.float().unsqueeze(1) / 255
    # The inverse map, output -> input: rotate, shear along x, scale, shift vertically.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin + shear / zoom, torch.zeros(n)], 1),
                         torch.stack([sin, cos, -baseline], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, HEIGHT, HEIGHT], align_corners=False)
    if cfg["elastic"]:
        grid = grid + elastic_field(n, cfg["elastic"], generator)
    x = F.grid_sample(x, grid, align_corners=False)
    x = change_thickness(x, uniform(cfg["thickness"]))
    if cfg["blur"]:
        x = blur(x, torch.rand(n, generator=generator) * cfg["blur"])
    return (x.squeeze(1) * 255).round().clamp(0, 255).to(torch.uint8)


def elastic_field(n: int, pixels: float, generator: torch.Generator) -> torch.Tensor:
    """Smooth random displacements of up to about `pixels` (Simard et al. 2003's elastic
    distortion): a coarse random field, upsampled, in grid units."""
    coarse = (2 * torch.rand(n, 2, 4, 4, generator=generator) - 1) * pixels * 2 / HEIGHT
    return F.interpolate(coarse, size=(HEIGHT, HEIGHT), mode="bilinear", align_corners=True).permute(0, 2, 3, 1)


def neighbourhood(x: torch.Tensor, reduce) -> torch.Tensor:
    """`reduce` (torch.maximum, torch.minimum or torch.add) over each pixel's 3 x 3 neighbourhood,
    as two passes of shifted slices: much cheaper on a CPU than a stride-1 pooling kernel. The
    border counts as background (0)."""
    for dim in (-1, -2):
        padded = F.pad(x, (1, 1, 0, 0) if dim == -1 else (0, 0, 1, 1))
        size = x.shape[dim]
        x = reduce(reduce(padded.narrow(dim, 0, size), padded.narrow(dim, 1, size)), padded.narrow(dim, 2, size))
    return x


def change_thickness(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Thicker strokes for amount > 0 (towards a 3x3 dilation), thinner for < 0 (towards an erosion)."""
    a = amount.view(-1, 1, 1, 1)
    target = torch.where(a >= 0, neighbourhood(x, torch.maximum), neighbourhood(x, torch.minimum))
    return x + a.abs() * (target - x)


def blur(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Mix each image with its 3x3 box blur by `amount` (0: sharp, 1: blurred), as a soft pen or
    an out-of-focus photo."""
    a = amount.view(-1, 1, 1, 1)
    return x + a * (neighbourhood(x, torch.add) / 9 - x)


def load_line_pool(path) -> LinePool:
    """The stage writer_lines' file (`weights_only`: tensors and strings, no code)."""
    return LinePool(**torch.load(path, weights_only=True))

