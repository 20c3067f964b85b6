"""The number reader's pipeline parts: composing numbers, the line model, decoding, calibration,
its params, and its two stages end to end on the tiny project."""
import json
from dataclasses import replace

import pytest
import torch

from src.config import ParamsError, validate
from src.number_calibration import FLAG_ALL, Readings, choose_threshold, fit_temperature, flag_report
from src.number_images import (HEIGHT, INK, KINDS, MARGIN, WIDTH_STEP, augment_digits, compose, fixed_numbers,
                               ink_columns, join_neighbours, training_numbers)
from src.number_model import (BLANK, STRIDE, LineReader, as_input, best_paths, build_line_model, ctc_loss,
                              edit_distance, greedy_decode, line_logits)
from tests.conftest import ran, would_run

AUGMENT = {"scale": 0.15, "rotate": 5, "slant": 15, "baseline": 2, "elastic": 1.0, "thickness": 0.5, "blur": 0.5,
           "join": 0.5}


def bars(widths):
    """Digits that are solid bars `widths[i]` columns wide, alternately in the lower and the upper
    half of the field, so that neighbours' ink stays apart in the line even where their boxes overlap."""
    digits = torch.zeros(len(widths), HEIGHT, HEIGHT, dtype=torch.uint8)
    for i, w in enumerate(widths):
        rows = slice(16, 24) if i % 2 == 0 else slice(4, 12)
        digits[i, rows, 3:3 + w] = 255
    return digits


def runs(columns: torch.Tensor) -> list[tuple[int, int]]:
    """The [start, end) runs of True in a 1-D boolean tensor."""
    found, start = [], None
    for x, on in enumerate(columns.tolist() + [False]):
        if on and start is None:
            start = x
        elif not on and start is not None:
            found.append((start, x))
            start = None
    return found


@pytest.mark.parametrize("spacing", [-6, -4, -1, 0, 3, 8])
def test_neighbouring_ink_boxes_are_spacing_apart_in_the_pixels(spacing):
    widths = [12, 14, 12]
    numbers = compose(bars(widths), [3], torch.tensor([spacing, spacing]))
    line = numbers.images[0]
    (a0, a1), (c0, c1) = runs(line[16:24].amax(0) > 0)   # the first and third bars
    (b0, b1), = runs(line[4:12].amax(0) > 0)              # the second
    assert (a1 - a0, b1 - b0, c1 - c0) == tuple(widths)
    assert (b0 - a1, c0 - b1) == (spacing, spacing)
    assert a0 == MARGIN and numbers.ink[0] == [(a0, a1), (b0, b1), (c0, c1)]
    assert numbers.widths[0] == c1 + MARGIN
    assert line.shape[1] % WIDTH_STEP == 0 and line.shape[1] - WIDTH_STEP < numbers.widths[0] <= line.shape[1]


def test_an_overlap_is_at_most_half_the_narrower_digit():
    numbers = compose(bars([4, 14]), [2], torch.tensor([-8]))
    (a0, a1), (b0, b1) = numbers.ink[0]
    assert a1 - b0 == 2  # half of the 4-column digit, not 8


def test_ink_columns_of_a_digit_and_of_a_blank():
    digits = torch.zeros(2, HEIGHT, HEIGHT, dtype=torch.uint8)
    digits[0, 10, 5:9] = 200
    digits[0, 11, 20] = INK - 1  # too faint to count
    first, end = ink_columns(digits)
    assert (first.tolist(), end.tolist()) == ([5, 0], [9, 1])


@pytest.mark.parametrize("kind", KINDS)
def test_test_numbers_of_each_kind_have_that_kinds_spacing(kind, mnist_test_digits):
    images, labels = map(torch.from_numpy, mnist_test_digits)
    numbers = fixed_numbers(images, labels, [4] * 50, [kind] * 50, seed=0)
    low, high = KINDS[kind]
    for line_ink, line in zip(numbers.ink, numbers.images):
        for (a0, a1), (b0, b1) in zip(line_ink, line_ink[1:]):
            limit = min(a1 - a0, b1 - b0) // 2  # an overlap is at most half the narrower digit
            assert low <= b0 - a1 <= high or b0 - a1 == -limit > low
        # the whole line's ink spans exactly from the first digit's box to the last's
        columns = line.amax(0).nonzero().flatten()
        assert (int(columns.min()), int(columns.max()) + 1) == (line_ink[0][0], max(x1 for _, x1 in line_ink))
    assert all(len(label) == 4 and label.isdigit() for label in numbers.labels)


def test_number_labels_are_the_digits_drawn(mnist_test_digits):
    images, labels = map(torch.from_numpy, mnist_test_digits)
    numbers = fixed_numbers(images, labels, [1] * 20, ["separated"] * 20, seed=3)
    for label, line, width in zip(numbers.labels, numbers.images, numbers.widths):
        matches = [i for i in (labels == int(label)).nonzero().flatten().tolist()
                   if torch.equal(images[i].masked_fill(images[i] < INK, 0)[:, images[i].amax(0) >= INK],
                                  line[:, line.amax(0) > 0])]
        assert matches, f"line labelled {label} is not a test digit {label}"


def test_composition_is_seeded(mnist_test_digits):
    images, labels = map(torch.from_numpy, mnist_test_digits)
    a = fixed_numbers(images, labels, [4, 7], ["touching", "overlap"], seed=5)
    b = fixed_numbers(images, labels, [4, 7], ["touching", "overlap"], seed=5)
    c = fixed_numbers(images, labels, [4, 7], ["touching", "overlap"], seed=6)
    assert torch.equal(a.images, b.images) and a.labels == b.labels
    assert a.labels != c.labels
    cfg = {"lengths": [1, 8], "spacing": [-8, 8], "augment": AUGMENT}
    t1 = training_numbers(images, labels, 16, cfg, torch.Generator().manual_seed(0))
    t2 = training_numbers(images, labels, 16, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(t1.images, t2.images) and t1.labels == t2.labels
    assert all(1 <= len(label) <= 8 for label in t1.labels)


def test_augmentation_keeps_the_digit_and_varies_it(mnist_test_digits):
    digits = torch.from_numpy(mnist_test_digits[0][:64])
    out = augment_digits(digits, AUGMENT, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == digits.shape
    ink_in, ink_out = digits.float().sum((1, 2)), out.float().sum((1, 2))
    assert ((ink_out / ink_in) > 0.4).all() and ((ink_out / ink_in) < 2.5).all()
    assert not torch.equal(out, digits)


def test_no_augmentation_returns_the_digits_and_draws_as_a_resampling_does(mnist_test_digits):
    digits = torch.from_numpy(mnist_test_digits[0][:64])
    none, tiny = {key: 0 for key in AUGMENT}, {**{key: 0 for key in AUGMENT}, "scale": 1e-9}
    skipped, resampled = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(augment_digits(digits, none, skipped), digits)
    assert torch.equal(augment_digits(digits, tiny, resampled), digits)   # the full path, changing nothing
    assert torch.equal(skipped.get_state(), resampled.get_state())   # so the lines drawn after are the same


def test_joined_neighbours_get_a_pen_stroke_across_their_gap():
    digits = bars([10, 10, 10])
    spacings = torch.tensor([6, 6])
    plain = compose(digits, [3], spacings)
    joined = compose(digits, [3], spacings)
    join_neighbours(joined, digits, [3], 1.0, torch.Generator().manual_seed(0))
    (a0, a1), (b0, b1), (c0, c1) = plain.ink[0]
    assert (plain.images[0, :, a1:b0] == 0).all() and (plain.images[0, :, b1:c0] == 0).all()
    assert (joined.images[0, :, a1:b0].amax(0) == 255).all() and (joined.images[0, :, b1:c0].amax(0) == 255).all()
    assert torch.equal(joined.images[0, :, a0:a1] >= plain.images[0, :, a0:a1], torch.ones_like(plain.images[0, :, a0:a1], dtype=torch.bool))
    untouched = compose(digits, [3], spacings)
    join_neighbours(untouched, digits, [3], 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(untouched.images, plain.images)


@pytest.mark.parametrize("sequence", ["lstm", "conv"])
def test_the_line_model_gives_one_column_per_four_and_a_finite_loss(sequence):
    torch.manual_seed(0)
    model = LineReader(widths=(4, 8, 8), hidden=8, sequence=sequence)
    x = torch.randn(3, 1, HEIGHT, 64)
    logits = model(x)
    assert logits.shape == (3, 64 // STRIDE, 11) and logits.dtype == torch.float32
    loss = ctc_loss(logits, ["12", "3", "4567"], torch.tensor([40, 20, 64]))
    assert torch.isfinite(loss)
    loss.backward()


def one_hot_logits(path, strength=10.0):
    logits = torch.zeros(1, len(path), 11)
    logits[0, torch.arange(len(path)), torch.tensor(path)] = strength
    return logits


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    path = [BLANK, 1, 1, BLANK, 1, 7, 7, BLANK, 4]
    reading, = greedy_decode(one_hot_logits(path), torch.tensor([len(path) * STRIDE]))
    assert reading.digits == "1174"
    assert reading.spans == [(4, 12), (16, 20), (20, 28), (32, 36)]
    assert [max(range(10), key=p.__getitem__) for p in reading.probs] == [1, 1, 7, 4]
    # the probability of "1174" over all alignments: at least the best path's, and with one-hot
    # columns hardly more
    p_best = torch.tensor(10.0).exp() / (torch.tensor(10.0).exp() + 10)
    path_probability = float(p_best ** len(path))
    assert path_probability <= reading.confidence <= 1
    assert reading.confidence == pytest.approx(path_probability, rel=1e-2)
    # columns past the line's width (padding) are not read
    cut, = greedy_decode(one_hot_logits(path), torch.tensor([5 * STRIDE]))
    assert cut.digits == "11"


def test_best_paths_are_greedy_decodings_digits():
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):   # few distinct values: ties in every column, repeats, blanks, cut lines
        columns = int(torch.randint(1, 30, (1,), generator=generator))
        logits = torch.randint(0, 3, (6, columns, 11), generator=generator).float()
        widths = torch.randint(0, STRIDE * columns + 1, (6,), generator=generator)
        assert best_paths(logits, widths) == [reading.digits for reading in greedy_decode(logits, widths)]
    path = [BLANK, 1, 1, BLANK, 1, 7, 7, BLANK, 4]
    assert best_paths(one_hot_logits(path), torch.tensor([len(path) * STRIDE])) == ["1174"]


def test_lines_are_read_in_batches_of_similar_width_each_cut_to_its_widest(mnist_test_digits):
    """A line is padded as little as the reader pads it (to a multiple of STRIDE), not to the
    longest line of its set; frames past a line's own are zero."""
    torch.manual_seed(0)
    model = build_line_model({"widths": [4, 8, 8], "hidden": 8, "sequence": "conv"}).eval()
    images, labels = map(torch.from_numpy, mnist_test_digits)
    numbers = fixed_numbers(images, labels, [1, 8, 2, 1], ["separated"] * 4, seed=0)

    def alone(line, columns):
        with torch.no_grad():
            return model(as_input(numbers.images[line:line + 1, :, :columns], 0.1, 0.3))[0]

    logits = line_logits(model, numbers, 0.1, 0.3, batch_size=1)
    assert logits.shape == (4, numbers.images.shape[2] // STRIDE, 11)
    own = [-(-width // STRIDE) * STRIDE for width in numbers.widths.tolist()]
    for line, columns in enumerate(own):
        assert torch.allclose(logits[line, :columns // STRIDE], alone(line, columns), atol=1e-5)
        assert not logits[line, columns // STRIDE:].any()
    # In pairs: the two one-digit lines share a batch, cut to the wider of the two.
    paired = line_logits(model, numbers, 0.1, 0.3, batch_size=2)
    ones = max(own[0], own[3])
    for line in (0, 3):
        assert torch.allclose(paired[line, :ones // STRIDE], alone(line, ones), atol=1e-5)
    # A set whose width is no multiple of STRIDE (cut by a column) is read to its last frame.
    cut = replace(numbers, images=numbers.images[:, :, :-1], widths=numbers.widths.clamp(max=numbers.images.shape[2] - 1))
    longest = int(cut.widths.argmax())
    read = line_logits(model, cut, 0.1, 0.3, batch_size=1)
    assert read.shape == (4, -(-cut.images.shape[2] // STRIDE), 11)
    assert torch.allclose(read[longest], alone(longest, cut.images.shape[2]), atol=1e-5)


@pytest.mark.parametrize("label", ["", "7", "1174", "0000", "98765432"])
def test_the_probability_of_a_reading_is_ctcs(label):
    """src/ctc.py's NumPy forward algorithm against PyTorch's CTC loss, repeated digits included."""
    from src.ctc import label_log_probability

    torch.manual_seed(len(label))
    logits = torch.randn(1, 40, 11) * 3
    expected = -ctc_loss(logits, [label], torch.tensor([160]), reduction="none")[0]
    log_probs = logits[0].double().log_softmax(-1).numpy()
    assert label_log_probability(log_probs, [int(c) for c in label]) == pytest.approx(float(expected), abs=1e-4)


def test_temperature_divides_the_logits_and_keeps_the_reading():
    path = [BLANK, 3, BLANK, 8]
    sharp, = greedy_decode(one_hot_logits(path, 4.0), torch.tensor([16]))
    soft, = greedy_decode(one_hot_logits(path, 4.0), torch.tensor([16]), temperature=2.0)
    assert sharp.digits == soft.digits == "38" and soft.confidence < sharp.confidence


def test_a_fitted_temperature_undoes_overconfidence():
    torch.manual_seed(0)
    # Calibrated logits, then made 3x overconfident: the fit should divide them by about 3.
    labels = ["".join(str(d) for d in torch.randint(0, 10, (3,)).tolist()) for _ in range(200)]
    logits = torch.randn(200, 12, 11)
    for i, label in enumerate(labels):
        for j, digit in enumerate(label):
            logits[i, 4 * j + 1, int(digit)] += 2.0
            logits[i, 4 * j + 2:4 * j + 4, BLANK] += 2.0
    widths = torch.full((200,), 48)
    calibrated = fit_temperature([Readings(logits, labels, widths)])
    assert fit_temperature([Readings(3 * logits, labels, widths)]) == pytest.approx(3 * calibrated, rel=0.2)
    # in sets, as the stage reads its calibration numbers: the temperature of all of them together
    halves = [Readings(3 * logits[:100], labels[:100], widths[:100]), Readings(3 * logits[100:], labels[100:], widths[100:])]
    assert fit_temperature(halves) == fit_temperature([Readings(3 * logits, labels, widths)])


def test_the_threshold_is_the_lowest_that_keeps_the_unflagged_accurate_enough():
    confidences = [0.99, 0.98, 0.97, 0.90, 0.80, 0.70]
    correct = [True, True, True, False, True, False]
    assert choose_threshold(confidences, correct, 1.0) == 0.97
    assert choose_threshold(confidences, correct, 0.8) == 0.80
    assert choose_threshold([0.9, 0.5], [False, False], 0.5) == FLAG_ALL
    assert flag_report(confidences, correct, 0.97) == {"flagged": 0.5, "unflagged_accuracy": 1.0, "numbers": 6}


def test_calibration_reads_its_numbers_set_by_set_the_validation_numbers_first(monkeypatch):
    from src import train_numbers

    monkeypatch.setattr(train_numbers, "CALIBRATION_SET", 4)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 28, 28), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 10, (40,), generator=generator)
    model = build_line_model({"widths": [4, 8, 8], "hidden": 8, "sequence": "conv"})
    sets = train_numbers.calibration_readings(model, images, labels, 10, [1, 3], 0.1, 0.3)
    assert [len(s.labels) for s in sets] == [4, 4, 2]
    validation = train_numbers.validation_numbers(images, labels, 4, [1, 3])
    assert sets[0].labels == validation.labels and torch.equal(sets[0].widths, validation.widths)
    assert torch.equal(sets[0].logits, line_logits(model, validation, 0.1, 0.3))
    assert sets[1].labels != sets[0].labels  # a further seed: other numbers
    assert all(s.logits.shape[0] == len(s.labels) == len(s.widths) for s in sets)


def test_a_threshold_is_judged_on_every_reading_of_its_confidence():
    """A threshold keeps all the readings as sure as it: two at 0.9, one wrong, are 50% right."""
    assert choose_threshold([0.9, 0.9], [True, False], 0.9) == FLAG_ALL
    assert choose_threshold([0.95, 0.9, 0.9], [True, True, False], 0.9) == 0.95
    assert choose_threshold([0.95, 0.9, 0.9], [True, True, True], 0.9) == 0.9


def test_the_line_model_without_validation_digits_is_one_line(monkeypatch):
    import yaml

    from src import train_numbers
    from src.errors import PipelineError
    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["val_size"] = 0
    splits = {"train": (torch.zeros(10, 28, 28, dtype=torch.uint8), torch.arange(10)),
              "val": (torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))}
    monkeypatch.setattr(train_numbers, "load_params", lambda: params)
    monkeypatch.setattr(train_numbers, "load_stats", lambda: (0.13, 0.31))
    monkeypatch.setattr(train_numbers, "load_split", splits.__getitem__)
    with pytest.raises(PipelineError, match="data.val_size is 0: the line model is validated and calibrated"):
        train_numbers.main()


def test_edit_distance():
    assert edit_distance("1234", "1234") == 0
    assert edit_distance("1234", "124") == 1
    assert edit_distance("174", "04") == 2
    assert edit_distance("", "55") == 2


@pytest.mark.parametrize("key, value, message", [
    (("net", "sequence"), "gru", "numbers.net.sequence must be one of lstm, conv, got 'gru'"),
    (("images", "lengths"), [5, 2], "numbers.images.lengths must be [low, high]"),
    (("images", "augment", "slant"), -3, "numbers.images.augment.slant must be a number in [0, 45], got -3"),
    (("train", "steps"), 0, "numbers.train.steps must be an integer >= 1, got 0"),
    (("net", "widths"), [8, 8], "numbers.net.widths must be a list of 3 positive integers"),
])
def test_bad_numbers_params_fail_with_one_line_naming_the_key(key, value, message):
    import yaml

    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    section = params["numbers"]
    for k in key[:-1]:
        section = section[k]
    section[key[-1]] = value
    with pytest.raises(ParamsError, match=message.replace("[", r"\[")) as error:
        validate(params)
    assert "\n" not in str(error.value)


def test_an_unknown_numbers_key_is_refused():
    import yaml

    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["numbers"]["train"]["epochs"] = 3
    with pytest.raises(ParamsError, match="unknown key numbers.train.epochs"):
        validate(params)


def test_the_stages_write_the_metrics_plots_and_calibration(tiny):
    metrics = tiny.read_json("metrics/numbers.json")
    assert set(metrics) == {"exact", "cer"}
    assert set(metrics["exact"]) == {"all", "touching", "overlap", "separated"}
    assert all(0 <= v <= 1 for v in metrics["exact"].values()) and metrics["cer"] >= 0
    rows = (tiny.path / "metrics/numbers/by_length.csv").read_text().splitlines()
    assert rows[0] == "length,exact,cer" and [r.split(",")[0] for r in rows[1:]] == [str(n) for n in range(1, 9)]
    assert (tiny.path / "metrics/numbers/misread.png").read_bytes().startswith(b"\x89PNG")
    confidence = tiny.read_json("metrics/numbers/confidence.json")
    assert {"temperature", "threshold", "all", "touching", "overlap", "separated"} <= set(confidence)
    assert confidence["all"]["numbers"] == 3 * tiny.params()["numbers"]["evaluate"]["per_kind"]
    train = tiny.params()["numbers"]["train"]
    calibrated = tiny.read_json("metrics/numbers/train/metrics.json")["calibration"]["validation"]
    assert calibrated["numbers"] == train["calibration_numbers"] != train["val_numbers"]
    onnx = tiny.read_json("metrics/numbers/onnx.json")
    assert onnx["same_readings"] == onnx["numbers"] == confidence["all"]["numbers"]
    assert (tiny.path / "models/numbers.onnx").stat().st_size == onnx["bytes"]
    curve = (tiny.path / "metrics/numbers/train/plots/metrics/val/exact.tsv").read_text().splitlines()
    assert len(curve) == 1 + 2  # steps 3 and 6 of the tiny params
    shown = json.loads(tiny.dvc("metrics", "show", "--json").stdout)
    assert "metrics/numbers.json" in json.dumps(shown)
    assert "by_length.csv" in tiny.dvc("plots", "show", "--json").stdout


def test_changing_the_evaluation_reruns_only_the_evaluation(tiny):
    params = tiny.params()
    params["numbers"]["evaluate"]["lengths"] = [2, 5]
    tiny.set_params(params)
    assert ran(tiny.repro()) == ["evaluate_numbers"]
    rows = (tiny.path / "metrics/numbers/by_length.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "3", "4", "5"]
    params["numbers"]["evaluate"]["per_kind"] = 5  # also the numbers the ONNX file is checked on
    tiny.set_params(params)
    # (and, downstream of the export, the reader on other writers: a dry run cannot know that the
    # same model exports to the same file)
    assert would_run(tiny) == ["evaluate_numbers", "export_numbers", "evaluate_writers"]
    params["numbers"]["train"]["lr"] = 0.001
    tiny.set_params(params)
    assert would_run(tiny) == ["train_numbers", "evaluate_numbers", "export_numbers", "evaluate_writers"]


def test_training_the_numbers_model_twice_gives_identical_weights(tiny):
    first = tiny.md5("models/numbers.pth")
    tiny.repro("-f", "-s", "train_numbers")
    assert tiny.md5("models/numbers.pth") == first


def test_the_draws_benchmark_trains_the_stages_own_model_from_its_seed_and_another_from_the_next(tiny, tmp_path,
                                                                                                 monkeypatch):
    """benchmarks/line_model_draws.py: the draw from numbers.train.seed is the stage's own line model
    (its weights, the calibration aside), the next seed's another; each read on every set."""
    import sys

    from benchmarks import line_model_draws

    monkeypatch.chdir(tiny.path)
    trained, fit = [], line_model_draws.fit_line_model

    def fit_and_keep(model, *args, **kwargs):
        seconds = fit(model, *args, **kwargs)
        trained.append({name: value.detach().clone().cpu() for name, value in model.state_dict().items()})
        return seconds

    monkeypatch.setattr(line_model_draws, "fit_line_model", fit_and_keep)
    out = tmp_path / "draws.json"
    monkeypatch.setattr(sys, "argv", ["line_model_draws", "--seeds", "2", "--per-kind", "6", "--out", str(out)])
    line_model_draws.main()
    stage = torch.load(tiny.path / "models/numbers.pth", weights_only=True)
    weights = [name for name in stage if name not in ("temperature", "threshold")]
    assert tiny.params()["numbers"]["train"]["seed"] == 0 and set(weights) < set(trained[0])
    assert all(torch.equal(trained[0][name], stage[name]) for name in weights)
    assert not all(torch.equal(trained[1][name], stage[name]) for name in weights)
    report = json.loads(out.read_text())
    assert [d["seed"] for d in report["draws"]] == [0, 1] and report["steps"] == tiny.params()["numbers"]["train"]["steps"]
    sets = {"stage's test", "test, 6 a kind", "validation, 6 a kind"}
    for draw in report["draws"]:
        assert set(draw) == sets | {"seed", "train_time_s"} and all(set(draw[name]) == set(KINDS) for name in sets)
    for name in sets:
        assert report["mean"][name]["separated"] == pytest.approx(sum(d[name]["separated"] for d in report["draws"]) / 2,
                                                                  abs=1e-6)


@pytest.mark.slow
def test_a_bilstm_line_model_exports_to_onnx_that_reads_what_pytorch_does(mnist_test_digits, tmp_path):
    """The tiny build exports the default `conv` line model; the BiLSTM's export (~15 s: the
    exporter decomposes the LSTM) is checked here, in the slow tier."""
    from src.export_numbers import export_line_model

    torch.manual_seed(0)
    model = LineReader(widths=(4, 8, 8), hidden=8, sequence="lstm").eval()
    images, labels = (torch.from_numpy(a) for a in mnist_test_digits)
    numbers = fixed_numbers(images, labels, [4] * 12, list(KINDS) * 4, seed=0)
    data, record = export_line_model(model, 0.13, 0.31, numbers, tmp_path / "numbers.onnx")
    assert record["same_readings"] == record["numbers"] == 12 and record["max_abs_logit_diff"] < 1e-3
    assert record["bytes"] == len(data) > 0
