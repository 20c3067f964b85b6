"""The command line, `python -m digit_reader.predict`, on real files of each format."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digit_reader import predict
from digit_reader.reader import Reader, UNCERTAIN_BELOW


@pytest.fixture(scope="module")
def images(tmp_path_factory, mnist_test_digits, paper):
    """Files in every format and mode the CLI must read, named by the number they show, and one
    broken file. MNIST's first test digits are 7, 2, 1, 0, 4, 1, 4, 9, 5, 9."""
    digits, labels = mnist_test_digits
    folder = tmp_path_factory.mktemp("images")
    seven, number = paper(digits[:1]), paper(digits[[1, 3, 1, 2]], gaps=[10, 6, 12])  # "2021"
    assert "".join(map(str, labels[[1, 3, 1, 2]])) == "2021"
    files = {}

    def save(name, image, **options):
        files[name] = folder / name
        image.save(files[name], **options)

    save("seven.png", seven)
    save("seven.jpg", seven.convert("RGB"), quality=85)
    save("seven.bmp", seven.convert("RGB"))
    save("seven.gif", seven.convert("P"))
    save("seven.webp", seven, quality=80)
    save("number-2021.png", number)
    # 16-bit grey, as a scanner may write it
    save("seven-16bit.png", Image.fromarray(np.asarray(seven).astype(np.uint16) * 257))
    # a canvas drawing: black ink on transparent pixels, with red-ish anti-aliased colour
    ink = 255 - np.asarray(seven)
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 0] = 40
    rgba[..., 3] = ink
    save("seven-rgba.png", Image.fromarray(rgba))
    # a palette image with a transparent background colour
    save("seven-palette-transparent.png", seven.convert("P"), transparency=255)
    blank = folder / "blank.png"
    Image.new("RGB", (200, 100), "white").save(blank)
    files["blank.png"] = blank
    broken = folder / "broken.png"
    broken.write_bytes(files["seven.png"].read_bytes()[:300])
    files["broken.png"] = broken
    return files


def run_cli(*args, root):
    return subprocess.run([sys.executable, "-m", "digit_reader.predict", "--root", str(root), *map(str, args)],
                          capture_output=True, text=True)


def test_cli_reads_every_format_and_reports_the_broken_file_without_stopping(images, reader_project):
    order = [n for n in images if n != "blank.png"]
    result = run_cli("--json", "--top", "2", *(images[n] for n in order), root=reader_project)
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(images[n]) for n in order]
    for name, line in zip(order, lines):
        if name == "broken.png":
            assert "corrupt or truncated" in line["error"]
            continue
        assert line["digits"] == ("2021" if "2021" in name else "7"), (name, line)
        assert line["confidence"] == min(p["probability"] for p in line["predictions"]) > UNCERTAIN_BELOW
        for digit in line["predictions"]:
            assert len(digit["top"]) == 2 and digit["top"][0]["digit"] == int(digit["digit"])
            assert digit["top"][0]["probability"] >= digit["top"][1]["probability"]
            assert len(digit["box"]) == 4


def test_cli_plain_output_one_line_per_file_errors_on_stderr(images, reader_project):
    result = run_cli("--model", "mlp", images["number-2021.png"], images["blank.png"], images["broken.png"],
                     root=reader_project)
    assert result.returncode == 1
    number, blank = result.stdout.splitlines()
    assert number.startswith(f"{images['number-2021.png']}: ") and "confidence" in number
    assert blank == f"{images['blank.png']}: no digit found"
    assert result.stderr.strip().splitlines() == [
        f"error: {images['broken.png']}: corrupt or truncated image: " + result.stderr.split("corrupt or truncated image: ")[1].strip()]


def test_cli_missing_file_and_missing_model_are_one_line(tmp_path, images, reader_project, capsys):
    assert predict.main(["--root", str(reader_project), str(tmp_path / "nope.png"), str(images["seven.png"])]) == 1
    out, err = capsys.readouterr()
    assert out.strip().endswith(": 7  confidence " + out.split("confidence ")[1].strip())
    assert err.strip() == f"error: {tmp_path / 'nope.png'}: No such file or directory"
    assert predict.main(["--root", str(tmp_path), str(images["seven.png"])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models/cnn.pth not found" in err and "make repro" in err


def test_weights_that_do_not_fit_params_are_one_line(tmp_path, reader_project):
    import shutil

    shutil.copytree(reader_project, tmp_path / "project")
    shutil.copy(tmp_path / "project/models/mlp.pth", tmp_path / "project/models/cnn.pth")
    with pytest.raises(Exception, match=r"models/cnn.pth does not fit train.cnn in params.yaml .*make repro"):
        Reader("cnn", tmp_path / "project")


def test_a_digit_the_model_hesitates_on_is_flagged_uncertain():
    from digit_reader.reader import describe

    hesitant = describe(np.array([0.05, 0.6, 0.35] + [0] * 7), (0, 0, 1, 1), top=3)
    assert hesitant["digit"] == "1" and hesitant["uncertain"]
    assert [t["digit"] for t in hesitant["top"]] == [1, 2, 0]
    assert not describe(np.array([0.1, 0.9] + [0] * 8), (0, 0, 1, 1), top=3)["uncertain"]
    assert predict.plain("f.png", {"digits": "71", "uncertain": True, "confidence": 0.6, "predictions": [
        {"digit": "7", "uncertain": False}, {"digit": "1", "uncertain": True}]}) == "f.png: 71?  confidence 60.0% (uncertain)"
