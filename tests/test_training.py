import pytest
import torch
import torchvision.transforms.functional as TF

from src.config import SEVERAL
from src.data import affine, random_affine, random_shift
from src.models import build_model
from src.training import fit, lr_factor, precision_name
from tests.conftest import toy_problem

CFG = {"epochs": 3, "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
       "schedule": "onecycle", "warmup": 0.2, "label_smoothing": 0.0, "shift": 1,
       "rotate": 0, "scale": 0, "precision": "auto"}


def test_random_shift_translates_each_image_and_keeps_its_shape():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    shifted = random_shift(x, 2, g, fill=-9.0)
    assert shifted.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-9.0)
    offsets = set()
    for image, original in zip(shifted, padded):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(image[0], original[0, dy : dy + 28, dx : dx + 28])]
        assert len(matches) == 1  # exactly one translation of the original, background-filled
        offsets.add(matches[0])
    assert len(offsets) > 10  # each image draws its own shift


def test_random_shift_zero_is_identity_and_seeded():
    x = torch.randn(8, 1, 28, 28)
    assert random_shift(x, 0, torch.Generator()) is x
    a = random_shift(x, 3, torch.Generator().manual_seed(1))
    b = random_shift(x, 3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def digit_like(n=3):
    x = torch.zeros(n, 1, 28, 28)
    x[:, 0, 5:9, 10:20] = 1.0  # an asymmetric "7"-ish stroke, so a wrong direction cannot pass
    x[:, 0, 5:22, 16:19] = 0.7
    return x


@pytest.mark.parametrize("degrees, zoom", [(90.0, 1.0), (30.0, 1.0), (-12.5, 1.0), (0.0, 1.2), (20.0, 0.9)])
def test_affine_matches_torchvision(degrees, zoom):
    x = digit_like(1)
    ours = affine(x, torch.tensor([degrees]), torch.tensor([zoom]))
    # torchvision's affine() turns clockwise for a positive angle; rotate() and ours anticlockwise
    reference = TF.affine(x, -degrees, [0, 0], zoom, [0.0], interpolation=TF.InterpolationMode.BILINEAR)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_affine_fills_the_uncovered_border_with_the_background():
    background = torch.full((2, 1, 28, 28), -0.42)
    out = affine(background, torch.tensor([45.0, -30.0]), torch.tensor([0.7, 0.8]), fill=-0.42)
    torch.testing.assert_close(out, background)


def test_random_affine_zero_is_identity_and_each_image_gets_its_own_seeded_transform():
    x = digit_like(16)
    assert random_affine(x, 0, 0, torch.Generator()) is x
    a = random_affine(x, 15, 0.1, torch.Generator().manual_seed(1))
    b = random_affine(x, 15, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert len({round(image.sum().item(), 3) for image in a}) == 16  # zoom changes the ink: all differ
    assert not torch.equal(a, x)


def test_onecycle_warms_up_then_decays_to_zero():
    factors = [lr_factor(s, 100, CFG) for s in range(100)]
    assert factors[0] == pytest.approx(1 / 20) and factors[19] == 1.0
    assert all(a >= b for a, b in zip(factors[19:], factors[20:]))
    assert factors[-1] == pytest.approx(1 / 80)
    assert lr_factor(50, 100, {**CFG, "schedule": "constant"}) == 1.0


@pytest.mark.parametrize("arch, net", [("mlp", {"hidden": [64]}), ("cnn", {"widths": [8, 16]})])
def test_fit_learns_a_toy_problem(arch, net):
    torch.manual_seed(0)
    x, y = toy_problem()
    model = build_model(arch, net)
    history = fit(model, x, y, CFG, seed=0, val=(x, y), progress=False)
    assert len(history) == 3 and history[-1].train_loss < history[0].train_loss
    assert history[-1].val_acc > 0.9


def test_fit_is_deterministic_for_a_seed():
    x, y = toy_problem(256)
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("cnn", {"widths": [4, 8]})
        fit(model, x, y, {**CFG, "epochs": 1}, seed=3, progress=False)
        weights.append(model.state_dict())
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


# Capability sets as torch.cpu.get_capabilities() reports them on the CPU kinds seen so far.
ZEN4 = {"avx512_f": True, "avx512_bf16": True, "amx_bf16": False}
ICE_LAKE = {"avx512_f": True, "avx512_bf16": False, "amx_bf16": False}
XEON_AMX = {"avx512_f": True, "avx512_bf16": True, "amx_bf16": True}


@pytest.mark.parametrize("capabilities, expected", [(ZEN4, "bf16"), (ICE_LAKE, "fp32"), (XEON_AMX, "bf16"),
                                                    ({"avx2": True}, "fp32")])
def test_auto_precision_follows_the_cpus_native_bf16(monkeypatch, capabilities, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    cpu = torch.device("cpu")
    assert precision_name("auto", cpu) == expected
    assert precision_name("fp32", cpu) == "fp32" and precision_name("bf16", cpu) == "bf16"  # explicit wins


def test_auto_precision_on_cuda_asks_the_gpu(monkeypatch):
    for supported, expected in [(True, "bf16"), (False, "fp32")]:
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        assert precision_name("auto", torch.device("cuda")) == expected


def test_a_model_with_init_starts_from_its_weights_and_writer_digits_join_its_training_set(tmp_path, monkeypatch, caplog):
    """src/train.py's `init`, `writer_digits` and `several_digits` (train.reader): with a learning
    rate too small to move anything, the trained weights are the init model's; the writers' digits
    follow MNIST's, and their pairs (SEVERAL) too only for a model with several digits."""
    import json
    import logging

    from src.weights import save_weights
    from src.train import train

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/processed").mkdir(parents=True)
    (tmp_path / "data/writers").mkdir()
    (tmp_path / "models").mkdir()
    generator = torch.Generator().manual_seed(0)
    for split, n in (("train", 64), ("val", 16)):
        torch.save({"images": torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator),
                    "labels": torch.randint(0, 10, (n,), generator=generator)}, tmp_path / f"data/processed/{split}.pt")
    (tmp_path / "data/processed/stats.json").write_text(json.dumps({"mean": 0.13, "std": 0.31}))
    torch.save({"images": torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8, generator=generator),
                "labels": torch.cat([torch.arange(32) % 10, torch.full((8,), SEVERAL)])}, tmp_path / "data/writers/digits.pt")
    net = {"widths": [4, 8, 8], "dropout": 0.0, "stem": "stride"}
    torch.manual_seed(1)
    start = build_model("cnn", net)
    save_weights(start, tmp_path / "models/cnn.pth")
    cfg = {"arch": "cnn", "net": net, "init": "cnn", "writer_digits": True, "epochs": 1, "batch_size": 16,
           "optimizer": "sgd", "lr": 1e-12, "momentum": 0.0, "weight_decay": 0.0, "schedule": "constant",
           "warmup": 0.0, "label_smoothing": 0.0, "shift": 0, "rotate": 0, "scale": 0, "precision": "fp32"}
    settings = {"seed": 0, "subset": 0, "nproc": 1}
    with caplog.at_level(logging.INFO, logger="train"):
        train("reader", cfg, settings, torch.device("cpu"))
    assert "96 training images" in caplog.text   # 64 of MNIST's and the writers' 32 digits, not their pairs
    trained = torch.load(tmp_path / "models/reader.pth", weights_only=True)
    for name, value in start.state_dict().items():
        if value.is_floating_point() and "running" not in name:   # batch-norm statistics move without a rate
            torch.testing.assert_close(trained[name], value)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="train"):
        train("several", {**cfg, "several_digits": True}, settings, torch.device("cpu"))
    assert "104 training images" in caplog.text   # and the 8 pairs
    several = torch.load(tmp_path / "models/several.pth", weights_only=True)
    assert several["classifier.weight"].shape[0] == 11
    torch.testing.assert_close(several["classifier.weight"][:10], start.state_dict()["classifier.weight"])
    train("scratch", {**cfg, "init": None, "writer_digits": False}, settings, torch.device("cpu"))
    scratch = torch.load(tmp_path / "models/scratch.pth", weights_only=True)
    assert any(not torch.equal(scratch[k], trained[k]) for k in trained if "running" not in k)
