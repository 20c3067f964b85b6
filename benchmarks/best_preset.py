"""The `best` preset over several seeds: how accurate one CNN gets, with TTA, and as an ensemble.

    python -m benchmarks.best_preset --seeds 3            # after `make repro` (reads data/processed)

Each seed trains the preset's CNN exactly as `train@cnn` would: fit() on the pipeline's 55,000
training images, validated on its 5,000 held-out ones, in the precision `auto` picks (bf16 where
native). The test set is scored once, after the last epoch (nothing is chosen on it), as the
evaluate stage does (in fp32 on a CPU; on a GPU, in bf16 where it is native): the single view, the TTA of the evaluate stage (the image and its
four one-pixel shifts), and the mean probabilities of all seeds so far (an ensemble), with and
without TTA. The per-epoch validation accuracy against elapsed training time is the run's
accuracy-per-minute curve. Results are written to benchmarks/results/<kind>-best-<date>.json when
the last seed is done, and the seeds done so far to a `.partial.json` beside it after each, so that
an interrupted run keeps what it measured and never replaces a finished file.
"""
import argparse
import time

import torch

from benchmarks.hardware import RESULTS_DIR, device_kind, hardware
from src.config import model_params
from src.data import load_split, load_stats, normalize
from src.evaluate import tta_probs
from src.fileio import write_json
from src.models import build_model
from src.train import load_training_data
from src.training import fit, predict, seed_everything, uses_bf16
from tools.presets import apply as apply_preset

METHOD = " ".join(__doc__.split("\n\n")[2].split())
DEFAULT_SEEDS = 3


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    errors = int((probs.argmax(1) != labels).sum())
    return {"accuracy": round(1 - errors / len(labels), 6), "errors": errors}


def train_one(cfg: dict, seed: int, device, data) -> tuple:
    """One seed of the preset: the trained model and its per-epoch curve."""
    (train_x, train_y), val, fill = data
    seed_everything(seed, device)
    model = build_model(cfg["arch"], cfg["net"])
    curve, elapsed = [], 0.0

    def log_epoch(stats):
        nonlocal elapsed
        elapsed += stats.seconds
        curve.append({"epoch": stats.epoch + 1, "seconds": round(elapsed, 1), "val_acc": round(stats.val_acc, 6)})
        print(f"  seed {seed} epoch {stats.epoch + 1}/{cfg['epochs']}: val {100 * stats.val_acc:.2f}%, "
              f"{elapsed:.0f} s", flush=True)

    fit(model, train_x, train_y, cfg, seed=seed, val=val, fill=fill, on_epoch=log_epoch, progress=False)
    return model, curve


def scored_probabilities(model, test_x, fill: float, device) -> dict:
    """Class probabilities on the test set, single view and TTA, as the evaluate stage scores them."""
    autocast = device.type == "cuda" and uses_bf16("auto", device)
    single = predict(model, test_x, autocast=autocast).float().softmax(1).cpu()
    return {"single": single, "tta": tta_probs(model, test_x, fill, 2000, autocast).float().cpu()}


def results_path(info: dict, preset: str, epochs: int = 0, seeds: int = DEFAULT_SEEDS):
    """benchmarks/results/<kind>-<preset>[-<epochs>-epochs][-<seeds>-seeds]-<date>.json: a schedule
    of other length than the preset's, or another count of seeds, is a run of its own, beside the
    preset's."""
    sized = (f"-{epochs}-epochs" if epochs else "") + (f"-{seeds}-seeds" if seeds != DEFAULT_SEEDS else "")
    return RESULTS_DIR / f"{device_kind(info)}-{preset}{sized}-{info['date']}.json"


def partial_path(out):
    """Where the seeds done so far are written while others remain: a run cut short (a GPU's
    time spent) keeps them, and a finished results file is never replaced by a run's first seed."""
    return out.with_name(out.stem + ".partial.json")


def run(preset: str, seeds: list[int], device, out=None, epochs: int = 0) -> dict:
    """Train and score every seed; `epochs` (0: the preset's) overrides the preset's schedule."""
    cfg = model_params(apply_preset(preset), "cnn")
    cfg = {**cfg, "epochs": epochs or cfg["epochs"]}
    info = hardware(device, cfg["precision"])
    out = out or results_path(info, preset, epochs, len(seeds))
    print(f"{info['cpu']} [{info['cpu_kind']}], torch {info['torch']}, {device}, {info['precision_ours']}: "
          f"`{preset}` ({cfg['net']['widths']}, {cfg['epochs']} epochs), seeds {seeds}", flush=True)
    data = load_training_data(device)
    mean, std = load_stats()
    test_images, labels = load_split("test")
    test_x = normalize(test_images.to(device), mean, std)
    report = {"hardware": info, "method": METHOD, "preset": preset, "cnn": cfg, "runs": []}
    summed = {"single": 0, "tta": 0}
    for seed in seeds:
        start = time.perf_counter()
        model, curve = train_one(cfg, seed, device, data)
        seconds = time.perf_counter() - start
        probs = scored_probabilities(model, test_x, data[2], device)
        summed = {view: summed[view] + probs[view] for view in probs}
        result = {"seed": seed, "train_seconds": round(curve[-1]["seconds"], 1), "wall_seconds": round(seconds, 1),
                  "test": accuracy(probs["single"], labels), "test_tta": accuracy(probs["tta"], labels), "curve": curve}
        report["runs"].append(result)
        report["ensemble"] = {"seeds": [r["seed"] for r in report["runs"]],
                              "test": accuracy(summed["single"], labels), "test_tta": accuracy(summed["tta"], labels)}
        singles = [r["test"]["accuracy"] for r in report["runs"]]
        report["test_mean"] = round(sum(singles) / len(singles), 6)
        write_json(partial_path(out), report)
        print(f"seed {seed}: {result['train_seconds']} s of training; test {100 * result['test']['accuracy']:.2f}%, "
              f"TTA {100 * result['test_tta']['accuracy']:.2f}%; ensemble of {len(singles)}: "
              f"{100 * report['ensemble']['test']['accuracy']:.2f}%, TTA {100 * report['ensemble']['test_tta']['accuracy']:.2f}%",
              flush=True)
    write_json(out, report)
    partial_path(out).unlink()
    print(f"mean single-model test accuracy {100 * report['test_mean']:.2f}% over {len(seeds)} seeds; wrote {out}")
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds 0..N-1")
    parser.add_argument("--preset", default="best", help="a preset of presets/ (default: best)")
    parser.add_argument("--epochs", type=int, default=0, help="train this many epochs instead of the preset's (0: the preset's)")
    args = parser.parse_args()
    run(args.preset, list(range(args.seeds)), torch.device(args.device), epochs=args.epochs)


if __name__ == "__main__":
    from src.cli import run_stage

    run_stage(main)
