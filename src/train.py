"""Stage `train@<model>`: train one model section of params.yaml and save its weights.

    python -m src.train cnn

Writes models/<model>.pth (a state_dict) and per-epoch curves to metrics/<model>/train (DVCLive).
A section with `init` starts from that model's weights (models/<init>.pth) instead of at random;
with `writer_digits`, it trains on data/writers/digits.pt too (stage writer_digits), beside MNIST's
training digits, and with `several_digits` on that file's pairs too, as an eleventh class: so does
the reader's classifier, `train.reader` (stage train_reader).
With `train.nproc` > 1 it re-runs itself as that many torchrun workers (src/distributed.py); only
rank 0 writes those files.
"""
import logging
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
from dvclive import Live

from src import distributed
from src.config import SEVERAL, load_params, model_params
from src.data import load_split, load_stats, normalize
from src.models import model_of, start_from
from src.training import fit, precision_name, resolve_device, seed_everything
from src.weights import count_parameters, save_weights

log = logging.getLogger("train")
WRITER_DIGITS = Path("data/writers/digits.pt")


def live_dir(name: str) -> Path:
    return Path("metrics") / name / "train"


def load_training_data(device, subset: int = 0, writer_digits: bool = False, several: bool = False):
    """MNIST's training digits (the first `subset`, if set), and the training writers' digits after
    them with `writer_digits` (their pairs, SEVERAL, too with `several`); the validation digits;
    normalised, on `device`."""
    mean, std = load_stats()
    train_x, train_y = load_split("train")
    if subset:
        train_x, train_y = train_x[:subset], train_y[:subset]
    if writer_digits:
        if not WRITER_DIGITS.exists():
            raise FileNotFoundError(f"{WRITER_DIGITS} not found: run `dvc repro writer_digits` first")
        extra = torch.load(WRITER_DIGITS, weights_only=True)
        kept = torch.ones_like(extra["labels"], dtype=torch.bool) if several else extra["labels"] != SEVERAL
        train_x, train_y = torch.cat([train_x, extra["images"][kept]]), torch.cat([train_y, extra["labels"][kept]])
    val_x, val_y = load_split("val")

    def to_device(x, y):
        return normalize(x.to(device), mean, std), y.to(device)

    return to_device(train_x, train_y), to_device(val_x, val_y), -mean / std


class Unlogged:
    """What ranks other than 0 log to: nothing, so that only rank 0 writes under metrics/."""
    def __init__(self):
        self.summary = {}

    def log_metric(self, *args, **kwargs):
        pass

    def next_step(self):
        pass


def open_live(name: str):
    if distributed.rank() > 0:
        return nullcontext(Unlogged())
    return Live(dir=str(live_dir(name)), dvcyaml=False, save_dvc_exp=False)


def main(name: str) -> None:
    params = load_params()
    cfg, settings = model_params(params, name), params["train"]
    if settings["nproc"] > 1 and not distributed.is_worker():
        log.info("%s: training on %d processes (torchrun)", name, settings["nproc"])
        distributed.launch(settings["nproc"], "-m", "src.train", name)
        return
    with distributed.process_group(resolve_device(settings["device"])) as device:
        train(name, cfg, settings, device)


def train(name: str, cfg: dict, settings: dict, device) -> None:
    seed_everything(settings["seed"], device)
    (train_x, train_y), val, fill = load_training_data(device, settings["subset"], cfg.get("writer_digits", False),
                                                       cfg.get("several_digits", False))
    model = model_of(cfg)
    if cfg.get("init"):
        start_from(model, Path("models") / f"{cfg['init']}.pth")
    log.info("%s: %s, %d parameters, %d training images on %s", name, cfg["arch"],
             count_parameters(model), len(train_y), device)

    with open_live(name) as live:
        def log_epoch(stats):
            for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
                live.log_metric(key.replace("_", "/"), getattr(stats, key))
            live.log_metric("lr", stats.lr)
            live.log_metric("epoch_time_s", stats.seconds)
            live.next_step()
            log.info("epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.1fs", stats.epoch + 1,
                     stats.train_loss, stats.train_acc, stats.val_loss, stats.val_acc, stats.seconds)

        history = fit(model, train_x, train_y, cfg, seed=settings["seed"], val=val, fill=fill, on_epoch=log_epoch)
        # Timings and the precision used live in DVCLive's summary, outside `dvc metrics diff`.
        live.summary["train_time_s"] = round(sum(stats.seconds for stats in history), 2)
        live.summary["precision"] = precision_name(cfg["precision"], device)
    if distributed.rank() == 0:
        save_weights(model, Path("models") / f"{name}.pth")


if __name__ == "__main__":
    from src.cli import run_stage

    if len(sys.argv) != 2:
        sys.exit("usage: python -m src.train <model section of params.yaml, e.g. cnn>")
    (distributed.run_worker if distributed.is_worker() else run_stage)(main, sys.argv[1])
