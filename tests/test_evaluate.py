import torch
from torch import nn

from src.data import translate
from src.evaluate import TTA_SHIFTS, tta_probs


def framed(n=4, fill=-1.0):
    """Random images with a two-pixel background frame, so a one-pixel shift loses nothing."""
    x = torch.full((n, 1, 28, 28), fill)
    x[:, :, 2:-2, 2:-2] = torch.randn(n, 1, 24, 24)
    return x


def test_translate_moves_the_image_and_fills_the_border():
    x = framed()
    assert torch.equal(translate(x, 1, 0, -1.0), torch.roll(x, 1, dims=-2))  # down
    assert torch.equal(translate(x, 0, -2, -1.0), torch.roll(x, -2, dims=-1))  # left
    assert torch.equal(translate(x, 0, 0, -1.0), x)
    assert (translate(torch.zeros(1, 1, 28, 28), 3, 3, fill=7.0)[0, 0, :3] == 7.0).all()


def test_tta_views_are_the_image_and_its_four_one_pixel_shifts():
    assert sorted(TTA_SHIFTS) == [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]


class InkCounter(nn.Module):
    """Logits from the total ink only: blind to where the digit sits."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 10)

    def forward(self, x):
        return self.linear((x + 1).sum(dim=(1, 2, 3))[:, None])


def test_tta_changes_nothing_for_a_shift_invariant_model():
    torch.manual_seed(0)
    model, x = InkCounter(), framed(8)
    plain = model(x).softmax(1)
    torch.testing.assert_close(tta_probs(model, x, -1.0, batch_size=3, autocast=False), plain)


def test_tta_averages_the_views_of_a_position_sensitive_model():
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), framed(8)
    views = [model(translate(x, dy, dx, -1.0)).softmax(1) for dy, dx in TTA_SHIFTS]
    probs = tta_probs(model, x, -1.0, batch_size=5, autocast=False)
    torch.testing.assert_close(probs, sum(views) / 5)
    assert not torch.allclose(probs, views[0])
