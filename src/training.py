"""The training loop, shared by the pipeline, the benchmark and the notebook.

Read it top to bottom: the data is on the device, each epoch draws a permutation, each step
gathers a batch by index, rotates, zooms and shifts it at random, and takes one optimizer
step on a schedule.
"""
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from src import distributed
from src.data import random_affine, random_shift
from src.errors import PipelineError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    if device.type == "cpu":
        # Bit-identical reruns on CPU; cuDNN's fastest kernels are not all deterministic.
        torch.use_deterministic_algorithms(True)
        # ...without its debugging aid, which fills every new tensor with NaN before use: no op
        # here reads memory it has not written (the forced-rerun tests check the bytes), and the
        # fills cost a tenth of a training step (benchmarks/notes/training.md#the-nan-fills-off).
        torch.utils.deterministic.fill_uninitialized_memory = False


def make_optimizer(model, cfg) -> torch.optim.Optimizer:
    # No weight decay on biases and norm parameters: it only fights the normalisation.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["momentum"] > 0)
    betas = (cfg["momentum"], 0.999)
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=cfg["lr"], betas=betas)
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=betas)


def lr_factor(step: int, total: int, cfg) -> float:
    """`onecycle`: linear warm-up over the first `warmup` fraction of steps, then linear decay
    to zero; `constant`: the notebook's fixed learning rate."""
    if cfg["schedule"] == "constant":
        return 1.0
    warm = max(1, round(cfg["warmup"] * total))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX. Elsewhere oneDNN emulates bf16, which is slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def uses_bf16(precision: str, device: torch.device) -> bool:
    """`auto`: bf16 autocast where the device computes bf16 natively, fp32 elsewhere: bf16 pays
    only where it is native, and is slower than fp32 where it is emulated (the measurements, per
    CPU kind: benchmarks/notes/hardware.md#2026-11-25-three-cpu-kinds-and-precision-by-hardware)."""
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


def precision_name(precision: str, device: torch.device) -> str:
    return "bf16" if uses_bf16(precision, device) else "fp32"


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float


@torch.no_grad()
def predict(model, x, batch_size: int = 2000, autocast: bool = False) -> torch.Tensor:
    """The fp32 logits of `model` (put in eval mode) on normalised images `x`, batch by batch."""
    model.eval()
    logits = []
    for i in range(0, len(x), batch_size):
        with torch.autocast(x.device.type, torch.bfloat16, enabled=autocast):
            logits.append(model(x[i : i + batch_size]).float())
    return torch.cat(logits) if logits else torch.zeros(0, 10, device=x.device)


def evaluate(model, x, y, batch_size: int = 2000, autocast: bool = False):
    """(mean cross-entropy, accuracy, logits) of `model` on normalised images `x`."""
    logits = predict(model, x, batch_size, autocast)
    if len(y) == 0:
        return float("nan"), float("nan"), logits
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    return loss, acc, logits


def evaluate_sharded(model, x, y, autocast: bool = False):
    """(mean cross-entropy, accuracy) over all of `x`, each rank scoring its own shard: every
    image counted once, the sums added over the ranks."""
    distributed.broadcast_buffers(model)
    part = distributed.shard(len(y))
    logits = predict(model, x[part], autocast=autocast)
    totals = torch.stack([F.cross_entropy(logits, y[part], reduction="sum"),
                          (logits.argmax(1) == y[part]).sum().to(logits.dtype)]).double()
    distributed.all_sum(totals)
    loss, acc = (totals / len(y)).tolist() if len(y) else (math.nan, math.nan)
    return loss, acc


def fit(model, train_x, train_y, cfg, *, seed: int, val=None, fill: float = 0.0, on_epoch=None, progress=True):
    """Train `model` in place on normalised device tensors; return the per-epoch stats.

    cfg holds one model section of params.yaml (epochs, batch_size, optimizer, lr, precision, ...).
    `fill` is the normalised background value used by the shift augmentation.

    In a torchrun process group (src/distributed.py) every rank holds all the data and draws the
    same permutation; each takes its equal slice of every global batch of `batch_size` and DDP
    averages the gradients, which is the gradient of the global batch's mean loss. BatchNorm
    normalises with per-rank batch statistics (SyncBatchNorm has no CPU support and would add a
    collective per layer). The returned stats are global; validation is sharded, not repeated.
    """
    device = train_x.device
    model.to(device=device, memory_format=torch.channels_last)  # what mkldnn and cuDNN convs prefer
    autocast = uses_bf16(cfg["precision"], device)
    generator = torch.Generator(device=device).manual_seed(seed)
    n, batch_size = len(train_y), min(cfg["batch_size"], len(train_y))
    ranks, my_slice = distributed.world_size(), distributed.batch_slice(batch_size)
    net, augment_generator = model, generator
    if ranks > 1:
        net = distributed.wrap(model)
        # Augmentation and dropout draw per rank; the permutation stays shared. seed + 1 + rank,
        # so that rank 0's draws are not the permutation's own stream.
        augment_generator = torch.Generator(device=device).manual_seed(seed + 1 + distributed.rank())
        torch.manual_seed(seed + 1 + distributed.rank())
    steps_per_epoch = n // batch_size  # drop the ragged last batch: equal-sized steps
    total = cfg["epochs"] * steps_per_epoch
    optimizer = make_optimizer(model, cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, cfg))
    history = []
    for epoch in range(cfg["epochs"]):
        start = time.perf_counter()
        net.train()
        order = torch.randperm(n, device=device, generator=generator)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        lr = optimizer.param_groups[0]["lr"]
        steps = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg['epochs']}",
                     disable=not progress or distributed.rank() > 0, leave=False, mininterval=1.0)
        for step in steps:
            idx = order[step * batch_size : (step + 1) * batch_size][my_slice]
            x = random_affine(train_x[idx], cfg["rotate"], cfg["scale"], augment_generator, fill)
            x = random_shift(x, cfg["shift"], augment_generator, fill)
            y = train_y[idx]
            with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
                logits = net(x)
                loss = F.cross_entropy(logits, y, label_smoothing=cfg["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
        seen = steps_per_epoch * batch_size
        if ranks > 1:
            distributed.all_sum(loss_sum, correct)
            val_loss, val_acc = evaluate_sharded(model, *val, autocast=autocast) if val else (math.nan, math.nan)
        else:
            val_loss, val_acc, _ = evaluate(model, *val, autocast=autocast) if val else (math.nan, math.nan, None)
        stats = EpochStats(epoch, loss_sum.item() / seen, correct.item() / seen, val_loss, val_acc, lr,
                           time.perf_counter() - start)
        history.append(stats)
        if on_epoch:
            on_epoch(stats)
    return history
