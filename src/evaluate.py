"""Stage `evaluate@<model>`: score a trained model on the test set.

    python -m src.evaluate cnn

Writes, under metrics/:
- <model>.json: only what people compare between branches (`dvc metrics diff`): test accuracy,
  loss and errors, parameter count, and with `evaluate.tta` the accuracy and errors with
  test-time augmentation; for a model with `several_digits`, how many test digits it reads as
  several (counted among the errors, as its largest output is the prediction);
- <model>/per_class.csv: per-class precision, recall and F1 (a `dvc plots` bar chart);
- <model>/speed.json: timings, which change on every run: training seconds (copied from the train
  stage's DVCLive summary), inference throughput and batch-1 latency;
- <model>/confusion.csv (one `actual,predicted` row per test image, for DVC's confusion template)
  and <model>/misclassified.png.
"""
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from sklearn.metrics import precision_recall_fscore_support

from src.config import SEVERAL, load_params, model_params
from src.data import load_split, load_stats, normalize, translate
from src.fileio import read_summary, write_bytes, write_json
from src.gallery import save_gallery
from src.models import load_trained
from src.training import evaluate, predict, resolve_device, uses_bf16
from src.weights import count_parameters

log = logging.getLogger("evaluate")


def per_class_csv(labels, predictions) -> bytes:
    """`class,precision,recall,f1`, one row per digit (scikit-learn's scores)."""
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predictions, labels=list(range(10)), zero_division=0)
    rows = "".join(f"{c},{precision[c]:.6f},{recall[c]:.6f},{f1[c]:.6f}\n" for c in range(10))
    return ("class,precision,recall,f1\n" + rows).encode()


def training_record(summary: Path) -> dict:
    """The training time and precision from the train stage's DVCLive summary (None for runs
    that did not log them)."""
    logged = read_summary(summary)
    return {"train_time_s": logged.get("train_time_s"), "train_precision": logged.get("precision")}


@torch.no_grad()
def measure_speed(model, x, batch_size: int, repeats: int = 3, autocast: bool = False) -> dict:
    """Large-batch throughput over the whole set (best of `repeats`) and batch-1 latency (median),
    in the precision the model is scored in."""
    model.eval()
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)

    def forward(batch):
        with torch.autocast(x.device.type, torch.bfloat16, enabled=autocast):
            model(batch)

    forward(x[:batch_size])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for i in range(0, len(x), batch_size):
            forward(x[i : i + batch_size])
        sync()
        best = min(best, time.perf_counter() - start)
    latencies = []
    for i in range(110):
        sync()
        start = time.perf_counter()
        forward(x[i : i + 1])
        sync()
        latencies.append(time.perf_counter() - start)
    return {"device": str(x.device), "threads": torch.get_num_threads(), "precision": "bf16" if autocast else "fp32",
            "batch_size": batch_size, "throughput_img_s": round(len(x) / best),
            "latency_batch1_ms": round(1000 * statistics.median(latencies[10:]), 3)}


TTA_SHIFTS = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]  # the image, then one pixel up, down, left, right


@torch.no_grad()
def tta_probs(model, x, fill: float, batch_size: int, autocast: bool) -> torch.Tensor:
    """Test-time augmentation: the class probabilities averaged over the image and its one-pixel
    shifts. A digit a pixel off-centre is still the same digit; averaging smooths out views
    that land on a decision boundary."""
    views = [predict(model, translate(x, dy, dx, fill), batch_size, autocast).softmax(1) for dy, dx in TTA_SHIFTS]
    return torch.stack(views).mean(0)


def confusion_csv(labels, predictions) -> bytes:
    rows = "".join(f"{a},{p}\n" for a, p in zip(labels.tolist(), predictions.tolist()))
    return ("actual,predicted\n" + rows).encode()


def misclassified_gallery(images, labels, probs, path: Path, size: int) -> None:
    """The `size` most confidently wrong test digits, with true and predicted labels."""
    predictions = probs.argmax(1)
    wrong = (predictions != labels).nonzero().flatten()
    wrong = wrong[probs[wrong, predictions[wrong]].argsort(descending=True)][:size].tolist()
    named = {i: "several" if predictions[i] == SEVERAL else int(predictions[i]) for i in wrong}   # SEVERAL: not one digit
    captions = [f"true {labels[i]} / pred {named[i]}\n({probs[i, predictions[i]]:.0%})" for i in wrong]
    save_gallery([images[i] for i in wrong], captions, f"{len(wrong)} most confidently misclassified test digits",
                 path, cols=6, cell=(1.6, 1.8))


def main(name: str) -> None:
    params = load_params()
    cfg, settings = model_params(params, name), params["evaluate"]
    device = resolve_device(params["train"]["device"])
    model = load_trained(cfg["arch"], cfg["net"], Path("models") / f"{name}.pth")
    model.to(device=device, memory_format=torch.channels_last)
    mean, std = load_stats()
    images, labels = load_split("test")
    x = normalize(images.to(device), mean, std)
    # Scored in exact fp32 on any CPU, whatever the training precision: comparable between CPU
    # kinds, and 10,000 images take a second either way. bf16 on a GPU that has it.
    autocast = device.type == "cuda" and uses_bf16("auto", device)
    loss, accuracy, logits = evaluate(model, x, labels.to(device), settings["batch_size"], autocast)
    probs = logits.softmax(1).cpu()
    predictions = probs.argmax(1)
    metrics = {
        "test": {"accuracy": round(accuracy, 6), "loss": round(loss, 6), "errors": int((predictions != labels).sum())},
        "params": count_parameters(model),
    }
    if logits.shape[1] > SEVERAL:
        metrics["test"]["read_as_several"] = int((predictions == SEVERAL).sum())
    if settings["tta"]:
        tta = tta_probs(model, x, -mean / std, settings["batch_size"], autocast).cpu()
        errors = int((tta.argmax(1) != labels).sum())
        metrics["test_tta"] = {"accuracy": round(1 - errors / len(labels), 6), "errors": errors}
    out = Path("metrics") / name
    speed = {**training_record(out / "train" / "metrics.json"),
             **measure_speed(model, x, settings["batch_size"], autocast=autocast)}
    write_bytes(out / "per_class.csv", per_class_csv(labels.numpy(), predictions.numpy()))
    write_bytes(out / "confusion.csv", confusion_csv(labels, predictions))
    misclassified_gallery(images, labels, probs, out / "misclassified.png", settings["gallery_size"])
    write_json(out / "speed.json", speed)
    write_json(Path("metrics") / f"{name}.json", metrics)
    log.info("%s: test accuracy %.2f%% (%d errors), loss %.4f; %s images/s on %s", name, 100 * accuracy,
             metrics["test"]["errors"], loss, speed["throughput_img_s"], device)


if __name__ == "__main__":
    from src.cli import run_stage

    if len(sys.argv) != 2:
        sys.exit("usage: python -m src.evaluate <model section of params.yaml, e.g. cnn>")
    run_stage(main, sys.argv[1])
