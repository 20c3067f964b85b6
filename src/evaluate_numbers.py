"""Stage `evaluate_numbers`: score the line model on fixed numbers written from MNIST's test digits.

    python -m src.evaluate_numbers

The test numbers are drawn once from `numbers.evaluate.seed`, unaugmented, from the test split
only: `per_kind` 4-digit numbers of each kind (touching, overlap, separated; src/number_images.py)
and `per_length` numbers of each length in `lengths`, the kinds in turn.

Writes, under metrics/:
- numbers.json: only what people compare between branches (`dvc metrics diff`): exact-number
  accuracy of the 4-digit numbers, overall and per kind, and their character error rate;
- numbers/by_length.csv: exact accuracy and CER by number length (a `dvc plots` chart);
- numbers/misread.png: the most confidently misread 4-digit numbers;
- numbers/confidence.json: the calibration (temperature, threshold) and, per kind, the share of
  numbers flagged uncertain and the accuracy of those that are not;
- numbers/speed.json: training time and steps (from the train stage), batch-1 latency.
"""
import logging
import statistics
import time
from pathlib import Path

import torch

from src.config import load_params
from src.data import load_split, load_stats
from src.fileio import read_summary, write_bytes, write_json
from src.gallery import save_gallery
from src.number_calibration import flag_report
from src.number_images import KINDS, concatenate, fixed_numbers, kind_sets
from src.number_model import WEIGHTS, as_input, greedy_decode, line_logits, load_line_model, score

log = logging.getLogger("evaluate_numbers")
OUT = Path("metrics/numbers")


def length_set(images, labels, cfg):
    low, high = cfg["lengths"]
    lengths = [n for n in range(low, high + 1) for _ in range(cfg["per_length"])]
    kinds = [list(KINDS)[i % len(KINDS)] for i in range(len(lengths))]
    return fixed_numbers(images, labels, lengths, kinds, cfg["seed"] + len(KINDS))


def by_length_csv(readings, numbers) -> bytes:
    rows = []
    for n in sorted(set(map(len, numbers.labels))):
        picked = [(r, label) for r, label in zip(readings, numbers.labels) if len(label) == n]
        s = score([r.digits for r, _ in picked], [label for _, label in picked])
        rows.append(f"{n},{s['exact']:.6f},{s['cer']:.6f}\n")
    return ("length,exact,cer\n" + "".join(rows)).encode()


def misread_gallery(numbers, readings, path: Path, size: int) -> None:
    """The `size` most confidently misread numbers, each with its truth and its reading."""
    wrong = [i for i, (r, label) in enumerate(zip(readings, numbers.labels)) if r.digits != label]
    wrong = sorted(wrong, key=lambda i: -readings[i].confidence)[:size]
    captions = [f"{numbers.labels[i]} read {readings[i].digits or '-'} ({readings[i].confidence:.0%})" for i in wrong]
    save_gallery([numbers.images[i, :, :int(numbers.widths[i])].numpy() for i in wrong], captions,
                 f"{len(wrong)} most confidently misread test numbers", path, cols=4, cell=(2.4, 1.1))


@torch.no_grad()
def latency_ms(model, numbers, mean: float, std: float, repeats: int = 50) -> float:
    """Median batch-1 time of one 4-digit number through the model, fp32."""
    x = as_input(numbers.images[:1], mean, std)
    model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 3)


def training_record(summary: Path) -> dict:
    """The training time, time a step and precision from train_numbers' DVCLive summary (None where
    it logged none)."""
    logged = read_summary(summary)
    return {key: logged.get(key) for key in ("train_time_s", "s_per_step", "precision")}


def main() -> None:
    params = load_params()
    cfg, net = params["numbers"]["evaluate"], params["numbers"]["net"]
    model = load_line_model(net, WEIGHTS)
    temperature, threshold = float(model.temperature), float(model.threshold)
    mean, std = load_stats()
    images, labels = load_split("test")
    # Scored in fp32, whatever the training precision: comparable between CPU kinds.
    kinds = kind_sets(images, labels, cfg)
    readings = {kind: greedy_decode(line_logits(model, numbers, mean, std), numbers.widths, temperature)
                for kind, numbers in kinds.items()}
    scores = {kind: score([r.digits for r in readings[kind]], kinds[kind].labels) for kind in kinds}
    all_readings = [r for kind in kinds for r in readings[kind]]
    all_labels = [label for kind in kinds for label in kinds[kind].labels]
    overall = score([r.digits for r in all_readings], all_labels)
    metrics = {"exact": {"all": round(overall["exact"], 6), **{k: round(s["exact"], 6) for k, s in scores.items()}},
               "cer": round(overall["cer"], 6)}
    lengths = length_set(images, labels, cfg)
    length_readings = greedy_decode(line_logits(model, lengths, mean, std), lengths.widths, temperature)

    def flags(rs, truth):
        return flag_report([r.confidence for r in rs], [r.digits == t for r, t in zip(rs, truth)], threshold)

    confidence = {"temperature": temperature, "threshold": threshold, "all": flags(all_readings, all_labels),
                  **{kind: flags(readings[kind], kinds[kind].labels) for kind in kinds}}
    misread_gallery(concatenate(list(kinds.values())), all_readings, OUT / "misread.png", cfg["gallery_size"])
    speed = {**training_record(OUT / "train" / "metrics.json"),
             "latency_4_digits_ms": latency_ms(model, kinds["touching"], mean, std), "threads": torch.get_num_threads()}
    write_bytes(OUT / "by_length.csv", by_length_csv(length_readings, lengths))
    write_json(OUT / "confidence.json", confidence)
    write_json(OUT / "speed.json", speed)
    write_json(Path("metrics/numbers.json"), metrics)
    log.info("4-digit numbers exact: %s; CER %.4f; flagged %.1f%%, unflagged right %s", metrics["exact"], metrics["cer"],
             100 * confidence["all"]["flagged"], confidence["all"]["unflagged_accuracy"])


if __name__ == "__main__":
    from src.cli import run_stage_command

    run_stage_command(main)
