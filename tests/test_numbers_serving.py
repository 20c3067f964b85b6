"""Numbers whose digits touch, read by the whole reader (the per-digit classifier and the line
model, digit_reader/numbers.py) with the quick models of `reader_project`: through Reader, the
CLI, the HTTP API and the page, on both runtimes."""
import io
import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from digit_reader.api import create_app
from digit_reader.image import digits_in
from digit_reader.reader import Reader
from src.number_images import KINDS, fixed_numbers
from tests.conftest import ROOT, encode
from tools.user_images import composed_on_paper, users_version

# The quick line model (QUICK_NUMBERS, tests/conftest.py) reads touching numbers much less well than
# the pipeline's; these bounds are what it must reach, far above the per-digit reader alone.
QUICK_TOUCHING = 0.70
QUICK_SEPARATED = 0.90


@pytest.fixture(scope="module")
def composed(mnist_test_digits):
    """{kind: [(png bytes, digits)]}: 4-digit numbers of each kind from MNIST's test digits, on paper."""
    images, labels = map(torch.from_numpy, mnist_test_digits)
    out = {}
    for i, kind in enumerate(KINDS):
        numbers = fixed_numbers(images, labels, [4] * 100, [kind] * 100, seed=50 + i)
        out[kind] = [(encode(image), label) for image, label in zip(composed_on_paper(numbers), numbers.labels)]
    return out


@pytest.fixture(scope="module")
def readers(reader_project):
    return {"with lines": Reader(root=reader_project), "digits only": Reader(root=reader_project, numbers=False)}


def exact(reader, items) -> float:
    return sum(reader.read(data)["digits"] == truth for data, truth in items) / len(items)


def test_touching_numbers_are_read_with_the_line_model(readers, composed):
    touching, separated = exact(readers["with lines"], composed["touching"]), exact(readers["with lines"], composed["separated"])
    before = exact(readers["digits only"], composed["touching"])
    overlap = exact(readers["with lines"], composed["overlap"])
    print(f"quick models, 100 4-digit numbers each: touching {touching:.0%} (digits only: {before:.0%}), "
          f"heavy overlap {overlap:.0%}, separated {separated:.0%}")
    assert touching >= QUICK_TOUCHING and touching > before + 0.3
    assert separated >= max(QUICK_SEPARATED, exact(readers["digits only"], composed["separated"]) - 0.02)


@pytest.mark.parametrize("count", [pytest.param(200, marks=pytest.mark.bulk), pytest.param(500, marks=pytest.mark.slow)])
def test_single_digits_read_as_well_as_with_the_classifier_alone(readers, mnist_test_digits, count):
    """MNIST's test digits, clean and as a user's photo (tests/test_image.py): the line model
    must cost nothing on a digit that stands alone. The first 200 in `make test`, 500 in the slow tier."""
    images, labels = mnist_test_digits[0][:count], mnist_test_digits[1][:count]
    rng = np.random.default_rng(0)
    clean = [(encode(Image.fromarray(255 - d)), str(y)) for d, y in zip(images, labels)]
    photos = [(encode(users_version(d, rng)), str(y)) for d, y in zip(images, labels)]
    for name, items in (("clean", clean), ("photographed", photos)):
        new, old = exact(readers["with lines"], items), exact(readers["digits only"], items)
        print(f"{count} single MNIST test digits, {name}: {new:.1%} with the line model, {old:.1%} without")
        assert new >= old


def test_a_reading_keeps_its_json_shape_with_a_box_per_digit(readers, composed):
    data, truth = composed["touching"][0]
    answer = readers["with lines"].read(data, top=3)
    assert set(answer) == {"digits", "confidence", "uncertain", "count", "predictions"}
    assert answer["count"] == len(answer["predictions"]) == len(answer["digits"])
    width, height = Image.open(io.BytesIO(data)).size
    for p in answer["predictions"]:
        assert set(p) == {"digit", "probability", "uncertain", "top", "box"}
        assert len(p["top"]) == 3 and p["top"][0]["digit"] == int(p["digit"])
        x0, y0, x1, y1 = p["box"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    lefts = [p["box"][0] for p in answer["predictions"]]
    assert lefts == sorted(lefts)  # left to right
    assert answer["confidence"] == min(p["probability"] for p in answer["predictions"])


def test_the_onnx_reader_reads_as_the_torch_reader(reader_project, composed):
    torch_reader, onnx = (Reader(root=reader_project, runtime=runtime) for runtime in ("torch", "onnx"))
    for data, _ in composed["touching"][:20] + composed["overlap"][:10] + composed["separated"][:10]:
        a, b = torch_reader.read(data), onnx.read(data)
        assert a["digits"] == b["digits"] and a["uncertain"] == b["uncertain"]
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)


def test_the_docs_snippet_reads_a_line_with_onnxruntime_alone_as_the_reader_does(reader_project, composed, monkeypatch):
    """docs/reading-digits.md's code for models/numbers.onnx, run as written on lines the reader
    makes of photos: the digits its line model reads, and the temperature and threshold it reads by."""
    import re

    from digit_reader.image import decode, find_ink
    from digit_reader.line import maker_of
    from digit_reader.numbers import LineModel

    section = (ROOT / "docs" / "reading-digits.md").read_text().split("## The line model as ONNX")[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "np.zeros((1, 1, 28, 112), np.float32)" in snippet   # the line it stands for, replaced by a real one
    monkeypatch.chdir(reader_project / "models")
    line_model = LineModel(reader_project, runtime="onnx")
    for data, _ in composed["touching"][:10] + composed["separated"][:5]:
        line = maker_of(find_ink(decode(data)))(1.0)
        pixels = np.ascontiguousarray(line.pixels[None, None], dtype=np.float32)   # its width a multiple of 4, as the docs ask
        assert pixels.shape[-1] % 4 == 0
        namespace = {"pixels": pixels}
        exec(snippet.replace("np.zeros((1, 1, 28, 112), np.float32)", "pixels"), namespace)
        assert namespace["digits"] == line_model.read(line).digits
    assert float(namespace["meta"]["temperature"]) == pytest.approx(line_model.temperature)
    assert float(namespace["meta"]["threshold"]) == pytest.approx(line_model.threshold)


def touching_files(composed, tmp_path, count=5):
    """Touching numbers that segmentation alone cannot split: fewer pieces of ink than digits."""
    files = []
    for data, truth in composed["touching"]:
        if len(digits_in(Image.open(io.BytesIO(data)))) < 4:
            files.append((tmp_path / f"number-{len(files)}-{truth}.png", truth))
            files[-1][0].write_bytes(data)
        if len(files) == count:
            return files
    raise AssertionError("too few touching numbers")


def test_the_cli_reads_touching_digits(reader_project, readers, composed, tmp_path, python_process):
    files = touching_files(composed, tmp_path)
    result = python_process("-m", "digit_reader.predict", "--root", reader_project, "--json", *(f for f, _ in files))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["digits"] for a in answers] == [readers["with lines"].read(f.read_bytes())["digits"] for f, _ in files]
    assert sum(a["digits"] == truth for a, (_, truth) in zip(answers, files)) >= 3
    assert all(a["count"] == len(a["digits"]) == len(a["predictions"]) for a in answers)


def test_the_api_reads_touching_digits_and_still_refuses_bad_images(reader_project, composed, tmp_path):
    files = touching_files(composed, tmp_path)
    with TestClient(create_app(reader_project)) as client:
        answers = [client.post("/predict", content=f.read_bytes(), headers={"content-type": "image/png"})
                   for f, _ in files]
        assert all(a.status_code == 200 for a in answers)
        assert sum(a.json()["digits"] == truth for a, (_, truth) in zip(answers, files)) >= 3
        for bad in (b"", b"not an image", files[0][0].read_bytes()[:200]):
            answer = client.post("/predict", content=bad)
            assert 400 <= answer.status_code < 500, answer.text


def test_the_reader_benchmark_scores_both_readers_on_every_kind(reader_project, raw_mnist, tmp_path, python_process):
    out = tmp_path / "reader.json"
    run = python_process("-m", "benchmarks.reader_accuracy", "--root", reader_project, "--mnist", raw_mnist, "--digits", "20",
                         "--numbers", "20", "--font-numbers", "1", "--runtime", "onnx", "--out", out, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    numbers = result["exact"]["4-digit MNIST numbers on paper"]
    assert set(numbers) == set(KINDS) and result["exact"]["single MNIST digits"]["clean"]["n"] == 20
    assert numbers["touching"]["with the line model"] > numbers["touching"]["digits only"] + 0.3
    for kind in numbers.values():   # the unflagged numbers read right are some of those read right
        assert 0 <= kind["flagged"] <= 1
        assert kind["unflagged right"] is None or (1 - kind["flagged"]) * kind["unflagged right"] <= kind["with the line model"] + 1e-4
    assert set(result["models_md5"]) == {"reader.onnx", "numbers.onnx"} and result["runtime"] == "onnx"
