"""The trained model behind the reader, in either of two runtimes: the same answers, different costs.

- `torch`: models/<model>.pth (a state_dict, loaded with `weights_only=True`: a weights file
  cannot run code), rebuilt from params.yaml's `train.<model>` section and normalised with
  data/processed/stats.json: exactly what the pipeline trained and evaluated.
- `onnx`: models/<model>.onnx alone, the export stage's self-contained file (normalisation
  inside), run by onnxruntime. This path never imports torch, which is most of a server's memory.

Either way a model is an object with `name`, `arch`, `runtime`, `md5` (of the weights or ONNX
file it runs, as dvc.lock records it: which model answered), `threads` (as the runtime reports
them; onnxruntime's 0 is one per core) and `logits(pixels)`: float32
N x 1 x 28 x 28 raw intensities in [0, 1] (MNIST / 255) -> N x 10 logits, or N x 11 for the
reader's classifier, whose eleventh output says that the piece is several digits (SEVERAL).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.errors import PipelineError, first_line
from src.fileio import md5_of

RUNTIMES = ("torch", "onnx")
DEFAULT_RUNTIME = "onnx"  # the CLI's, the API's, `make serve`'s and `make bench-serve`'s default
# reader: the reader's classifier (train.reader: the cnn trained on further with other writers'
# digits); cnn and mlp: the pipeline's MNIST benchmark models, which read every piece the same way.
MODELS = ("reader", "cnn", "mlp")
DEFAULT_MODEL = "reader"
REBUILD = "run `make repro` (or `dvc pull`) first"


class ModelError(PipelineError):
    """The model or its statistics are missing, or do not fit params.yaml or the reader."""


class ModelMissing(ModelError):
    """A file the model needs is not there (not made, or not pulled): the one failure a reader can
    read on without (the line model's, digit_reader/reader.py)."""


def require(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            raise ModelMissing(f"{path} not found: {REBUILD}")


@dataclass
class TorchWeights:
    net: object          # the torch module, in eval mode
    mean: float          # the training split's pixel statistics (data/processed/stats.json)
    std: float
    md5: str             # of the weights file, as dvc.lock records it


def load_torch_weights(root: Path, file: str, section: str, settings, build, threads: int | None) -> TorchWeights:
    """What the torch runtime of the classifier and of the line model share: root/models/<file>,
    built by `build(settings(params), weights)` from params.yaml's `section` and normalised with
    data/processed/stats.json; ModelMissing if a file is not there, ModelError, one line, if
    anything does not fit. Sets torch's threads when given."""
    import torch

    from src.config import ParamsError, load_params
    from src.data import load_stats
    from src.weights import WeightsMismatch

    weights, stats_dir = root / "models" / file, root / "data" / "processed"
    require(weights, stats_dir / "stats.json")
    try:
        cfg = settings(load_params(root / "params.yaml"))
    except ParamsError as error:
        raise ModelError(str(error)) from None
    try:
        mean, std = load_stats(stats_dir)
        net = build(cfg, weights)
    except WeightsMismatch as error:   # another architecture's weights
        described = ", ".join(f"{key} {value}" for key, value in cfg.items())
        raise ModelError(f"{weights} does not fit {section} in params.yaml ({described}): {error.detail}; "
                         f"{REBUILD}") from None
    except PipelineError as error:   # not a weights file, or no valid statistics
        raise ModelError(f"{error}; {REBUILD}") from None
    if threads:
        torch.set_num_threads(threads)
    return TorchWeights(net.eval(), mean, std, md5_of(weights))


class TorchModel:
    runtime = "torch"

    def __init__(self, name: str, root: Path, threads: int | None = None):
        import torch

        from src.config import model_params
        from src.models import load_trained

        def settings(params):
            cfg = model_params(params, name)
            return {"arch": cfg["arch"], "net": cfg["net"]}

        self.name = name
        loaded = load_torch_weights(root, f"{name}.pth", f"train.{name}", settings,
                                    lambda cfg, weights: load_trained(cfg["arch"], cfg["net"], weights), threads)
        self.net, self.mean, self.std, self.md5 = loaded.net, loaded.mean, loaded.std, loaded.md5
        self.arch = type(self.net).__name__
        self.threads = torch.get_num_threads()
        self._torch = torch

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = (torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)) - self.mean) / self.std
            return self.net(x).numpy()


def onnx_session(path: Path, threads: int | None):
    """An onnxruntime session of the file at `path` on `threads` CPU threads (None: its default);
    ModelError, one line, if the file is missing or onnxruntime cannot load it."""
    import onnxruntime

    require(path)
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # not ONNX, truncated, or an operator this onnxruntime lacks
        raise ModelError(f"{path} is not a model onnxruntime can run: {first_line(error)}; {REBUILD}") from None


class OnnxModel:
    runtime = "onnx"

    def __init__(self, name: str, root: Path, threads: int | None = None):
        self.name = name
        path = root / "models" / f"{name}.onnx"
        self.session = onnx_session(path, threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        signature = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
        digits_out = outputs and outputs[0].shape[1:] in ([10], [11])   # the digits, and several digits (SEVERAL)
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0].shape[1:] != [1, 28, 28] or not digits_out:
            raise ModelError(f"{path} maps {signature[0]} to {signature[1]}, not one N x 1 x 28 x 28 input of "
                             f"pixels to one N x 10 (or 11: several digits) output of logits; {REBUILD}")
        inputs, outputs = inputs[0], outputs[0]
        self.input, self.output = inputs.name, outputs.name
        self.arch = self.session.get_modelmeta().custom_metadata_map.get("arch", "unknown")
        self.md5 = md5_of(path)
        self.threads = self.session.get_session_options().intra_op_num_threads  # 0: one per core

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run([self.output], {self.input: np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def load_model(name: str, root: Path | str = ".", runtime: str = DEFAULT_RUNTIME, threads: int | None = None):
    """models/<name> in `runtime`, on `threads` CPU threads (None: the runtime's default); ModelError,
    one line, if it is missing or does not fit."""
    backends = {"torch": TorchModel, "onnx": OnnxModel}
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    if runtime not in backends:
        raise ModelError(f"unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    return backends[runtime](name, Path(root), threads)
