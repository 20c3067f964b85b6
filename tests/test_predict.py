"""The command line, `python -m digit_reader.predict`, on real files of each format."""
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from digit_reader import predict
from digit_reader.reader import Reader
from digit_reader.rules import UNCERTAIN_BELOW
from digit_reader.runtimes import ModelError
from tests.conftest import ROOT


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


@pytest.fixture
def run_cli(python_process):
    """`python -m digit_reader.predict --root ROOT ARGS...`."""
    return lambda *args, root: python_process("-m", "digit_reader.predict", "--root", root, *args)


def test_cli_reads_every_format_and_reports_the_broken_file_without_stopping(images, reader_project, run_cli):
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


def test_cli_plain_output_one_line_per_file_errors_on_stderr(images, reader_project, run_cli):
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
    assert predict.main(["--root", str(tmp_path), "--runtime", "torch", str(images["seven.png"])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models/reader.pth not found" in err and "make repro" in err


def test_an_empty_file_and_one_too_large_for_an_image_are_one_line(tmp_path, images, reader_project, capsys, monkeypatch):
    empty, large = tmp_path / "empty.png", tmp_path / "large.png"
    limit = images["seven.png"].stat().st_size
    empty.write_bytes(b"")
    large.write_bytes(b"\0" * (limit + 1))
    monkeypatch.setattr(predict, "MAX_FILE_BYTES", limit)
    assert predict.main(["--root", str(reader_project), str(empty), str(large), str(images["seven.png"])]) == 1
    out, err = capsys.readouterr()
    assert ": 7  confidence" in out
    assert err.splitlines() == [f"error: {empty}: empty file: no image data", f"error: {large}: over the limit of {limit} bytes: too large for an image"]


OUTPUT_GONE = {  # stdout replaced before the command runs: what it does when its output cannot be written
    "a closed pipe": ("r, w = os.pipe(); os.close(r); os.dup2(w, 1)", ""),
    "a full disk": ("os.dup2(os.open('/dev/full', os.O_WRONLY), 1)", "error: cannot write the output: No space left on device\n"),
}


@pytest.mark.parametrize("gone", OUTPUT_GONE)
def test_output_that_cannot_be_written_ends_the_command_without_a_traceback(gone, images, reader_project, python_process):
    setup, stderr = OUTPUT_GONE[gone]
    code = (f"import os, sys; {setup}; from digit_reader import predict; "
            "sys.argv[0] = 'predict'; sys.exit(predict.exit_code_of_main())")
    result = python_process("-c", code, "--root", reader_project, *[images["seven.png"]] * 3, cwd=ROOT, timeout=120)
    assert (result.returncode, result.stderr) == (1, stderr)


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_without_the_line_model_the_cli_warns_once_and_reads_each_piece_with_the_classifier(
        tmp_path, images, reader_project, runtime, run_cli):
    import shutil

    root = tmp_path / "project"
    shutil.copytree(reader_project, root, ignore=shutil.ignore_patterns("numbers.*"))  # as after fetching cnn.* alone
    result = run_cli("--json", "--runtime", runtime, images["number-2021.png"], images["seven.png"], root=root)
    assert result.returncode == 0, result.stderr
    missing = root / "models" / ("numbers.onnx" if runtime == "onnx" else "numbers.pth")
    assert result.stderr.splitlines() == [f"warning: {missing} not found: run `make repro` (or `dvc pull`) first; until "
                                          "then each piece of ink is read as one digit by the classifier alone, so "
                                          "digits that touch are misread"]
    assert [json.loads(line)["digits"] for line in result.stdout.splitlines()] == ["2021", "7"]


def test_weights_that_do_not_fit_params_are_one_line(tmp_path, reader_project):
    import shutil

    shutil.copytree(reader_project, tmp_path / "project")
    shutil.copy(tmp_path / "project/models/mlp.pth", tmp_path / "project/models/cnn.pth")
    with pytest.raises(Exception, match=r"models/cnn.pth does not fit train.cnn in params.yaml .*make repro"):
        Reader("cnn", tmp_path / "project", runtime="torch")
    (tmp_path / "project/models/cnn.pth").write_bytes(b"junk" * 10)
    with pytest.raises(ModelError, match=r"^\S*models/cnn.pth is not a weights file \(torch.save writes a zip archive\); run"):
        Reader("cnn", tmp_path / "project", runtime="torch")
    with pytest.raises(ModelError, match=r"^unknown model 'vgg' \(known: reader, cnn, mlp\)$"):
        Reader("vgg", tmp_path / "project", runtime="onnx")


def test_the_line_models_torch_files_that_do_not_fit_are_one_line_as_the_classifiers(tmp_path, reader_project):
    """The same loading (digit_reader/runtimes.py's load_torch_weights), the same messages."""
    import shutil

    from digit_reader.numbers import LineModel
    from digit_reader.runtimes import TorchModel

    root = tmp_path / "project"
    shutil.copytree(reader_project, root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["numbers"]["net"]["widths"][-1] += 8
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ModelError, match=r"^\S*models/numbers.pth does not fit numbers.net in params.yaml \(net .*make repro"):
        LineModel(root, runtime="torch")
    (root / "data/processed/stats.json").write_text("{}")
    for load in (lambda: LineModel(root, runtime="torch"), lambda: TorchModel("cnn", root)):
        with pytest.raises(ModelError, match=r"stats.json: no valid mean and std, .*make repro"):
            load()


def test_a_digit_the_model_hesitates_on_is_flagged_uncertain():
    from digit_reader.reader import describe

    hesitant = describe(np.array([0.05, 0.6, 0.35] + [0] * 7), (0, 0, 1, 1), top=3)
    assert hesitant["digit"] == "1" and hesitant["uncertain"]
    assert [t["digit"] for t in hesitant["top"]] == [1, 2, 0]
    assert not describe(np.array([0.1, 0.9] + [0] * 8), (0, 0, 1, 1), top=3)["uncertain"]
    assert predict.plain("f.png", {"digits": "71", "uncertain": True, "confidence": 0.6, "predictions": [
        {"digit": "7", "uncertain": False}, {"digit": "1", "uncertain": True}]}) == "f.png: 71?  confidence 60.0% (uncertain)"


# --- the onnx runtime: models/<model>.onnx with onnxruntime, no torch ---

@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_both_runtimes_read_every_file_the_same(images, reader_project, model):
    torch_reader, onnx_reader = (Reader(model, reader_project, runtime) for runtime in ("torch", "onnx"))
    assert (torch_reader.model.runtime, onnx_reader.model.runtime) == ("torch", "onnx")
    assert torch_reader.model.arch == onnx_reader.model.arch
    for name, path in images.items():
        if name == "broken.png":
            continue
        expected, got = (reader.read(path.read_bytes(), top=10) for reader in (torch_reader, onnx_reader))
        assert got["digits"] == expected["digits"], name
        for ours, theirs in zip(got["predictions"], expected["predictions"]):
            assert [t["digit"] for t in ours["top"][:2]] == [t["digit"] for t in theirs["top"][:2]], name
            assert ours["box"] == theirs["box"]
            assert np.allclose([t["probability"] for t in ours["top"]], [t["probability"] for t in theirs["top"]], atol=1e-5)


def test_cli_with_the_onnx_runtime_never_imports_torch(images, reader_project, python_process):
    code = ("import json, sys; from digit_reader import predict; "
            "status = predict.main(sys.argv[1:]); print(json.dumps(['torch' in sys.modules, status]))")
    result = python_process("-c", code, "--root", reader_project, "--runtime", "onnx", "--json",
                            images["seven.png"], images["number-2021.png"])
    assert result.returncode == 0, result.stderr
    *answers, imported = result.stdout.splitlines()
    assert [json.loads(a)["digits"] for a in answers] == ["7", "2021"]
    assert json.loads(imported) == [False, 0]
    # the same run in torch does import it: the check above can fail
    torch_run = python_process("-c", code, "--root", reader_project, "--runtime", "torch", images["seven.png"])
    assert json.loads(torch_run.stdout.splitlines()[-1]) == [True, 0]


def test_a_missing_or_broken_onnx_file_is_one_line(tmp_path, images, reader_project, capsys):
    assert predict.main(["--root", str(tmp_path), "--runtime", "onnx", str(images["seven.png"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'models/reader.onnx'} not found: run `make repro` (or `dvc pull`) first"
    (tmp_path / "models").mkdir()
    (tmp_path / "models/reader.onnx").write_bytes((reader_project / "models/reader.onnx").read_bytes()[:500])
    assert predict.main(["--root", str(tmp_path), "--runtime", "onnx", str(images["seven.png"])]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith(f"error: {tmp_path / 'models/reader.onnx'} is not a model onnxruntime can run: ") and "make repro" in err


def test_an_onnx_file_of_another_shape_is_refused(tmp_path):
    import torch

    from src.onnx_export import InputSpec, to_onnx
    from digit_reader.reader import ModelError

    (tmp_path / "models").mkdir()
    (tmp_path / "models/cnn.onnx").write_bytes(to_onnx(torch.nn.Flatten(), InputSpec((2, 1, 28, 28))))
    with pytest.raises(ModelError, match=r"models/cnn.onnx maps .* not one N x 1 x 28 x 28 input of pixels to one "
                                         r"N x 10 \(or 11: several digits\) output"):
        Reader("cnn", tmp_path, "onnx")
