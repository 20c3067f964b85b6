"""digit_reader/image.py: MNIST's normalisation of users' images, checked on synthetic images and
against MNIST itself (test digits made to look like a user's, then recovered and read)."""

import functools

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digit_reader.image import (BOX, CENTRE, FIELD, MAX_PIECES, MAX_PIXELS_PER_BYTE, RATIO_FROM_PIXELS, WORK_SIDE,
                                ImageError, _same_digit, _union, decode, digits_in, dilate_disk, grouped,
                                normalise_digit, open_image, segment, to_gray, to_ink)
from digit_reader.margin import REDUCE, block_means, even_light, in_shadow, lit_evenly, strokes_closed
from digit_reader.marks import marks_in
from digit_reader.reader import Reader
from tests.conftest import encode, png_header_only
from tools.user_images import users_version


def stroke_image(shape=(120, 200), boxes=((30, 20, 50, 100),), ink=0, paper=255) -> np.ndarray:
    """Rectangles of ink (x0, y0, x1, y1) on paper, as uint8."""
    image = np.full(shape, paper, np.uint8)
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = ink
    return image


# --- decoding ------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, this is text", "not a readable image: unknown format"),
    (png_header_only(0, 10), "invalid header, such as a size of 0 pixels"),
    (png_header_only(100_000, 1), "100000x1 pixels: too large"),
    (png_header_only(30_000, 30_000), "too large|bomb"),
])
def test_decode_refuses_bad_bytes_with_a_message_naming_the_problem(data, message):
    with pytest.raises(ImageError, match=message):
        decode(data)


def test_decode_refuses_a_truncated_image():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)))
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode(data[: len(data) // 2])


def test_decode_refuses_pillows_decompression_bombs(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="bomb"):
        decode(encode(Image.new("L", (100, 100), 255)))


def test_a_page_of_dots_is_refused_from_its_header_with_its_pixels_per_byte(monkeypatch):
    from benchmarks.serve_load import hostile_page

    page = hostile_page()
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("a pixel was decoded"))
    with pytest.raises(ImageError, match=rf"8000x4900 pixels in {len(page)} bytes, {39_200_000 / len(page):.0f} pixels per "
                                         rf"byte, over the limit of {MAX_PIXELS_PER_BYTE}"):
        open_image(page)


def test_a_mostly_blank_image_small_enough_to_be_cheap_is_read():
    side = int(RATIO_FROM_PIXELS ** 0.5) - 1
    blank = encode(Image.fromarray(stroke_image((side, side), ((600, 500, 700, 900),))))
    assert side * side / len(blank) > MAX_PIXELS_PER_BYTE
    assert len(digits_in(decode(blank))) == 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_large_photo_is_decoded_at_the_working_size_upright_with_boxes_in_its_own_pixels(fmt):
    # a 3000 x 2000 photo of grainy paper, stored on its side: EXIF orientation 6 turns it upright
    # (2000 x 3000), which moves the stroke at the stored image's top left to the top right
    paper = np.random.default_rng(0).integers(190, 256, (2000, 3000), np.uint8)
    paper[40:240, 100:1100] = 0  # 1000 x 200 stored, 200 x 1000 upright
    photo = Image.fromarray(paper).convert("RGB")
    exif = photo.getexif()
    exif[0x0112] = 6
    fastest = {"compress_level": 1} if fmt == "PNG" else {}   # the grain barely compresses: the default level takes seconds
    image = decode(encode(photo, fmt, exif=exif, **fastest))
    assert max(image.size) <= WORK_SIDE and image.size[1] > image.size[0]
    [digit] = digits_in(image)
    assert np.allclose(digit.box, (2000 - 240, 100, 2000 - 40, 1100), atol=2 * image.info["scale"])


# --- grey levels, background and ink --------------------------------------------------------

def test_to_gray_reads_16_bit_palette_and_transparent_images():
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    assert to_gray(Image.fromarray(ramp)).max() == pytest.approx(1.0)
    assert to_gray(Image.fromarray(ramp))[0, 1] == pytest.approx(1 / 255, abs=1e-4)
    twelve_bit = Image.fromarray((stroke_image().astype(np.uint16) * 16).astype(np.uint16))   # 0-4080 in a 16-bit file
    assert np.allclose(to_gray(twelve_bit), stroke_image() / 255)
    palette = Image.fromarray(stroke_image()).convert("P")
    assert np.allclose(to_gray(palette), stroke_image() / 255)
    # black strokes on transparent pixels (a canvas) and white strokes on transparent pixels:
    # either way the ink must stand out from what the transparency becomes
    for colour in (0, 255):
        rgba = np.zeros((120, 200, 4), np.uint8)
        rgba[20:100, 30:50] = (colour, colour, colour, 255)
        gray = to_gray(Image.fromarray(rgba))
        assert abs(gray[50, 40] - gray[5, 5]) == pytest.approx(1.0)


@pytest.mark.parametrize("ink, paper", [(0, 255), (255, 0), (60, 180),
                                        (0, 110), (10, 90)])   # grey paper, a dim photo: darker ink still
def test_to_ink_makes_the_digit_light_on_dark_whatever_the_paper(ink, paper):
    result = to_ink(stroke_image(ink=ink, paper=paper) / 255)
    assert result[50, 40] == pytest.approx(1.0) and result[5, 5] == pytest.approx(0.0)


def test_a_blank_or_faintly_noisy_page_has_no_digit():
    rng = np.random.default_rng(0)
    noisy = np.clip(0.9 + rng.normal(0, 0.02, (200, 300)), 0, 1).astype(np.float32)
    assert to_ink(np.ones((50, 50), np.float32)) is None
    assert to_ink(noisy) is None
    assert digits_in(Image.new("RGB", (300, 200), "white")) == []


# --- segmentation ---------------------------------------------------------------------------

def test_segment_splits_a_number_left_to_right_and_merges_the_pieces_of_one_digit():
    # a "5" whose top bar is detached, a speck of dust, then a "1"
    five = [(20, 10, 70, 22), (20, 32, 32, 60), (20, 60, 70, 72), (58, 72, 70, 100), (20, 100, 70, 110)]
    one = [(110, 10, 122, 110)]
    image = stroke_image(boxes=five[:1] + [(20, 30, 32, 60)] + five[2:] + one + [(160, 50, 162, 52)])
    found = segment(to_ink(image / 255))
    assert [(box[1].start, box[1].stop) for box, _ in found] == [(20, 70), (110, 122)]
    assert [mask.sum() for _, mask in found] == [50 * 12 + 12 * 30 + 50 * 12 + 12 * 28 + 50 * 10, 12 * 100]


def test_segment_joins_a_lifted_top_bar_to_the_body_below_it():
    # a "5" written in two strokes: bar and stem above, to the right of the bowl below, sharing
    # 15 of the bowl's 40 columns and none of its rows
    def five(shift):
        top = [(45 + shift, 30, 85 + shift, 42), (45 + shift, 42, 57 + shift, 60)]
        bowl = [(20, 62, 60, 74), (48, 74, 60, 118), (20, 118, 60, 130)]
        return segment(to_ink(stroke_image(shape=(160, 200), boxes=top + bowl) / 255))

    assert [(box[1].start, box[1].stop) for box, _ in five(0)] == [(20, 85)]
    # sharing only 8 columns (a fifth): two pieces, two digits
    assert [(box[1].start, box[1].stop) for box, _ in five(7)] == [(20, 60), (52, 92)]


@pytest.mark.parametrize("bar, columns", [
    ((50, 38, 95, 52), (20, 95)),   # starting over the body's right side, at its top: the 5's bar
    ((62, 38, 107, 52), (20, 60)),  # starting right of the body: no digit's, dropped as a hyphen
    ((50, 60, 95, 74), (20, 60)),   # across the body's upper middle, not its top: dropped
])
def test_segment_joins_a_short_bar_hanging_right_from_a_digits_top_and_nothing_else(bar, columns):
    # a "5" as MNIST's writers often wrote it: the body (stem, bowl) in one stroke, the top bar
    # apart, sharing the body's top rows and a quarter of its columns
    body = [(20, 40, 32, 75), (20, 75, 60, 87), (48, 87, 60, 118), (20, 118, 60, 130)]
    found = segment(to_ink(stroke_image(shape=(160, 200), boxes=body + [bar]) / 255))
    assert [(box[1].start, box[1].stop) for box, _ in found] == [columns]


def test_segment_keeps_two_full_height_digits_apart_even_if_their_boxes_overlap():
    # a 1 under the overhanging bar of a 7: the 1's box lies within the 7's
    image = stroke_image(boxes=[(10, 10, 100, 22), (68, 10, 80, 110), (88, 30, 96, 110)])
    assert [box[1].start for box, _ in segment(to_ink(image / 255))] == [10, 88]


def first_pair_merged(boxes: dict, order: list, tallest: int) -> list[list]:
    """The reference for grouped(): the rule as written, slowly: merge the first pair (in order)
    that is one digit, and look again from the start, until no pair is."""
    groups = [[piece] for piece in order]
    box_of = lambda group: functools.reduce(_union, (boxes[p] for p in group))  # noqa: E731
    while True:
        pair = next(((a, b) for a in range(len(groups)) for b in range(a + 1, len(groups))
                     if _same_digit(box_of(groups[a]), box_of(groups[b]), tallest)), None)
        if pair is None:
            return groups
        groups[pair[0]] += groups.pop(pair[1])


def test_grouping_merges_as_the_first_pair_rule_does():
    rng = np.random.default_rng(0)
    for _ in range(200):   # bars and blobs, some stacked, some overlapping, some side by side
        pieces = rng.integers(1, 40)
        x0, y0 = rng.integers(0, 150, pieces), rng.integers(0, 100, pieces)
        boxes = {i: (int(x0[i]), int(y0[i]), int(x0[i] + rng.integers(2, 30)), int(y0[i] + rng.integers(2, 60)))
                 for i in range(pieces)}
        order = sorted(boxes, key=lambda i: boxes[i][0])
        tallest = max(b[3] - b[1] for b in boxes.values())
        assert grouped(boxes, order, tallest) == first_pair_merged(boxes, order, tallest)


def test_a_dot_or_a_blot_is_no_digit_and_does_not_hide_the_digits_beside_it():
    def disk(d, at=(150, 150), size=(300, 300)):
        image = Image.new("L", size, 255)
        ImageDraw.Draw(image).ellipse([at[0] - d / 2, at[1] - d / 2, at[0] + d / 2, at[1] + d / 2], fill=0)
        return image

    for d in (10, 30, 60):   # a tap on the page, a dot, a blot: read as a sure 0 before
        assert digits_in(disk(d)) == []
    page = disk(90, at=(80, 150), size=(420, 300))   # a blot larger than the digit beside it
    ImageDraw.Draw(page).line([(250, 90), (330, 90), (270, 220)], fill=0, width=10)   # a 7
    [seven] = digits_in(page)
    assert seven.box[0] >= 240


def test_an_image_of_more_separate_marks_than_a_number_has_is_refused():
    side = 20   # 400 dots of 2 x 2 pixels
    ink = np.zeros((5 * side + 10, 5 * side + 10))
    for i in range(side):
        for j in range(side):
            ink[5 + 5 * i:7 + 5 * i, 5 + 5 * j:7 + 5 * j] = 1
    with pytest.raises(ImageError, match=rf"too many separate marks in the image \(400; a number has at most {MAX_PIECES}\)"):
        segment(ink)


def test_a_speck_is_a_mark_of_under_four_pixels_or_under_a_five_hundredth_of_the_largest():
    inked = np.zeros((100, 600), bool)
    inked[10:60, 10:510] = True                     # 25,000 pixels: specks are now under 50
    inked[70, 10] = inked[71, 11] = inked[72, 12] = True   # three pixels touching diagonally: one mark
    inked[80:87, 100:107] = True                    # 49 pixels
    inked[80:88, 200:208] = True                    # 64 pixels
    found = marks_in(inked)
    assert found.areas.tolist() == [25_000, 3, 49, 64] and found.kept == [0, 3]
    assert found.slices[3] == (slice(80, 88), slice(200, 208))
    alone = np.zeros((10, 10), bool)
    alone[2:4, 2:4] = True                           # the largest mark, but of four pixels: kept
    alone[7, 7] = True                               # one pixel: a speck
    assert marks_in(alone).kept == [0] and marks_in(np.zeros((5, 5), bool)).kept == []


# --- MNIST's normalisation ------------------------------------------------------------------

@pytest.mark.parametrize("radius", [1, 2, 5, 12])
def test_dilate_disk_is_scipys_grey_dilation_with_a_disk(radius):
    rng = np.random.default_rng(radius)
    values = (rng.random((40, 57)) * (rng.random((40, 57)) > 0.95)).astype(np.float32)
    disk = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) <= radius
    expected = ndimage.grey_dilation(np.pad(values, radius), footprint=disk)
    assert np.array_equal(dilate_disk(values, radius), expected)


def test_normalise_digit_fits_the_longer_side_to_20_px_and_centres_the_mass():
    image = stroke_image(shape=(300, 300), boxes=((200, 20, 230, 280),))  # a tall "1", off-centre
    ink = to_ink(image / 255)
    [(box, mask)] = segment(ink)
    field = normalise_digit(ink, box, mask)
    rows, cols = np.nonzero(field > 0.05)
    assert field.shape == (FIELD, FIELD) and field.max() == pytest.approx(1.0)
    assert rows.max() - rows.min() + 1 == BOX
    assert cols.max() - cols.min() + 1 <= 4  # the aspect ratio is kept: still narrow
    assert np.allclose(ndimage.center_of_mass(field), (CENTRE, CENTRE), atol=0.5)


def test_thin_strokes_are_thickened_to_mnists_width():
    image = stroke_image(shape=(600, 600), boxes=((100, 100, 500, 104), (100, 100, 104, 500)))  # an "L", 4 px pen
    ink = to_ink(image / 255)
    [(box, mask)] = segment(ink)
    field = normalise_digit(ink, box, mask)
    stroke = (field > 0.5).sum(axis=1)  # pixels per row: the vertical stroke's width
    assert np.median(stroke[stroke > 0]) >= 2  # not a faint one-pixel line


# --- against MNIST itself -------------------------------------------------------------------

@pytest.mark.bulk
def test_mnist_digits_made_to_look_like_a_users_are_recovered_and_read_as_well(reader_project, mnist_test_digits):
    images, labels = mnist_test_digits[0][:1000], mnist_test_digits[1][:1000]
    rng = np.random.default_rng(0)
    recovered = []
    for digit in images:
        found = digits_in(users_version(digit, rng))
        assert len(found) == 1
        recovered.append(found[0].image)
    recovered, originals = np.stack(recovered), images / 255.0
    correlation = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(recovered, originals)]
    assert np.median(correlation) > 0.95 and np.percentile(correlation, 10) > 0.85
    assert np.median(np.abs(recovered - originals).mean(axis=(1, 2))) < 0.04
    reader = Reader("cnn", reader_project)
    clean = (reader.probabilities(originals).argmax(1) == labels).mean()
    users = (reader.probabilities(recovered).argmax(1) == labels).mean()
    print(f"CNN accuracy on 1,000 MNIST test digits: clean {clean:.1%}, as a user's photo {users:.1%}")
    assert users >= clean - 0.005


def test_numbers_composed_of_mnist_digits_are_read_exactly(reader_project, mnist_test_digits, paper):
    """4-digit numbers written with varied spacing and baselines: split, then read in one batch
    (what Reader.read_image does per image; one batch keeps the test fast on a busy CPU)."""
    images, labels = mnist_test_digits
    rng = np.random.default_rng(1)
    trials, found, truths = 300, [], []
    for _ in range(trials):
        pick = rng.choice(len(labels), 4, replace=False)
        number = paper(images[pick], scale=rng.uniform(2, 4), gaps=rng.integers(1, 14, 3), shifts=rng.integers(0, 10, 4))
        found.append(digits_in(number))
        truths.append("".join(map(str, labels[pick])))
    assert sum(len(digits) == 4 for digits in found) >= 0.99 * trials  # segmentation alone
    read = iter(Reader("cnn", reader_project).probabilities(np.stack([d.image for ds in found for d in ds])).argmax(1))
    exact = sum("".join(str(next(read)) for _ in digits) == truth for digits, truth in zip(found, truths))
    print(f"4-digit numbers of MNIST test digits read exactly: {exact}/{trials}")
    assert exact / trials >= 0.95


def test_a_page_lit_from_one_side_gives_its_digit_not_its_shadow():
    """Paper from 0.95 on the lamp's side to 0.35 on the far side, a faint "1" in the middle: the
    far margin is darker than the ink, and one threshold took the shadow for the digit."""
    height, width = 120, 200
    light = np.linspace(0.95, 0.35, width)[None, :].repeat(height, 0)
    ink = np.zeros((height, width))
    ink[30:90, 92:98] = 0.45                      # the pen takes 45% of the light away
    page = Image.fromarray(np.round(light * (1 - ink) * 255).astype(np.uint8))
    digits = digits_in(page)
    assert len(digits) == 1
    x0, y0, x1, y1 = digits[0].box
    assert 88 <= x0 <= 92 and 98 <= x1 <= 102 and 26 <= y0 <= 30 and 90 <= y1 <= 94, digits[0].box


def shadowed_page(light: float, noise: float = 4.0) -> Image.Image:
    """A 300 x 480 photo of paper (0.8) under a straight-edged shadow over its left 40% at `light` of
    the paper's light, two "1"s written on it, one in the shadow, one in the light; a camera's noise."""
    height, width = 300, 480
    shade = np.where(np.arange(width) < 0.4 * width, light, 1.0)[None, :].repeat(height, 0)
    shade = ndimage.gaussian_filter(shade, 1.0)
    ink = np.zeros((height, width))
    ink[110:190, 90:97] = ink[110:190, 330:337] = 0.7       # the pen takes 70% of the light away
    page = 0.8 * shade * (1 - ink) + np.random.default_rng(0).normal(0, noise / 255, (height, width))
    return Image.fromarray(np.round(np.clip(page, 0, 1) * 255).astype(np.uint8))


@pytest.mark.parametrize("light", [0.45, 0.6, 0.75])
def test_a_hard_shadow_across_the_page_is_lifted_and_only_the_writing_is_ink(light):
    boxes = [d.box for d in digits_in(shadowed_page(light))]
    assert boxes == [pytest.approx(box, abs=4) for box in ((90, 110, 97, 190), (330, 110, 337, 190))]


def test_flattened_by_a_plane_a_deep_shadow_is_ink(monkeypatch):
    """What the lifting is for: with `even_light`'s plane alone, the shadowed paper is a blob of ink."""
    monkeypatch.setattr("digit_reader.image.lit_evenly", even_light)
    assert len(digits_in(shadowed_page(0.45))) != 2


def test_a_lamps_slope_is_no_shadow_and_keeps_its_plane():
    height, width = 300, 480
    slope = np.linspace(0.95, 0.45, width)[None, :].repeat(height, 0).astype(np.float32)
    slope[110:190, 200:207] *= 0.3
    assert not in_shadow(strokes_closed(block_means(slope, REDUCE))) and np.array_equal(lit_evenly(slope), even_light(slope))
    assert in_shadow(strokes_closed(block_means(np.asarray(shadowed_page(0.75), np.float32) / 255, REDUCE)))


def test_an_evenly_lit_image_is_left_as_it_is():
    gray = np.full((60, 80), 0.9, np.float32)
    gray[10:50, 30:40] = 0.1
    assert even_light(gray) is gray
