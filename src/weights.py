"""Weights files: a model's state_dict saved, and loaded back only where it fits.

Shared by the classifiers (src/models.py) and the line model (src/number_model.py), which import
this and not each other, so that an edit of one model's code reruns only its own stages.
"""
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from src.errors import PipelineError, first_line


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_weights(model: nn.Module, path) -> None:
    """Save the state_dict (as the notebook did), on the CPU and in plain contiguous layout."""
    from src.fileio import save_torch

    save_torch({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, path)


class WeightsMismatch(PipelineError):
    """A weights file whose tensors are not those of the model params.yaml builds; `detail` says how."""

    def __init__(self, path, detail: str):
        self.detail = detail
        super().__init__(f"{path} does not fit the model params.yaml builds: {detail}")


def read_weights(path) -> dict:
    """The state_dict in a weights file, loaded with `weights_only=True`: a pickled object, which
    could run code, is refused. One line (PipelineError) for a file that is not torch.save's."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro` first")
    if not zipfile.is_zipfile(path):   # torch.load's errors on other bytes say nothing (a KeyError of a number)
        raise PipelineError(f"{path} is not a weights file (torch.save writes a zip archive)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise PipelineError(f"{path} holds more than tensors, which weights-only loading refuses (it could run "
                            f"code): {first_line(error)}") from None
    except (RuntimeError, EOFError, KeyError, ValueError) as error:   # a damaged or foreign zip archive
        raise PipelineError(f"{path} is not a readable weights file: {first_line(error)}") from None


def mismatches(own: dict, weights) -> list[str]:
    """How a state_dict differs from a model's own: missing and unexpected names, other shapes."""
    if not isinstance(weights, dict):
        return [f"it holds a {type(weights).__name__}, not a state_dict"]
    shape = lambda t: " x ".join(map(str, getattr(t, "shape", ()))) or "a scalar"  # noqa: E731
    listed = lambda keys: ", ".join(keys[:2]) + (f" and {len(keys) - 2} more" if len(keys) > 2 else "")  # noqa: E731
    missing, unexpected = [k for k in own if k not in weights], [k for k in weights if k not in own]
    other = [f"{k} is {shape(weights[k])} there, {shape(own[k])} here" for k in own
             if k in weights and getattr(weights[k], "shape", None) != own[k].shape]
    return ([f"no {listed(missing)}"] if missing else []) + ([f"unknown {listed(unexpected)}"] if unexpected else []) + other[:2]


def fit_weights(model: nn.Module, weights, path) -> nn.Module:
    """`weights` (read from `path`) loaded into `model`; WeightsMismatch, one line, if any name or
    shape differs."""
    problems = mismatches(model.state_dict(), weights)
    if problems:
        raise WeightsMismatch(path, "; ".join(problems))
    model.load_state_dict(weights)
    return model


def load_weights(model: nn.Module, path) -> nn.Module:
    """Load a state_dict (read_weights: `weights_only=True` refuses pickled objects, which could run code)."""
    return fit_weights(model, read_weights(path), path)
