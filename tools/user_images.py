"""MNIST's digits made to look like a user's images, for the tests and the reader's benchmark.

- `users_version`: one digit as a user might photograph it;
- `number_on_paper`: a number composed by src/number_images.py (white ink on black, 28 rows)
  written dark on white paper and enlarged, as a scan of it would be; `composed_on_paper`: each
  number of such a batch.
"""
import numpy as np
from PIL import Image


def users_version(digit: np.ndarray, rng) -> Image.Image:
    """An MNIST digit (uint8 28 x 28) as a user might photograph it: enlarged 2-6x, dark ink on a
    light paper of some grey, off-centre on a larger page, with sensor noise."""
    size = round(28 * rng.uniform(2, 6))
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    height, width = size + rng.integers(20, 200, 2)
    page = np.full((height, width), rng.uniform(0.75, 1.0), np.float32)
    y, x = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    page[y:y + size, x:x + size] -= np.clip(big, 0, 1) * rng.uniform(0.6, 0.9)
    page += rng.normal(0, 0.03, page.shape)
    return Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8))


def number_on_paper(line: np.ndarray, scale: float = 3.0, margin: int = 12) -> Image.Image:
    """A composed line (uint8, white ink on black) as dark ink on white paper, `margin` pixels
    around it, enlarged `scale` times."""
    image = Image.fromarray(255 - np.pad(line, margin))
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)


def composed_on_paper(numbers) -> list[Image.Image]:
    """Each number of a batch composed by src/number_images.py (its `Numbers`), cut to its own
    width, written on paper by number_on_paper."""
    return [number_on_paper(line[:, :int(width)].numpy()) for line, width in zip(numbers.images, numbers.widths)]
