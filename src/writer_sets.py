"""The other-writers benchmark: fixed sets of digits and numbers by the writers of one split.

Each set holds `count` images, each with its true digits and its own seed, so that a larger
`count` keeps a set's first items; `writer_index` says which of the split's writers
(src/writers.py) wrote each. The sets, as issue 26 defines them:

- single: one digit, the ten in turn;
- spaced / touching: 4-digit numbers whose digits stand apart / whose strokes meet;
- paper_spaced / paper_touching: the same, photographed (uneven light, tilt, blur, noise, JPEG);
- pair_thick: two touching digits alone, written with a marker;
- paper_single: single digits photographed, the ten in turn;
- ruled / paper_ruled: spaced 4-digit numbers on ruled paper (half of them with a margin line),
  as written and photographed;
- desk: spaced 4-digit numbers on a sheet lying askew on a desk, photographed with the desk
  around it;
- askew: spaced 4-digit numbers whose writing runs 5-15 degrees uphill or downhill, photographed;
- corner: spaced 4-digit numbers on a sheet photographed close, the desk along one or two sides;
- askew_touching: touching 4-digit numbers whose writing runs 5-15 degrees uphill or downhill,
  photographed;
- edge: spaced 4-digit numbers on a sheet photographed with its edge just inside the view, a
  sliver of the desk along one side;
- squared / paper_squared: spaced 4-digit numbers on squared paper, as written and photographed
  (the photo cut to the view inside its turn, as a camera sees the grid go on)
(each new set last, so that the sets before it keep their seeds).
"""
import numpy as np

from src.parallel import made_in_order
from src.writers import (askew, at_a_corner, at_the_sheets_edge, on_a_desk, photographed, ruled, squared,
                         within_the_turn, write, writer_of)

SETS = {  # name: (digits, gap, pen, photographed, the page: see PAGES)
    "single": (1, "spaced", None, False, "plain"),
    "spaced": (4, "spaced", None, False, "plain"),
    "touching": (4, "touching", None, False, "plain"),
    "paper_spaced": (4, "spaced", None, True, "plain"),
    "paper_touching": (4, "touching", None, True, "plain"),
    "pair_thick": (2, "touching", "marker", False, "plain"),
    "paper_single": (1, "spaced", None, True, "plain"),
    "ruled": (4, "spaced", None, False, "ruled"),
    "paper_ruled": (4, "spaced", None, True, "ruled"),
    "desk": (4, "spaced", None, True, "desk"),
    "askew": (4, "spaced", None, True, "askew"),
    "corner": (4, "spaced", None, False, "corner"),   # photographed by the page itself
    "askew_touching": (4, "touching", None, True, "askew"),
    "edge": (4, "spaced", None, False, "edge"),   # photographed by the page itself
    "squared": (4, "spaced", None, False, "squared"),
    "paper_squared": (4, "spaced", None, False, "photographed squared"),   # cut inside its turn
}
PAGES = {"plain": lambda image, rng: image, "ruled": ruled, "desk": on_a_desk, "askew": askew, "corner": at_a_corner,
         "edge": at_the_sheets_edge, "squared": squared,
         "photographed squared": lambda image, rng: within_the_turn(photographed(squared(image, rng), rng))}


def writer_index(name: str, i: int, writers: int) -> int:
    """The writer of item i: single digits come ten by ten (0-9) from one writer, numbers one each."""
    return (i // 10 if SETS[name][0] == 1 else i) % writers


def writer_sets(counts: dict, split: str, writers: int, seed: int, processes: int = 1) -> dict:
    """{name: [(PIL image, digits)]}: `count` items of each set `name` of `counts`, by the writers
    of `split`, drawn on `processes` processes (src/parallel.py)."""
    order = [(name, i) for name, count in counts.items() for i in range(count)]
    made = iter(made_in_order(_item_of, len(order), (order, split, writers, seed), processes))
    return {name: [next(made) for _ in range(count)] for name, count in counts.items()}


def sets_of(cfg: dict, split: str, processes: int = 1) -> dict:
    """Every set of SETS by the writers of `split`, as the `writers` section of params.yaml sizes
    them (`single` items in the single-digit sets, `per_set` in the others)."""
    counts = {name: cfg["single"] if SETS[name][0] == 1 else cfg["per_set"] for name in SETS}
    return writer_sets(counts, split, cfg["writers"], cfg["seed"], processes)


def _item(name: str, i: int, split: str, writers: int, seed: int) -> tuple:
    """Item i of set `name`: (PIL image, digits), from its own seed."""
    length, gap, pen, photo, page = SETS[name]
    rng = np.random.default_rng([seed, list(SETS).index(name), i])
    digits = str(i % 10) if length == 1 else "".join(map(str, rng.integers(0, 10, length)))
    image = write(writer_of(split, writer_index(name, i, writers), pen=pen), digits, gap, rng)
    image = PAGES[page](image, rng)
    return (photographed(image, rng) if photo else image), digits


def _item_of(k: int, job: tuple) -> tuple:
    order, split, writers, seed = job
    return _item(*order[k], split, writers, seed)
