import torch
import torchvision.transforms as T
import pytest

from src.data import load_stats, normalize
from src.checksums import ChecksumError
from src.errors import PipelineError
from src.preprocess import pixel_stats, read_raw, split_train_val
from tests.conftest import copy_raw


def test_split_is_stratified_disjoint_and_seeded():
    labels = torch.arange(1000) % 10
    images = torch.arange(1000, dtype=torch.int32).view(-1, 1, 1).expand(-1, 2, 2).to(torch.uint8)
    ids = torch.arange(1000)
    (_, train_y), (_, val_y) = split_train_val(images, labels, 100, seed=0)
    assert len(train_y) == 900 and len(val_y) == 100
    assert torch.bincount(val_y).tolist() == [10] * 10  # every class keeps its share
    (train_a, _), (val_a, _) = split_train_val(ids.view(-1, 1, 1), labels, 100, seed=0)
    (_, _), (val_b, _) = split_train_val(ids.view(-1, 1, 1), labels, 100, seed=0)
    (_, _), (val_c, _) = split_train_val(ids.view(-1, 1, 1), labels, 100, seed=1)
    assert torch.equal(val_a, val_b) and not torch.equal(val_a, val_c)
    assert set(train_a.flatten().tolist()).isdisjoint(val_a.flatten().tolist())
    assert len(set(train_a.flatten().tolist()) | set(val_a.flatten().tolist())) == 1000


def test_pixel_stats_match_a_direct_computation():
    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = pixel_stats(images)
    flat = images.double().flatten() / 255
    assert mean == pytest.approx(flat.mean().item()) and std == pytest.approx(flat.std(correction=0).item())


def test_stats_are_read_back_and_a_damaged_file_is_one_line(tmp_path):
    (tmp_path / "stats.json").write_text('{"mean": 0.1307, "std": 0.3081}')
    assert load_stats(tmp_path) == (0.1307, 0.3081)
    for text, problem in (('{"mean": 0.13', "JSONDecodeError"), ("{}", "KeyError: 'mean'"), ('{"mean": 1, "std": null}', "TypeError")):
        (tmp_path / "stats.json").write_text(text)
        with pytest.raises(PipelineError, match=rf"stats.json: no valid mean and std, as the preprocess stage writes them \({problem}"):
            load_stats(tmp_path)


def test_normalisation_matches_torchvision_transforms(raw_mnist):
    """Our vectorised normalisation equals torchvision's ToTensor + Normalize, image by image."""
    images, _ = read_raw("t10k", raw_mnist)
    mean, std = pixel_stats(images)
    transform = T.Compose([T.ToTensor(), T.Normalize((mean,), (std,))])
    ours = normalize(images[:64], mean, std)
    reference = torch.stack([transform(img.numpy()) for img in images[:64]])
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_training_split_statistics_are_close_to_the_folklore_values(raw_mnist):
    images, labels = read_raw("train", raw_mnist)
    (train_x, _), _ = split_train_val(images, labels, 5000, seed=0)
    mean, std = pixel_stats(train_x)
    assert mean == pytest.approx(0.1307, abs=2e-3) and std == pytest.approx(0.3081, abs=2e-3)


def test_a_corrupt_raw_file_is_never_read(raw_mnist, tmp_path):
    copy_raw(raw_mnist, tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF  # one flipped byte: still a well-formed IDX file
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.*expected 2646ac647ad5339dbf082846283269ea"):
        read_raw("t10k", tmp_path)
