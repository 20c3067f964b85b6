"""The other writers (src/writers.py, src/writer_sets.py) and the stage that reads them
(src/evaluate_writers.py): writers split by seed, the styles MNIST lacks all present, spaced
digits standing apart and touching ones touching, and the stage's metrics in the tiny build."""
import json

import numpy as np
import pytest
from scipy import ndimage

from digit_reader.image import digits_in
from src.config import SEVERAL
from src.writer_sets import SETS, writer_index, writer_sets
from src.writers import (COVERED_MAX, DESIGNS, OVERLAP_MAX, SPLITS, SQUARES, beside, catmull_rom, covered, digit_paths,
                         distances, hard_shadow, shaped, squared, write, writer_of)


def test_a_curve_passes_through_its_points():
    points = np.array([[0.0, 0.0], [0.3, 0.5], [0.1, 1.0], [0.6, 0.8]])
    for closed in (False, True):
        curve = catmull_rom(points, closed, per_segment=8)
        for p in points:
            assert np.linalg.norm(curve - p, axis=1).min() < 1e-9
        assert np.allclose(curve[-1], points[0] if closed else points[-1])
    assert np.allclose(catmull_rom(points[:2], False, 4), [[0, 0], [0.075, 0.125], [0.15, 0.25], [0.225, 0.375], [0.3, 0.5]])


def test_writers_are_the_same_for_the_same_seed_and_never_shared_between_splits():
    same = [np.asarray(write(writer_of("test", 7), "0123456789", "spaced", np.random.default_rng(0))) for _ in range(2)]
    assert np.array_equal(*same)
    seeds = {split: {writer_of(split, i).seed for i in range(300)} for split in SPLITS}
    assert all(len(s) == 300 for s in seeds.values())
    assert not (seeds["train"] & seeds["val"] or seeds["train"] & seeds["test"] or seeds["val"] & seeds["test"])
    # handed a marker, a writer keeps their shapes
    marker = writer_of("test", 7, pen="marker")
    assert marker.designs == writer_of("test", 7).designs and marker.slant == writer_of("test", 7).slant


def test_a_set_is_the_same_pixels_every_time_and_a_larger_one_keeps_its_first_items():
    small, large = (writer_sets({"paper_touching": n}, "val", 5, 0)["paper_touching"] for n in (2, 3))
    assert [t for _, t in small] == [t for _, t in large[:2]]
    for (a, _), (b, _) in zip(small, large):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_sets_drawn_on_several_processes_are_the_sets_drawn_on_one():
    counts = {"single": 3, "paper_touching": 2, "paper_ruled": 4}
    shared, alone = writer_sets(counts, "val", 5, 0, processes=2), writer_sets(counts, "val", 5, 0, processes=1)
    for name, count in counts.items():
        assert len(shared[name]) == count and [t for _, t in shared[name]] == [t for _, t in alone[name]]
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for (a, _), (b, _) in zip(shared[name], alone[name]))


def test_single_digits_come_clean_and_photographed_and_the_older_sets_keep_their_seeds():
    from src.writer_sets import sets_of

    sets = sets_of({"seed": 0, "writers": 3, "single": 10, "per_set": 2}, "val")
    assert [len(sets[name]) for name in ("single", "paper_single", "spaced")] == [10, 10, 2]
    assert [d for _, d in sets["paper_single"]] == [d for _, d in sets["single"]] == list("0123456789")

    def paper(image):   # the image's first and last rows: paper, as the digit is drawn within a margin
        pixels = np.asarray(image.convert("L"), float)
        return np.concatenate([pixels[0], pixels[-1]])

    assert all(paper(clean).std() == 0 for clean, _ in sets["single"])             # plain paper
    assert all(paper(photo).std() > 0 for photo, _ in sets["paper_single"])        # lit, noisy, compressed
    # a set's seed is its place in SETS: a new set goes last, so that every earlier set keeps its images
    assert list(SETS)[:6] == ["single", "spaced", "touching", "paper_spaced", "paper_touching", "pair_thick"]


def test_the_test_sets_hold_every_design_of_every_digit():
    """The styles MNIST lacks (a 1 with a flag and a foot, a crossbar 7, a closed 4, a straight-tailed
    9, a flat-topped 3, ...) are each written by several of the test writers of params.yaml."""
    used = {(d, writer_of("test", writer_index("single", i, 100)).designs[d]) for i in range(1000) for d in [i % 10]}
    assert used == {(d, k) for d, designs in DESIGNS.items() for k in range(len(designs))}


def test_spaced_digits_stand_apart_and_touching_ones_touch():
    rng = np.random.default_rng(0)
    apart = touching = 0
    for i in range(40):
        writer = writer_of("val", i)
        # the reader's own segmentation finds each spaced digit on its own
        apart += len(digits_in(write(writer, "4179", "spaced", rng))) == 4
        # ... and touching ones as one piece of ink
        touching += len(digits_in(write(writer, "4179", "touching", rng))) == 1
    assert apart >= 38 and touching >= 38, (apart, touching)


def test_touching_digits_meet_without_overwriting_each_other():
    """Whatever the pen, neighbours' strokes meet and overlap by no more than OVERLAP_MAX of their
    width: a thin pen's digits once slid over each other, down to a blot."""
    for i in range(60):
        writer = writer_of("val", i, pen="thin pen")
        rng = np.random.default_rng(i)
        h, radius = writer.height, writer.pen * writer.height
        first, second = ([p * h for p in shaped(digit_paths(writer, int(d), rng), writer, rng)]
                         for d in rng.integers(0, 10, 2))
        placed = beside(first, second, -0.1 * h, radius, strokes=True)
        a, b = np.concatenate(first), np.concatenate(placed)
        nearest = distances(a, b).min()   # between the strokes' centres
        assert (1 - OVERLAP_MAX) * 2 * radius - 0.25 <= nearest < 2 * radius, (i, nearest / (2 * radius))


def test_touching_sticks_are_not_drawn_as_one():
    """Two 1s side by side cannot touch without lying under each other's ink along their whole
    length, which reads as one thick 1: they stand with at most COVERED_MAX of either under the other."""
    stick = [np.array([[0.0, y] for y in np.linspace(0, 40, 30)])]
    for radius in (1.0, 3.0):
        placed = beside(stick, stick, -4.0, radius, strokes=True)
        assert covered(stick[0], placed[0], radius) <= COVERED_MAX
        assert placed[0][0, 0] < 2 * radius + 0.5 * radius   # and no further apart than the last step


@pytest.mark.parametrize("pen", ["thin pen", "marker"])
def test_a_pen_draws_strokes_of_its_width(pen):
    """The stroke's width over the digit's height: twice the ink's distance to the paper, at its middle."""
    widths = []
    for i in range(10):
        writer = writer_of("val", i, pen=pen, size="normal")
        ink = np.asarray(write(writer, "1", "spaced", np.random.default_rng(i))) < 128
        widths.append(2 * np.percentile(ndimage.distance_transform_edt(ink)[ink], 95) / writer.height)
    low, high = {"thin pen": (0.025, 0.08), "marker": (0.13, 0.24)}[pen]
    assert low < np.median(widths) < high, widths


@pytest.mark.e2e
def test_the_writer_stages_make_their_lines_and_score_every_set_in_the_tiny_build(tiny_built):
    project, _ = tiny_built
    metrics = project.read_json("metrics/writers.json")
    assert set(metrics) == set(SETS)
    for scores in metrics.values():
        assert set(scores) == {"exact", "flagged", "wrong_unflagged", "pieces"}
        assert all(0 <= v <= 1 for v in scores.values())
        assert scores["wrong_unflagged"] <= 1 - scores["exact"]
    styles = project.read_json("metrics/writers/styles.json")
    assert sum(s["count"] for s in styles.values()) == project.params()["writers"]["single"]
    assert (project.path / "metrics/writers/misread.png").stat().st_size > 0
    assert "metrics/writers.json" in project.dvc("metrics", "show", "--json").stdout
    from src.number_images import load_line_pool

    pool = load_line_pool(project.path / "data/writers/lines.pt")   # the stage writer_lines' file
    assert 0.9 * project.params()["writer_lines"]["count"] <= len(pool) <= project.params()["writer_lines"]["count"]
    assert all(label.isdigit() for label in pool.labels) and pool.starts[-1] == pool.pixels.shape[1]


def test_the_readers_classifier_starts_from_cnn_and_learns_the_writers_digits_in_the_tiny_build(tiny_built):
    import torch

    project, _ = tiny_built
    digits = torch.load(project.path / "data/writers/digits.pt", weights_only=True)   # the stage writer_digits' file
    cfg = project.params()["writer_digits"]
    labels = digits["labels"].tolist()
    assert digits["images"].dtype == torch.uint8 and digits["images"].shape[1:] == (28, 28)
    assert 0.9 * cfg["count"] <= sum(label < 10 for label in labels) <= cfg["count"] and set(labels[:30]) == set(range(10))
    assert 0.7 * cfg["pairs"] <= labels.count(SEVERAL) <= cfg["pairs"] and labels[-1] == SEVERAL   # the pairs come last
    train_log = (project.path / "metrics/reader/train/metrics.json")
    metrics = project.read_json("metrics/reader.json")["test"]
    assert train_log.exists() and metrics["accuracy"] > 0.1 and 0 <= metrics["read_as_several"] <= metrics["errors"]
    assert "read_as_several" not in project.read_json("metrics/cnn.json")["test"]
    cnn, reader = (torch.load(project.path / f"models/{name}.pth", weights_only=True) for name in ("cnn", "reader"))
    assert cnn.keys() == reader.keys() and any(not torch.equal(cnn[k], reader[k]) for k in cnn)
    assert reader["classifier.bias"].shape == (11,)   # the digits' ten outputs, then several digits
    onnx = json.loads((project.path / "metrics/reader/onnx.json").read_text())
    assert onnx["output"].startswith("logits: float32 N x 11") and "several digits" in onnx["output"]


# --- digits by the training split's writers, for the reader's classifier (src/writer_digits.py) ---

def test_a_writer_digit_is_the_readers_digit_of_a_training_writers_drawing(monkeypatch):
    from src import parallel
    from src.writer_digits import writer_digit, writer_digits

    def same(a, b):
        return (a is None) == (b is None) and (a is None or (np.array_equal(a[0], b[0]) and a[1] == b[1]))

    cfg = {"seed": 0, "count": 20, "photographed": 0.3, "pairs": 6, "pairs_marker": 0.5}
    made = writer_digits(cfg, 1)
    assert all(same(a, b) for a, b in zip(made, [writer_digit(i, cfg) for i in range(26)]))   # every time, to the pixel
    assert all(same(a, b) for a, b in zip(made, writer_digits({**cfg, "pairs": 0}, 1)))   # the pairs come after
    kept = [(i, d) for i, d in enumerate(made) if d is not None]
    assert len(kept) >= 22 and sum(i >= 20 for i, _ in kept) >= 4
    for i, (image, label) in kept:
        assert image.dtype == np.uint8 and image.shape == (28, 28) and label == (i % 10 if i < 20 else SEVERAL)
        # MNIST's field: the ink's box 20 px on its longer side, centred by mass near (14, 14)
        rows, cols = np.nonzero(image > 50)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in range(17, 22)
        cy, cx = ndimage.center_of_mass(image.astype(float))
        assert abs(cy - 14) < 2 and abs(cx - 14) < 2
    # One process per core, as many as a machine has: seven chunks over three processes come back
    # the same digits, in order.
    monkeypatch.setattr(parallel, "CHUNK", 4)
    shared = writer_digits(cfg, 3)
    assert len(shared) == len(made) and all(same(a, b) for a, b in zip(made, shared))


# --- lines by the training split's writers, for the line model (src/writer_lines.py) ---

LINES_CFG = {"seed": 0, "count": 6, "touching": 0.5, "askew": 0.2, "photographed": 0.3, "lengths": [1, 8]}


def test_a_writer_line_is_the_readers_line_of_a_training_writers_number():
    from src.writer_lines import writer_line

    pixels, digits = writer_line(3, LINES_CFG)
    again, _ = writer_line(3, LINES_CFG)
    assert pixels.dtype == np.uint8 and pixels.shape[0] == 28 and np.array_equal(pixels, again)
    assert 1 <= len(digits) <= 8 and digits.isdigit()
    assert {len(writer_line(i, {**LINES_CFG, "lengths": [2, 3]})[1]) for i in range(8)} == {2, 3}   # numbers.images.lengths
    # as wide as its digits at MNIST's scale, with the reader's margins: 8-28 columns a digit
    assert 8 * len(digits) <= pixels.shape[1] <= 28 * len(digits) + 16


def ink_slope(pixels: np.ndarray) -> float:
    """Rows per column of a line's ink: the least-squares line through its inked pixels."""
    rows, cols = np.nonzero(pixels > 127)
    return float(np.polyfit(cols, rows, 1)[0])


def test_touching_lines_written_askew_reach_the_line_model_askew_and_the_other_lines_stay_as_they_were():
    from src.writer_lines import writer_line

    cfg = {**LINES_CFG, "touching": 1.0, "photographed": 0.0, "lengths": [4, 4]}
    level = [writer_line(i, {**cfg, "askew": 0.0}) for i in range(8)]
    turned = [writer_line(i, {**cfg, "askew": 1.0}) for i in range(8)]
    assert [d for _, d in turned] == [d for _, d in level]
    # touching digits are not set level by the reader (digit_reader/line.py's tilt): the turn stays
    # (the slope of level touching digits' ink is itself a few degrees, by their shapes: compared line by line)
    turns = [abs(np.degrees(np.arctan(ink_slope(t)) - np.arctan(ink_slope(p)))) for (t, _), (p, _) in zip(turned, level)]
    assert np.median(turns) > 5, turns
    # each line's turn is drawn apart from its own draws: a line not turned is the line as it was
    some = [writer_line(i, {**cfg, "askew": 0.5}) for i in range(8)]
    assert all(np.array_equal(p, lp) or np.array_equal(p, tp) for (p, _), (lp, _), (tp, _) in zip(some, level, turned))
    assert 0 < sum(np.array_equal(p, lp) for (p, _), (lp, _) in zip(some, level)) < 8


@pytest.mark.parametrize("stage", ["writer_lines", "writer_digits"])
def test_a_writer_stage_that_keeps_nothing_says_so_and_writes_nothing(stage, monkeypatch, tmp_path):
    import importlib

    from src.errors import PipelineError

    module = importlib.import_module(f"src.{stage}")
    monkeypatch.setattr(module, "load_params", lambda: {stage: {}, "numbers": {"images": {"lengths": [1, 8]}}})
    monkeypatch.setattr(module, stage, lambda cfg, processes: [None, None])
    monkeypatch.setattr(module, "OUT", tmp_path / "out.pt")
    with pytest.raises(PipelineError, match=f"{stage}: .* of the 2 "):
        module.main()
    assert not (tmp_path / "out.pt").exists()


def test_training_batches_take_their_share_of_writer_lines_and_nothing_without_it():
    import torch

    from src.number_images import LinePool, training_numbers

    rng = np.random.default_rng(0)
    widths = [12, 40, 33]
    pool = LinePool(torch.from_numpy(rng.integers(0, 255, (28, sum(widths)), dtype=np.uint8)),
                    torch.tensor([0, 12, 52, 85]), ["1", "234", "56"])   # one line of each length
    images, labels = torch.randint(0, 255, (50, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (50,))
    cfg = {"lengths": [2, 2], "spacing": [0, 4], "writer_lines": 0.25,
           "augment": {key: 0 for key in ("scale", "rotate", "slant", "baseline", "elastic", "thickness", "blur", "join")}}
    mixed = training_numbers(images, labels, 16, cfg, torch.Generator().manual_seed(0), pool)
    assert len(mixed) == 16 + 4 and mixed.images.shape[2] % 4 == 0
    # the lines of the batch's length (2 digits), so that the batch stays hardly padded
    assert mixed.labels[16:] == ["56"] * 4
    for image, width in zip(mixed.images[16:], mixed.widths[16:]):
        assert width == 33 and torch.equal(image[:, :width], pool.pixels[:, 52:85]) and not image[:, width:].any()
    assert pool.draw(3, 5, torch.Generator().manual_seed(0)).labels[0] in pool.labels   # no 5-digit line: any
    plain = training_numbers(images, labels, 16, {**cfg, "writer_lines": 0}, torch.Generator().manual_seed(0), pool)
    alone = training_numbers(images, labels, 16, cfg, torch.Generator().manual_seed(0))
    assert plain.labels == alone.labels == mixed.labels[:16] and torch.equal(plain.images, alone.images)


def test_the_validation_benchmark_scores_every_set_with_the_models_it_names(reader_project, tmp_path, monkeypatch, capsys):
    import json
    import sys

    from benchmarks import other_writers
    from src.fileio import md5_of

    out = tmp_path / "writers-val.json"
    monkeypatch.setattr(sys, "argv", ["other_writers", "--root", str(reader_project), "--writers", "3", "--single", "10",
                                      "--per-set", "2", "--out", str(out)])
    other_writers.main()
    result = json.loads(out.read_text())
    assert result["split"] == "val" and set(result["sets"]) == set(SETS)
    assert result["models_md5"]["reader"] == md5_of(reader_project / "models/reader.onnx")
    assert all(0 <= v <= 1 for s in result["sets"].values() for v in s.values())
    assert "pair_thick" in capsys.readouterr().out


def test_a_shadow_darkens_its_share_of_the_page_to_its_light():
    page = np.full((200, 300), 0.9, np.float32)
    dark = hard_shadow(page, 0.35, 0.6, np.random.default_rng(0))
    assert abs((dark < 0.9 * 0.8).mean() - 0.35) < 0.03          # its share, give or take the blurred edge
    assert abs(float(dark.min()) - 0.9 * 0.6) < 1e-3 and float(dark.max()) == pytest.approx(0.9)


def test_a_squared_page_has_lines_across_and_down_a_square_apart():
    """Lines from edge to edge both ways (rows and columns printed along their whole length), as
    far apart across as down, a square 0.5-0.8 or 0.9-1.3 of the writing's height."""
    def centres(printed: np.ndarray) -> np.ndarray:
        labels, count = ndimage.label(printed)
        return np.array(ndimage.center_of_mass(printed, labels, range(1, count + 1))).ravel()

    for i in range(12):
        rng = np.random.default_rng([33, i])
        written = write(writer_of("val", i), "4071", "spaced", rng)
        plain = np.asarray(written, np.float32)
        height = np.ptp(np.flatnonzero((plain < 0.6 * np.median(plain)).any(1))) + 1
        page = np.asarray(squared(written, rng), np.float32)
        dark = page < 0.9 * np.median(page)
        across, down = centres(dark.mean(1) > 0.9), centres(dark.mean(0) > 0.9)
        assert len(across) >= 2 and len(down) >= 2
        pitch = np.median(np.diff(across))
        assert np.median(np.diff(down)) == pytest.approx(pitch, abs=1.5)
        assert any(low - 0.02 <= pitch / height <= high + 0.02 for low, high in SQUARES), (pitch, height)


def test_the_shadow_benchmark_scores_every_condition_and_counts_a_refusal_as_one(reader_project, tmp_path, monkeypatch):
    import sys

    from PIL import Image

    from benchmarks import shadows

    out = tmp_path / "shadows.json"
    monkeypatch.setattr(sys, "argv", ["shadows", "--root", str(reader_project), "--numbers", "2", "--out", str(out)])
    shadows.main()
    conditions = json.loads(out.read_text())["conditions"]
    assert len(conditions) == 1 + len(shadows.SHARES) * len(shadows.LIGHTS) and "no shadow" in conditions
    assert all(0 <= v <= 1 for c in conditions.values() for v in c.values())
    dots = np.full((160, 160), 255, np.uint8)
    for i in range(30):
        for j in range(30):
            dots[5 + 5 * i:7 + 5 * i, 5 + 5 * j:7 + 5 * j] = 0   # 900 dots: refused, as the API refuses them
    answer, floor = shadows.Guarded(reader_project).read_image_and_floor(Image.fromarray(dots))
    assert answer["refused"] and answer["uncertain"] and floor["digits"] is None


def test_one_look_at_each_image_reads_it_as_the_reader_and_as_the_classifier_alone(reader_project, monkeypatch):
    from functools import partial

    from digit_reader.reader import Reader
    from src import reader_scores
    from src.writer_sets import sets_of

    sets = sets_of({"seed": 0, "writers": 3, "single": 4, "per_set": 3}, "val")
    # read as the stage reads: shared among processes, each its own reader on one thread; in
    # chunks of 7, so that chunks cross the sets' bounds and come back in order
    monkeypatch.setattr(reader_scores, "READ_CHUNK", 7)
    read = reader_scores.read_sets(sets, partial(Reader, root=reader_project), 2)
    reader, alone = Reader(root=reader_project), Reader(root=reader_project, numbers=False)
    for name, items in sets.items():
        both = [(reader.read_image(image), alone.read_image(image)) for image, _ in items]
        assert [reader.read_image_and_floor(image) for image, _ in items] == both
        assert read[name] == ([whole for whole, _ in both], [floor["digits"] for _, floor in both])
    # the sets tell the two apart: two touching digits are one piece to the classifier alone
    assert [len(d) for d in read["pair_thick"][1]] != [len(r["digits"]) for r in read["pair_thick"][0]]
