import copy
import os
import shutil

import pytest
import yaml

from src.config import ParamsError, load_params, validate
from tests.conftest import ROOT

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_committed_params_are_valid():
    assert load_params(ROOT / "params.yaml") == PARAMS


def with_change(path, value):
    params = copy.deepcopy(PARAMS)
    *parents, key = path.split(".")
    section = params
    for parent in parents:
        section = section[parent]
    if value is KeyError:
        del section[key]
    else:
        section[key] = value
    return params


@pytest.mark.parametrize("path, value, message", [
    ("train.cnn.arch", "resnet", "train.cnn.arch must be one of mlp, cnn, seed_cnn, got 'resnet'"),
    ("train.cnn.epochs", -1, "train.cnn.epochs must be an integer >= 1, got -1"),
    ("train.cnn.epochs", 2.5, "train.cnn.epochs must be an integer >= 1, got 2.5"),
    ("train.cnn.epochs", True, "train.cnn.epochs must be an integer >= 1, got True"),
    ("train.mlp.lr", "fast", "train.mlp.lr must be a positive number, got 'fast'"),
    ("train.mlp.lr", "1e-3", "train.mlp.lr must be a positive number, got '1e-3'"),
    ("train.mlp.lr", float("inf"), "train.mlp.lr must be a positive number, got inf"),
    ("train.cnn.shift", 20, "train.cnn.shift must be an integer 0..8, got 20"),
    ("train.cnn.rotate", -10, "train.cnn.rotate must be a number in [0, 180], got -10"),
    ("train.cnn.scale", 1.0, "train.cnn.scale must be a number in [0, 1), got 1.0"),
    ("train.cnn.net.stem", "conv", "train.cnn.net.stem must be one of pool, stride, got 'conv'"),
    ("evaluate.tta", "yes", "evaluate.tta must be true or false, got 'yes'"),
    ("train.device", "tpu", "train.device must be one of auto, cpu, cuda, got 'tpu'"),
    ("train.nproc", 0, "train.nproc must be an integer >= 1, got 0"),
    ("train.nproc", 3, "train.mlp.batch_size (128) must be a multiple of train.nproc (3)"),
    ("data.val_size", -5, "data.val_size must be an integer 0..30000, got -5"),
    ("train.cnn.learning_rate", 0.1, "unknown key train.cnn.learning_rate"),
    ("train.cnn.net.depth", 3, "unknown key train.cnn.net.depth"),
    ("train.cnn.net.widths", [], "train.cnn.net.widths must be a non-empty list of positive integers, got []"),
    ("train.cnn.net", [1], "train.cnn.net must be a mapping, got [1]"),
    ("evaluate.colour", "red", "unknown key evaluate.colour"),
    ("train.cnn.epochs", KeyError, "missing key train.cnn.epochs"),
    ("train.reader.writer_digits", False, "train.reader.several_digits needs train.reader.writer_digits: true"),
    ("writer_digits.pairs", 0, "train.reader.several_digits needs writer_digits.pairs > 0, got 0"),
    ("writer_digits.pairs_marker", 1.5, "writer_digits.pairs_marker must be a number in [0, 1], got 1.5"),
])
def test_invalid_params_name_the_key_and_value(path, value, message):
    with pytest.raises(ParamsError) as error:
        validate(with_change(path, value), "params.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_seed_cnn_takes_no_net_arguments():
    params = with_change("train.cnn.arch", "seed_cnn")
    with pytest.raises(ParamsError, match="unknown key train.cnn.net.widths"):
        validate(params)
    params["train"]["cnn"]["net"] = {}
    params["train"]["reader"].update(arch="seed_cnn", net={})   # it starts from cnn's weights
    validate(params)


def test_a_model_that_starts_from_another_must_be_built_as_it_is():
    params = with_change("train.cnn.net.widths", [16, 32, 64])
    with pytest.raises(ParamsError, match=r"train.reader.net .* must equal train.cnn.net") as error:
        validate(params)
    assert "\n" not in str(error.value)
    params["train"]["reader"]["net"]["widths"] = [16, 32, 64]
    validate(params)
    for init, message in (("reader", "must name another model section"), ("vgg", "must name another model section"),
                          (3, "train.reader.init must be a string"),
                          ("mlp", r"train.reader.init can only be cnn \(or absent\), whose weights \(models/cnn.pth\) "
                                  r"the stage train_reader declares; got 'mlp'")):
        with pytest.raises(ParamsError, match=message):
            validate(with_change("train.reader.init", init))
    validate(with_change("train.reader.init", KeyError))   # optional: a model trained from scratch


@pytest.mark.parametrize("key, value", [("init", "mlp"), ("writer_digits", True), ("several_digits", True)])
def test_only_the_readers_section_reads_other_stages_files(key, value):
    """The stage train (train.mlp, train.cnn) does not declare models/<init>.pth nor
    data/writers/digits.pt: only train_reader does."""
    with pytest.raises(ParamsError, match=rf"train.cnn.{key} \({value!r}\) is for train.reader only") as error:
        validate(with_change(f"train.cnn.{key}", value))
    assert "\n" not in str(error.value)


def test_an_override_rewrites_only_its_own_line_of_params_yaml(tmp_path):
    """`dvc exp run -S` rewrites params.yaml through DVC's YAML round trip, which writes every list
    as a block; params.yaml keeps its lists that way, so that an experiment's params.yaml differs
    from the baseline's in the overridden line alone."""
    from dvc.utils.hydra import apply_overrides

    edited = tmp_path / "params.yaml"
    shutil.copyfile(ROOT / "params.yaml", edited)
    apply_overrides(edited, ["train.mlp.epochs=1"])
    before, after = (ROOT / "params.yaml").read_text().splitlines(), edited.read_text().splitlines()
    assert len(before) == len(after) and [(a, b) for a, b in zip(before, after) if a != b] == [
        ("    epochs: 10", "    epochs: 1")]


def test_unreadable_yaml_is_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML") as error:
        load_params(tmp_path / "params.yaml")
    assert "\n" not in str(error.value)


def test_a_stage_fails_with_one_line_and_writes_nothing(tmp_path, python_process):
    bad = with_change("train.cnn.epochs", "ten")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    result = python_process("-m", "src.train", "cnn", cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: params.yaml: train.cnn.epochs must be an integer >= 1, got 'ten' (str)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
