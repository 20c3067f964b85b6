"""A grid of images, each with its caption, written as one PNG: the evaluate stages' galleries of
misread test digits (src/evaluate.py) and numbers (src/evaluate_numbers.py)."""
from pathlib import Path

from src.fileio import atomic_path


def save_gallery(images, captions: list[str], title: str, path: Path, cols: int, cell: tuple[float, float]) -> None:
    """`images` (2-D arrays, white ink on black), drawn dark on light, `cols` to a row, each in a
    `cell` of (width, height) inches, under `title`; written to `path` whole or not at all."""
    import matplotlib

    matplotlib.use("Agg")  # here, not at import: importing a stage must not change a notebook's backend
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(captions) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell[0], rows * cell[1]), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image, cmap="gray_r")
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
