"""The line model's spread over training draws: what its recipe reads, not what one draw reads.

    python -m benchmarks.line_model_draws [--seeds 2] [--first-seed 0] [--steps N] [--per-kind 3000] [--out FILE]

The stage train_numbers trains one draw (`numbers.train.seed`, and the CPU kind's rounding in bf16)
and evaluate_numbers reads it on 1,000 test numbers a kind, where one standard error is about 0.6
points: a target such as tests/test_committed_results.py's 96% of touching numbers can be met by one
draw of a recipe and missed by another
(benchmarks/notes/hardware.md#2026-12-06-thirty-second-session-zen-4s-draw-misses-the-line-models-96-target).
This trains the committed recipe (params.yaml's `numbers` section, the stage's own data, model and
training loop) from `--seeds` seeds in turn and reads each, greedily as evaluate_numbers does, on:

- the stage's own test numbers (`numbers.evaluate`: its seed and `per_kind`);
- `--per-kind` test numbers a kind from the same seeds, for a narrower estimate;
- as many validation numbers a kind (the split MNIST's training writers also wrote, so it reads
  better than the test split's other writers).

After `make repro`'s `preprocess` and `writer_lines` (it reads data/processed and data/writers).
Each draw takes the stage's training time. Prints each draw, the mean and the CPU, and writes
benchmarks/results/line-draws-<cpu kind>.json.
"""
import argparse
import datetime

import numpy as np
import torch

from benchmarks.hardware import RESULTS_DIR, cpu_kind, cpu_name, git_commit, sized_variant
from src.config import load_params
from src.data import load_split, load_stats
from src.fileio import write_json
from src.number_images import kind_sets, load_line_pool
from src.number_model import best_paths, build_line_model, line_logits, score
from src.train_numbers import WRITER_LINES, fit_line_model
from src.training import precision_name, resolve_device, seed_everything

VALIDATION_SEED = 100   # the validation numbers' seeds (one a kind, from here): apart from the stage's own


def exact_by_kind(model, sets: dict, mean: float, std: float) -> dict:
    """{kind: the share of its numbers read exactly}, greedily, in fp32 as evaluate_numbers reads."""
    read = {kind: best_paths(line_logits(model, numbers, mean, std), numbers.widths) for kind, numbers in sets.items()}
    return {kind: round(score(read[kind], numbers.labels)["exact"], 6) for kind, numbers in sets.items()}


def as_text(read: dict) -> str:
    """exact_by_kind's shares of each set, on one line."""
    return "; ".join(f"{name}: " + " / ".join(f"{kind} {100 * share:.2f}%" for kind, share in kinds.items())
                     for name, kinds in read.items())


def one_draw(seed: int, params: dict, data: dict, device: torch.device) -> tuple[dict, float]:
    """The stage's training from `seed`, then its readings of each of `data["sets"]`."""
    cfg = {**params["numbers"]["train"], "seed": seed}
    seed_everything(seed, device)
    model = build_line_model(params["numbers"]["net"]).to(device, memory_format=torch.channels_last)
    seconds = fit_line_model(model, *data["train"], None, cfg, params["numbers"]["images"], data["mean"], data["std"],
                             device, writer_lines=data["writer_lines"])
    model = model.cpu().eval()
    return {name: exact_by_kind(model, sets, data["mean"], data["std"]) for name, sets in data["sets"].items()}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="training steps (default: numbers.train.steps)")
    parser.add_argument("--per-kind", type=int, default=3000)
    parser.add_argument("--out")
    args = parser.parse_args()
    params = load_params()
    if args.steps:
        params["numbers"]["train"]["steps"] = args.steps
    device = resolve_device(params["train"]["device"])
    evaluate = params["numbers"]["evaluate"]
    mean, std = load_stats()
    test, val = load_split("test"), load_split("val")
    data = {"train": load_split("train"), "mean": mean, "std": std, "writer_lines": load_line_pool(WRITER_LINES),
            "sets": {"stage's test": kind_sets(*test, evaluate),
                     f"test, {args.per_kind} a kind": kind_sets(*test, {**evaluate, "per_kind": args.per_kind}),
                     f"validation, {args.per_kind} a kind": kind_sets(*val, {"per_kind": args.per_kind,
                                                                              "seed": VALIDATION_SEED})}}
    precision = precision_name(params["numbers"]["train"]["precision"], device)
    print(f"{cpu_name()} ({cpu_kind()}), {device}, {precision}; {params['numbers']['train']['steps']} steps a draw")
    draws = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        read, seconds = one_draw(seed, params, data, device)
        draws.append({"seed": seed, "train_time_s": round(seconds, 1), **read})
        print(f"seed {seed} ({seconds:.0f} s): {as_text(read)}", flush=True)
    mean_read = {name: {kind: round(float(np.mean([d[name][kind] for d in draws])), 6) for kind in data["sets"][name]}
                 for name in data["sets"]}
    print(f"mean: {as_text(mean_read)}")
    variant = sized_variant(parser, args, ["seeds", "first_seed", "steps", "per_kind"])
    out = args.out or RESULTS_DIR / f"line-draws-{cpu_kind()}{variant}.json"
    write_json(out, {"date": datetime.date.today().isoformat(), "commit": git_commit(), "cpu": cpu_name(),
                     "cpu_kind": cpu_kind(), "device": str(device), "precision": precision,
                     "steps": params["numbers"]["train"]["steps"], "draws": draws, "mean": mean_read})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
