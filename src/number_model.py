"""The line model: reads a whole number, however its digits touch, with no segmentation.

A CRNN (Shi, Bai and Yao 2015): convolutions turn a 28-row line into one feature vector per
4 columns, a sequence model lets each column see its neighbours, and a linear layer scores the
10 digits and CTC's blank for every column. CTC (Graves et al. 2006) trains it from the digit
string alone, with no position of any digit given; reading is greedy decoding: the best class
per column, repeats merged, blanks dropped.

`sequence` picks the sequence model: `lstm` (a bidirectional LSTM, as the CRNN paper) or `conv`
(residual 1-D convolutions over the columns, which run in bf16 with the rest); both are compared
in benchmarks/notes/reader.md#a-bilstm-or-1-d-convolutions-over-the-columns.

The model carries its calibration as buffers, saved with the weights: `temperature` divides the
logits (fitted on validation numbers), and a number whose reading's probability is below
`threshold` is flagged uncertain.
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from src import ctc
from src.ctc import BLANK, CLASSES, STRIDE, Reading  # noqa: F401 (Reading: the decoded type, re-exported)
from src.weights import fit_weights, read_weights

WEIGHTS = Path("models/numbers.pth")  # the train_numbers stage's output, read by the evaluation and the export


def conv_bn(c_in, c_out, kernel=3, stride=1, padding=1):
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class ColumnConvs(nn.Module):
    """Residual convolutions along the column sequence, on its N x C x 1 x T map: 2-D convolutions
    one row high, so that the map stays channels_last from the features on (1-D convolutions
    on the squeezed, strided sequence took slower kernels, BatchNorm and ReLU included:
    benchmarks/notes/hardware.md#the-line-models-column-convolutions)."""

    def __init__(self, channels: int, layers: int = 2, kernel: int = 5):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(*conv_bn(channels, channels, (1, kernel), padding=(0, kernel // 2)))
                                    for _ in range(layers))

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return x


class LineReader(nn.Module):
    def __init__(self, widths=(32, 64, 96), hidden=128, sequence="lstm"):
        super().__init__()
        w1, w2, w3 = widths
        self.features = nn.Sequential(
            *conv_bn(1, w1, stride=2),                                    # 14 x W/2
            *conv_bn(w1, w2, stride=2),                                   # 7 x W/4
            *conv_bn(w2, w3),
            *conv_bn(w3, w3, kernel=(7, 3), padding=(0, 1)),              # 1 x W/4: the column's whole height
        )
        self.kind = sequence
        if sequence == "lstm":
            self.sequence = nn.LSTM(w3, hidden, batch_first=True, bidirectional=True)
            out = 2 * hidden
        else:
            self.sequence = ColumnConvs(w3)
            out = w3
        self.head = nn.Linear(out, CLASSES)
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("threshold", torch.zeros(()))

    def forward(self, x):
        """N x 1 x 28 x W normalised lines -> N x W/4 x 11 fp32 logits."""
        columns = self.features(x)                            # N x C x 1 x T
        if self.kind == "lstm":
            # The LSTM stays in fp32: CPU autocast has no bf16 LSTM kernel worth using.
            with torch.autocast(x.device.type, enabled=False):
                out, _ = self.sequence(columns.squeeze(2).float().transpose(1, 2))
                return self.head(out)
        out = self.sequence(columns).squeeze(2).transpose(1, 2)  # N x T x C
        return self.head(out).float()


def build_line_model(net: dict) -> LineReader:
    return LineReader(**net)


def load_line_model(net: dict, path) -> LineReader:
    """Build from params.yaml's `numbers.net`, load a state_dict (src/weights.py's read_weights:
    `weights_only=True`, one line for a file that does not fit), in eval mode."""
    return fit_weights(build_line_model(net), read_weights(path), path).eval()


def frames(widths: torch.Tensor) -> torch.Tensor:
    """Output columns that cover each line's `widths` input columns."""
    return torch.div(widths + STRIDE - 1, STRIDE, rounding_mode="floor")


def ctc_loss(logits, labels: list[str], widths: torch.Tensor, temperature: float = 1.0, reduction="mean"):
    """CTC loss of N x T x 11 logits against digit strings. `mean` as PyTorch's: each number's
    loss divided by its length, averaged."""
    log_probs = (logits.float() / temperature).log_softmax(-1).transpose(0, 1)
    device = log_probs.device
    targets = torch.tensor([int(c) for label in labels for c in label], dtype=torch.long, device=device)
    target_lengths = torch.tensor([len(label) for label in labels], dtype=torch.long, device=device)
    input_lengths = frames(widths).clamp(max=logits.shape[1]).to(device)
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, reduction=reduction,
                      zero_infinity=True)


def greedy_decode(logits: torch.Tensor, widths: torch.Tensor, temperature: float = 1.0) -> list[Reading]:
    """src/ctc.py's greedy decoding of each line of N x T x 11 logits."""
    return [ctc.greedy_decode(line, width, temperature) for line, width in zip(logits.float().numpy(), widths.tolist())]


def best_paths(logits: torch.Tensor, widths: torch.Tensor) -> list[str]:
    """The digits greedy_decode reads in each line of N x T x 11 logits, without the probabilities
    and the confidence it computes beside them (a forward pass over every line): for scoring
    thousands of lines while training goes on."""
    path = logits.argmax(-1)                                   # the best class per column
    inside = torch.arange(path.shape[1]) < -(-widths[:, None] // STRIDE)
    new = torch.ones_like(inside)
    new[:, 1:] = path[:, 1:] != path[:, :-1]                   # the first column of each run
    emitted = inside & new & (path != BLANK)
    return ["".join(map(str, row[keep].tolist())) for row, keep in zip(path, emitted)]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


# --- Reading and scoring lines: what training, evaluation and export share ---

def as_input(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N x 28 x W lines -> normalised N x 1 x 28 x W floats, as the digit models' inputs."""
    x = (images.float() / 255 - mean) / std
    return x.unsqueeze(1).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def line_logits(model, numbers, mean: float, std: float, batch_size: int = 256, autocast: bool = False):
    """The fp32 logits of every line (N x T x 11, T the frames of the set's width), on the CPU whatever
    device the model is on. Lines are read in batches of similar width (sorted by it), each batch
    cut to its widest line (a multiple of STRIDE): a line is padded hardly more than the reader pads
    it, not to the longest line of the set, and a set's short lines cost what they are. Frames
    past a batch's width are zero."""
    model.eval()
    device = next(model.parameters()).device
    order = torch.sort(numbers.widths, stable=True).indices
    out = torch.zeros(len(order), int(frames(torch.tensor(numbers.images.shape[2]))), CLASSES)
    for i in range(0, len(order), batch_size):
        lines = order[i:i + batch_size]
        width = min(numbers.images.shape[2], int(frames(numbers.widths[lines].max())) * STRIDE)
        x = as_input(numbers.images[lines, :, :width].to(device), mean, std)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=autocast):
            logits = model(x).float().cpu()
        out[lines, :logits.shape[1]] = logits
    return out


def score(read: list[str], labels: list[str]) -> dict:
    """Exact-number accuracy and character error rate (edit distance over true digits) of the
    digits `read` in each line."""
    exact = sum(digits == label for digits, label in zip(read, labels)) / max(1, len(labels))
    errors = sum(edit_distance(digits, label) for digits, label in zip(read, labels))
    return {"exact": exact, "cer": errors / max(1, sum(map(len, labels)))}
