"""Time to accuracy: the notebook's recipe, the fastest public recipe, and ours, in one process.

    python -m benchmarks.time_to_accuracy --device cpu --seeds 5

Every recipe trains on the same 60,000 training images and is scored on the same 10,000 test
images, on the same device, after the same warm-up; each runs its fixed schedule (nothing stops
early, and the test set picks nothing). Training time is measured around the training steps
alone (per-epoch test evaluations of the seed recipe are excluded); the data is in memory, and
the seed recipe's timer includes its DataLoader's per-image ToTensor and Normalize, as published.
It then measures the inference speed of the pipeline's default CNN (params.yaml's train.cnn) and
of ours: large-batch throughput and batch-1 latency, as the evaluate stage does.
The competitors train in fp32, as published; ours in the precision `auto` picks on this device
(bf16 where it is native, else fp32). Results are printed and written to
benchmarks/results/<device kind>-<date>.json: one file per CPU (or GPU) kind, never mixed.
"""
import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.hardware import RESULTS_DIR, device_kind, hardware, sized_variant
from src.config import load_params
from src.data import normalize
from src.evaluate import measure_speed
from src.fileio import RAW_DIR, write_json
from src.models import CNNNet, build_model
from src.preprocess import pixel_stats, read_raw
from tools.presets import apply as apply_preset
from src.training import evaluate, fit
from src.weights import count_parameters

METHOD = " ".join(__doc__.split("\n\n")[2].split())  # the docstring's paragraph on how it measures
FOLKLORE_MEAN, FOLKLORE_STD = 0.1307, 0.3081


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Timer:
    """Accumulates the seconds spent inside `with timer:` blocks (device work included)."""

    def __init__(self, device):
        self.device, self.seconds = device, 0.0

    def __enter__(self):
        sync(self.device)
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        sync(self.device)
        self.seconds += time.perf_counter() - self.start


# --- 1. seed: the original notebook's recipe --------------------------------------------------

def train_seed(data, seed, device, max_steps=None):
    """torchvision DataLoader (ToTensor + Normalize), batch 64 shuffled, CNNNet, Adam 1e-3, 5 epochs."""
    import torchvision.transforms as T
    from torch.utils.data import DataLoader
    from torchvision.datasets import MNIST

    torch.manual_seed(seed)
    transform = T.Compose([T.ToTensor(), T.Normalize((FOLKLORE_MEAN,), (FOLKLORE_STD,))])
    dataset = MNIST(root=str(data["raw_dir"].parents[1]), train=True, transform=transform, download=False)
    loader = DataLoader(dataset, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    model = CNNNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    timer, steps = Timer(device), 0
    for _ in range(5):
        model.train()
        with timer:
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
                if steps == max_steps:
                    break
        if steps == max_steps:
            break
        evaluate(model, data["seed_test_x"], data["test_y"])  # the notebook evaluated every epoch; not timed
    return model, timer.seconds


# --- 2. public fastest: tuomaso/train_mnist_fast, written from its description ------------------

def public_fastest_net():
    return nn.Sequential(
        nn.Conv2d(1, 24, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(24, 32, 3), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(800, 256), nn.ReLU(), nn.Linear(256, 10),
    )


def train_public_fastest(data, seed, device, max_steps=None):
    """Adam lr 0.01, betas (0.7, 0.9), OneCycleLR without momentum cycling, batch 256 in order, 1 epoch."""
    torch.manual_seed(seed)
    x, y = data["seed_train_x"], data["train_y"]
    model = public_fastest_net().to(device)
    batch, steps = 256, -(-len(y) // 256)
    steps = min(steps, max_steps or steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.7, 0.9))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=steps, cycle_momentum=False)
    timer = Timer(device)
    model.train()
    with timer:
        for i in range(steps):
            loss = F.cross_entropy(model(x[i * batch : (i + 1) * batch]), y[i * batch : (i + 1) * batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model, timer.seconds


# --- 3. ours: a preset, trained by the pipeline's own fit() --------------------------------------

def train_ours(data, seed, device, preset="fast", max_steps=None, precision="auto"):
    cfg = {**apply_preset(preset)["train"]["cnn"], "precision": precision}
    if max_steps:  # warm-up: the same code path for a few steps
        cfg = {**cfg, "epochs": 1}
        data = {**data, "train_x": data["train_x"][: max_steps * cfg["batch_size"]],
                "train_y": data["train_y"][: max_steps * cfg["batch_size"]]}
    torch.manual_seed(seed)
    model = build_model(cfg["arch"], cfg["net"]).to(device)
    timer = Timer(device)
    with timer:
        fit(model, data["train_x"], data["train_y"], cfg, seed=seed, fill=data["fill"], progress=False)
    return model, timer.seconds


RECIPES = {"seed": train_seed, "public_fastest": train_public_fastest, "ours (fast)": train_ours}


def load_data(device, raw_dir: Path = RAW_DIR):
    """All 60k training images and the 10k test images, resident on `device`, normalised both ways:
    with the folklore statistics (the competitors' recipes) and our training statistics (ours)."""
    train_images, train_y = read_raw("train", raw_dir)
    test_images, test_y = read_raw("t10k", raw_dir)
    mean, std = pixel_stats(train_images)
    to = lambda t: t.to(device)  # noqa: E731
    return {
        "train_x": to(normalize(train_images, mean, std)), "test_x": to(normalize(test_images, mean, std)),
        "seed_train_x": to(normalize(train_images, FOLKLORE_MEAN, FOLKLORE_STD)),
        "seed_test_x": to(normalize(test_images, FOLKLORE_MEAN, FOLKLORE_STD)),
        "train_y": to(train_y), "test_y": to(test_y), "fill": -mean / std, "raw_dir": Path(raw_dir),
    }


def results_path(info, sizes: str = "") -> Path:
    """Named by the device kind, a forced precision, and any recipes or seeds other than the
    defaults (`sizes`, from sized_variant): a partial run never replaces the full one."""
    forced = "" if info.get("precision_asked", "auto") == "auto" else f"-ours-{info['precision_asked']}"
    return RESULTS_DIR / f"{device_kind(info)}{forced}{sizes}-{info['date']}.json"


def run_recipe(name, train, data, seeds, device):
    train(data, seed=1000, device=device, max_steps=20)  # warm-up: allocator, kernels, one-time set-up
    runs = []
    for seed in range(seeds):
        model, seconds = train(data, seed=seed, device=device)
        x = data["seed_test_x"] if name != "ours (fast)" else data["test_x"]
        _, accuracy, _ = evaluate(model, x, data["test_y"])
        runs.append({"seed": seed, "seconds": seconds, "accuracy": accuracy})
        print(f"  {name:16s} seed {seed}: {seconds:8.2f} s  {100 * accuracy:.2f}%", flush=True)
    accs, secs = [r["accuracy"] for r in runs], [r["seconds"] for r in runs]
    return model, {"runs": runs, "params": count_parameters(model), "seconds_mean": statistics.mean(secs),
                   "accuracy_mean": statistics.mean(accs), "accuracy_std": statistics.pstdev(accs),
                   "accuracy_min": min(accs)}


def inference_speeds(data, device, trained_ours) -> dict:
    """Throughput at batch 1000 and batch-1 latency: the default CNN (its speed does not depend
    on its weights, so it is measured untrained) and the `fast` model just trained."""
    cfg = load_params()["train"]["cnn"]
    models = {"default cnn": build_model(cfg["arch"], cfg["net"]), "ours (fast)": trained_ours}
    x = data["test_x"]
    return {name: measure_speed(model.to(device=device, memory_format=torch.channels_last), x, 1000)
            for name, model in models.items()}


def table(results) -> str:
    ours = results["ours (fast)"]["seconds_mean"]
    lines = [f"{'recipe':16s} {'seeds':>5s} {'train time':>11s} {'test acc (mean ± std, min)':>28s} {'ours is faster by':>18s}"]
    for name, r in results.items():
        acc = f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}%, {100 * r['accuracy_min']:.2f}%"
        lines.append(f"{name:16s} {len(r['runs']):5d} {r['seconds_mean']:10.2f}s {acc:>28s} {r['seconds_mean'] / ours:17.1f}x")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per recipe")
    parser.add_argument("--seed-recipe-seeds", type=int, default=1,
                        help="seeds for the slow notebook recipe (minutes each on a 2-core CPU)")
    parser.add_argument("--recipes", default="seed,public_fastest,ours",
                        help="comma-separated subset of: seed, public_fastest, ours")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="ours' training precision (auto: bf16 where native); fp32 shows what a CPU without bf16 gets")
    args = parser.parse_args()
    names = [{"ours": "ours (fast)"}.get(name, name) for name in args.recipes.split(",")]
    unknown = [name for name in names if name not in RECIPES]
    if unknown:
        parser.error(f"--recipes: unknown {', '.join(unknown)}; choose from seed, public_fastest, ours")
    device = torch.device(args.device)
    info = hardware(device, args.precision)
    recipes = {**RECIPES, "ours (fast)": functools.partial(train_ours, precision=args.precision)}
    print(f"{info['cpu']} [{info['cpu_kind']}] ({info['cpu_cores']} threads), torch {info['torch']}, device {device}"
          + (f" ({info['gpu']})" if "gpu" in info else ""), flush=True)
    print("training time of each whole fixed schedule, data resident in memory, after a 20-step warm-up;"
          f" competitors in fp32, ours in {info['precision_ours']}", flush=True)
    data = load_data(device)
    results, models, report = {}, {}, {"hardware": info, "method": METHOD}
    for name in names:
        seeds = args.seed_recipe_seeds if name == "seed" else args.seeds
        models[name], results[name] = run_recipe(name, recipes[name], data, seeds, device)
    print(table(results) if "ours (fast)" in results else json.dumps(results, indent=1))
    report["results"] = results
    if "ours (fast)" in results:
        report["inference"] = inference_speeds(data, device, models["ours (fast)"])
        for name, speed in report["inference"].items():
            print(f"inference, {name}: {speed['throughput_img_s']} images/s at batch 1000, "
                  f"{speed['latency_batch1_ms']} ms at batch 1 ({speed['threads']} threads)")
    out = results_path(info, sized_variant(parser, args, ["recipes", "seeds", "seed_recipe_seeds"]))
    write_json(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
