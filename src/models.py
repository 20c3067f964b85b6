"""The architectures, chosen in params.yaml by `arch` with keyword arguments under `net`.

- `mlp` (MNISTNet): the notebook's fully-connected baseline, widths and dropout from params.
- `cnn` (FastCNN): the default; three blocks of conv 3x3 -> halve the resolution -> batch norm
  -> ReLU, then one linear layer. Halving right after each conv keeps the work per image small
  (most of the net runs at 14x14 or 7x7), and batch norm and ReLU, which are bound by memory
  traffic rather than arithmetic, run on 4x fewer values. Batch norm lets it train at a high
  learning rate. The later blocks halve with a 2x2 max-pool; `stem` says how the first does:
  `stride` (the default) makes its conv stride 2, so the 28x28 feature map is never computed;
  `pool` computes it and max-pools away three quarters of it, as the original design did.
  What each choice measured: benchmarks/notes/training.md#current-choices.
- `seed_cnn` (CNNNet): the original notebook's CNN, layer for layer, to reproduce it.

Each has one output per digit; a model section with `several_digits` (the reader's classifier) has
an eleventh, SEVERAL (src/config.py): a piece of ink that is more than one digit, two touching.
`model_of` builds a section's model to train; `load_trained` rebuilds a trained one with as many
outputs as its weights file has, so that only training reads `several_digits`.
"""
import torch
from torch import nn
import torch.nn.functional as F

from src.config import DIGITS
from src.weights import fit_weights, read_weights


class MNISTNet(nn.Module):
    def __init__(self, hidden=(512, 512), dropout=0.2, classes=DIGITS):
        super().__init__()
        layers, width = [nn.Flatten()], 28 * 28
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def conv_block(c_in, c_out, stride=False):
    """Halve the resolution, either by a max-pool after the conv or by striding the conv."""
    if stride:
        downsample = [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)]
    else:
        downsample = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2)]
    return nn.Sequential(*downsample, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class FastCNN(nn.Module):
    def __init__(self, widths=(32, 64, 128), dropout=0.0, stem="stride", classes=DIGITS):
        super().__init__()
        channels = [1, *widths]
        self.features = nn.Sequential(*(conv_block(a, b, stride=(i == 0 and stem == "stride"))
                                        for i, (a, b) in enumerate(zip(channels, channels[1:]))))
        side = 28 // 2 ** len(widths)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1] * side * side, classes)

    def forward(self, x):
        return self.classifier(self.dropout(self.features(x).flatten(1)))


class CNNNet(nn.Module):
    """The original notebook's CNN, exactly."""

    def __init__(self, classes=DIGITS):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(64 * 14 * 14, 128)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.dropout(torch.flatten(x, 1))
        x = F.relu(self.fc1(x))
        return self.fc2(x)


ARCHS = {"mlp": MNISTNet, "cnn": FastCNN, "seed_cnn": CNNNet}


def build_model(arch: str, net: dict | None = None, classes: int = DIGITS) -> nn.Module:
    return ARCHS[arch](**(net or {}), classes=classes)


def model_of(cfg: dict) -> nn.Module:
    """A model section's model (`arch`, `net`, `several_digits`), untrained: the ten digits'
    outputs, and SEVERAL's with `several_digits`."""
    return build_model(cfg["arch"], cfg["net"], DIGITS + bool(cfg.get("several_digits")))


def outputs_of(model: nn.Module) -> int:
    """How many outputs a classifier has: its output layer's."""
    return model.get_submodule(output_layer(model)).out_features


def output_layer(model: nn.Module) -> str:
    """The name of a classifier's output layer: its last linear layer."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def load_trained(arch: str, net: dict, path) -> nn.Module:
    """A trained classifier of `arch` and `net` from its weights file, with the outputs the file's
    output layer has: the ten digits', or SEVERAL's too. Weights that fit neither raise
    WeightsMismatch, as in load_weights."""
    weights = read_weights(path)
    model = build_model(arch, net)
    bias = weights.get(f"{output_layer(model)}.bias") if isinstance(weights, dict) else None
    if bias is not None and getattr(bias, "shape", None) == (DIGITS + 1,):
        model = build_model(arch, net, DIGITS + 1)
    return fit_weights(model, weights, path)


def start_from(model: nn.Module, path) -> nn.Module:
    """Another model's weights (a section's `init`), built the same but perhaps without SEVERAL: the
    ten digits' outputs start from its weights, SEVERAL from `model`'s own initialisation. Any
    other difference is an error, as in load_weights."""
    weights, own = read_weights(path), model.state_dict()
    for key in (f"{output_layer(model)}.weight", f"{output_layer(model)}.bias") if isinstance(weights, dict) else ():
        if key in weights and len(weights[key]) == DIGITS and own[key].shape == (DIGITS + 1, *weights[key].shape[1:]):
            weights[key] = torch.cat([weights[key], own[key][DIGITS:]])
    return fit_weights(model, weights, path)
