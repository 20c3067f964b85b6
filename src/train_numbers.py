"""Stage `train_numbers`: train the line model on numbers written from MNIST's training digits.

    python -m src.train_numbers

Every step draws a fresh batch of numbers (src/number_images.py: 1 to 8 digits, touching,
overlapping or apart, each digit augmented), so the model never sees the same MNIST line twice,
and adds lines by other writers from the stage writer_lines (`numbers.images.writer_lines` of the
batch's count): MNIST's writers alone teach it MNIST's handwriting only. Sized
in steps, not seconds: the same params give the same weights on the same CPU kind and precision
(`precision: auto` trains in bf16 only where the CPU computes it natively; a GPU's CTC backward is
not deterministic). Every `eval_every` steps it reads the validation numbers (from the validation
split, never the test split).

At the end it calibrates on `calibration_numbers` numbers from the validation split (the
validation numbers first, then more from further seeds; src/number_calibration.py): a
temperature, and the confidence threshold under which a number is flagged uncertain, both saved
in the weights file as buffers. It calibrates on the fp32 logits that the evaluation, the export and
the reader read, whatever precision trained the model.

Writes models/numbers.pth (a state_dict) and its curves to metrics/numbers/train (DVCLive).
"""
import logging
import time
from pathlib import Path

import torch
from dvclive import Live

from src.config import load_params
from src.data import load_split, load_stats
from src.errors import PipelineError
from src.number_calibration import Readings, calibrate
from src.number_images import KINDS, fixed_numbers, load_line_pool, training_numbers
from src.number_model import WEIGHTS, as_input, best_paths, build_line_model, ctc_loss, line_logits, score
from src.training import lr_factor, make_optimizer, precision_name, resolve_device, seed_everything, uses_bf16
from src.weights import count_parameters, save_weights

log = logging.getLogger("train_numbers")
LIVE_DIR = Path("metrics/numbers/train")
WRITER_LINES = Path("data/writers/lines.pt")   # the stage writer_lines' output
CLIP_NORM = 5.0  # CTC's gradients spike on the first steps; clipping keeps one batch from undoing the rest
VAL_SEED = 1     # the validation numbers' own seed (the test numbers use numbers.evaluate.seed)
CALIBRATION_SET = 3000   # calibration numbers drawn and read at a time: their images are let go set by set


def validation_numbers(images, labels, count: int, lengths: list[int], seed: int = VAL_SEED):
    """`count` numbers from the validation split's digits: lengths cycling through
    `lengths[0]..lengths[1]`, kinds through KINDS."""
    sizes = list(range(lengths[0], lengths[1] + 1))
    chosen = [sizes[i % len(sizes)] for i in range(count)]
    kinds = [list(KINDS)[i % len(KINDS)] for i in range(count)]
    return fixed_numbers(images, labels, chosen, kinds, seed)


def calibration_readings(model, images, labels, count: int, lengths: list[int], mean: float, std: float) -> list[Readings]:
    """The line model's readings of `count` numbers from the validation digits, in sets of at most
    CALIBRATION_SET, the k-th set from seed VAL_SEED + k (so the first are the validation numbers)."""
    sets = []
    for k, start in enumerate(range(0, count, CALIBRATION_SET)):
        numbers = validation_numbers(images, labels, min(CALIBRATION_SET, count - start), lengths, seed=VAL_SEED + k)
        sets.append(Readings(line_logits(model, numbers, mean, std), numbers.labels, numbers.widths))
    return sets


def fit_line_model(model, train_x, train_y, val, cfg: dict, images_cfg: dict, mean: float, std: float,
                   device: torch.device, on_eval=None, writer_lines=None) -> float:
    """Train `model` in place for cfg['steps'] steps of fresh numbers from (train_x, train_y), and
    lines by other writers from the pool `writer_lines` (images_cfg['writer_lines'] of each batch);
    every cfg['eval_every'] steps (and at the end) call on_eval(step, train_loss, val_logits, scores,
    lr, seconds) with its reading of the validation numbers `val` (in the training's precision). Returns the training seconds."""
    autocast = uses_bf16(cfg["precision"], device)
    generator = torch.Generator().manual_seed(cfg["seed"])
    optimizer = make_optimizer(model, cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg["steps"], cfg))
    started, loss_sum, seen = time.perf_counter(), 0.0, 0
    for step in range(cfg["steps"]):
        model.train()
        batch = training_numbers(train_x, train_y, cfg["batch_size"], images_cfg, generator, writer_lines)
        with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            logits = model(as_input(batch.images.to(device), mean, std))
        loss = ctc_loss(logits, batch.labels, batch.widths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        schedule.step()
        loss_sum, seen = loss_sum + loss.item(), seen + 1
        if on_eval and ((step + 1) % cfg["eval_every"] == 0 or step + 1 == cfg["steps"]):
            val_logits = line_logits(model, val, mean, std, autocast=autocast)
            on_eval(step, loss_sum / seen, val_logits, score(best_paths(val_logits, val.widths), val.labels),
                    optimizer.param_groups[0]["lr"], time.perf_counter() - started)
            loss_sum, seen = 0.0, 0
    return time.perf_counter() - started


def main() -> None:
    params = load_params()
    device = resolve_device(params["train"]["device"])  # each batch is composed on the CPU, trained on here
    cfg, images_cfg, net = params["numbers"]["train"], params["numbers"]["images"], params["numbers"]["net"]
    seed_everything(cfg["seed"], device)
    mean, std = load_stats()
    train_x, train_y = load_split("train")
    val_x, val_y = load_split("val")
    if len(val_y) == 0:
        raise PipelineError("data.val_size is 0: the line model is validated and calibrated on the validation "
                            "split's digits; set data.val_size to 1 or more")
    val = validation_numbers(val_x, val_y, cfg["val_numbers"], images_cfg["lengths"])
    writer_lines = load_line_pool(WRITER_LINES)
    model = build_line_model(net).to(device, memory_format=torch.channels_last)
    log.info("line model: %s, %d parameters; %d steps of %d numbers", net, count_parameters(model), cfg["steps"],
             cfg["batch_size"])
    with Live(dir=str(LIVE_DIR), dvcyaml=False, save_dvc_exp=False) as live:
        def log_eval(step, train_loss, val_logits, scores, lr, elapsed):
            live.log_metric("train/loss", train_loss)
            live.log_metric("val/loss", ctc_loss(val_logits, val.labels, val.widths).item())
            live.log_metric("val/exact", scores["exact"])
            live.log_metric("val/cer", scores["cer"])
            live.log_metric("lr", lr)
            live.next_step()
            log.info("step %d: train loss %.4f | val exact %.4f cer %.4f | %.1fs (%.3f s/step)", step + 1,
                     train_loss, scores["exact"], scores["cer"], elapsed, elapsed / (step + 1))

        train_time = fit_line_model(model, train_x, train_y, val, cfg, images_cfg, mean, std, device, log_eval,
                                    writer_lines)
        sets = calibration_readings(model, val_x, val_y, cfg["calibration_numbers"], images_cfg["lengths"], mean, std)
        record = calibrate(model, sets, cfg["unflagged_accuracy"])
        log.info("calibrated on %d validation numbers: %s", cfg["calibration_numbers"], record)
        # Timings and the precision live in DVCLive's summary, outside `dvc metrics diff`.
        live.summary.update({"train_time_s": round(train_time, 2), "s_per_step": round(train_time / cfg["steps"], 4),
                             "precision": precision_name(cfg["precision"], device), "calibration": record})
    save_weights(model, WEIGHTS)


if __name__ == "__main__":
    from src.cli import run_stage_command

    run_stage_command(main)
