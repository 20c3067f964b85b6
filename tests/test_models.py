import zipfile

import pytest
import torch
from torch import nn

from src.config import ARCH_NAMES
from src.errors import PipelineError
from src.models import ARCHS, CNNNet, build_model, load_trained, model_of, start_from
from src.weights import WeightsMismatch, count_parameters, load_weights, save_weights


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_maps_a_batch_to_ten_logits(arch):
    model = build_model(arch)
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    several = model_of({"arch": arch, "net": {}, "several_digits": True})   # the reader's classifier: several digits too
    assert several(torch.randn(5, 1, 28, 28)).shape == (5, 11)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_model_with_several_digits_starts_from_a_ten_digit_model_with_its_own_eleventh_output(arch, tmp_path):
    torch.manual_seed(0)
    ten = build_model(arch)
    save_weights(ten, tmp_path / "ten.pth")
    torch.manual_seed(1)
    fresh = model_of({"arch": arch, "net": {}, "several_digits": True})
    own = {k: v.clone() for k, v in fresh.state_dict().items()}
    started = start_from(fresh, tmp_path / "ten.pth").state_dict()
    for key, value in ten.state_dict().items():
        if started[key].shape == value.shape:
            assert torch.equal(started[key], value), key
        else:   # the output layer: the digits' rows are the ten-digit model's, the eleventh its own
            assert torch.equal(started[key][:10], value) and torch.equal(started[key][10:], own[key][10:]), key
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(fresh.eval()(x)[:, :10], ten.eval()(x), atol=1e-5)
    with pytest.raises(WeightsMismatch, match=r"ten.pth does not fit the model params.yaml builds: .* is \d"):   # any other difference
        start_from(model_of({"arch": "mlp", "net": {"hidden": [7]}}), tmp_path / "ten.pth") if arch == "mlp" else \
            start_from(build_model(arch, classes=9), tmp_path / "ten.pth")


@pytest.mark.parametrize("arch", ARCHS)
def test_a_trained_model_is_rebuilt_with_the_outputs_its_weights_have(arch, tmp_path):
    """Evaluation, export and the reader read `arch` and `net` only: the file says whether the model
    learned several digits."""
    for outputs in (10, 11):
        save_weights(build_model(arch, classes=outputs), tmp_path / f"{outputs}.pth")
        assert load_trained(arch, {}, tmp_path / f"{outputs}.pth")(torch.randn(2, 1, 28, 28)).shape == (2, outputs)
    save_weights(build_model(arch, classes=12), tmp_path / "12.pth")
    with pytest.raises(WeightsMismatch, match=r"12.pth does not fit .*: \S+ is 12 .*there, 10 .*here$"):   # neither: refused, not rebuilt to fit
        load_trained(arch, {}, tmp_path / "12.pth")
    weights = build_model(arch, classes=11).state_dict()
    torch.save(dict(sorted(weights.items())), tmp_path / "sorted.pth")   # the output layer found by name, not place
    assert load_trained(arch, {}, tmp_path / "sorted.pth")(torch.randn(2, 1, 28, 28)).shape == (2, 11)
    torch.save({}, tmp_path / "empty.pth")
    with pytest.raises(WeightsMismatch, match=r"empty.pth does not fit the model params.yaml builds: no \S+, \S+ and \d+ more$"):
        load_trained(arch, {}, tmp_path / "empty.pth")


def test_mlp_layers_follow_params():
    model = build_model("mlp", {"hidden": [64, 32], "dropout": 0.5})
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 64), (64, 32), (32, 10)]
    assert all(m.p == 0.5 for m in model.modules() if isinstance(m, nn.Dropout))
    assert count_parameters(model) == 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10


def test_cnn_width_follows_params():
    model = build_model("cnn", {"widths": [8, 16], "dropout": 0.0})
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(1, 8), (8, 16)]
    assert model.classifier.in_features == 16 * 7 * 7
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cnn_stride_stem_downsamples_by_striding_not_pooling():
    pooled, strided = (build_model("cnn", {"widths": [16, 16, 48], "stem": stem}) for stem in ("pool", "stride"))
    first_pooled, first_strided = pooled.features[0], strided.features[0]
    assert isinstance(first_pooled[1], nn.MaxPool2d) and first_pooled[0].stride == (1, 1)
    assert first_strided[0].stride == (2, 2) and not any(isinstance(m, nn.MaxPool2d) for m in first_strided)
    assert repr(pooled.features[1:]) == repr(strided.features[1:])  # the rest is unchanged
    x = torch.randn(2, 1, 28, 28)
    assert strided.features[0](x).shape == pooled.features[0](x).shape == (2, 16, 14, 14)
    assert count_parameters(strided) == count_parameters(pooled)


def test_params_schema_knows_exactly_the_architectures():
    assert set(ARCH_NAMES) == set(ARCHS)


def test_seed_cnn_is_the_notebooks_cnnnet_exactly():
    model = build_model("seed_cnn")
    assert isinstance(model, CNNNet)
    layers = {name: module for name, module in model.named_children()}
    assert list(layers) == ["conv1", "conv2", "pool", "dropout", "fc1", "fc2"]
    assert repr(layers["conv1"]) == repr(nn.Conv2d(1, 32, 3, padding=1))
    assert repr(layers["conv2"]) == repr(nn.Conv2d(32, 64, 3, padding=1))
    assert repr(layers["pool"]) == repr(nn.MaxPool2d(2, 2))
    assert repr(layers["dropout"]) == repr(nn.Dropout(0.25))
    assert repr(layers["fc1"]) == repr(nn.Linear(64 * 14 * 14, 128))
    assert repr(layers["fc2"]) == repr(nn.Linear(128, 10))
    assert count_parameters(model) == (32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 14 * 14 * 128 + 128) + (128 * 10 + 10)


def test_seed_cnn_forward_is_the_notebooks():
    model = build_model("seed_cnn").eval()
    x = torch.randn(3, 1, 28, 28)
    import torch.nn.functional as F

    h = model.pool(F.relu(model.conv2(F.relu(model.conv1(x)))))
    expected = model.fc2(F.relu(model.fc1(torch.flatten(h, 1))))
    torch.testing.assert_close(model(x), expected)


def test_weights_round_trip(tmp_path):
    model = build_model("cnn", {"widths": [4, 8, 8]})
    save_weights(model, tmp_path / "m.pth")
    loaded = load_weights(build_model("cnn", {"widths": [4, 8, 8]}), tmp_path / "m.pth")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


class RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_file_that_is_not_a_weights_file_is_one_line(tmp_path):
    save_weights(build_model("mlp"), tmp_path / "whole.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "whole.pth").read_bytes()[:-5000])   # a copy cut short
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(PipelineError, match=r"text.pth is not a weights file \(torch.save writes a zip archive\)$"):
        load_weights(build_model("mlp"), tmp_path / "text.pth")
    with pytest.raises(PipelineError, match=r"cut.pth is not a weights file \(torch.save writes a zip archive\)$"):
        load_weights(build_model("mlp"), tmp_path / "cut.pth")
    with zipfile.ZipFile(tmp_path / "other.pth", "w") as archive:   # a zip archive, but not torch.save's
        archive.writestr("notes.txt", "hello")
    with pytest.raises(PipelineError, match=r"other.pth is not a readable weights file: \S.*$"):
        load_weights(build_model("mlp"), tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match=r"none.pth not found: run `dvc repro` first"):
        load_weights(build_model("mlp"), tmp_path / "none.pth")


def test_a_pth_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"weight": RunsCode()}, tmp_path / "evil.pth")
    with pytest.raises(PipelineError, match=r"evil.pth holds more than tensors, which weights-only loading refuses .*: Weights only load failed"):
        load_weights(build_model("mlp"), tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()
