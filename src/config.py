"""Reading and validating params.yaml.

Every stage validates the whole file before doing any work, so a typo or a bad value fails at
once with one line naming the key and the value, and no stage runs on half-valid settings.
"""
import math
from pathlib import Path

import yaml

from src.errors import PipelineError

PARAMS_FILE = Path("params.yaml")


class ParamsError(PipelineError, ValueError):
    pass


def _describe(value):
    return f"{value!r} ({type(value).__name__})"


def _int(minimum, maximum=None):
    def check(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        ok = ok and (maximum is None or value <= maximum)
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        return ok, f"an integer {bound}"
    return check


def _float(minimum, maximum, *, open_max=False):
    def check(value):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and minimum <= value and (value < maximum if open_max else value <= maximum)
        return ok, f"a number in [{minimum}, {maximum}{')' if open_max else ']'}"
    return check


def _positive_float(value):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
    return ok, "a positive number"


def _choice(*options):
    def check(value):
        return value in options, f"one of {', '.join(options)}"
    return check


def _bool(value):
    return isinstance(value, bool), "true or false"


def _int_list(value):
    ok = isinstance(value, list) and len(value) > 0
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    return ok, "a non-empty list of positive integers"


NET_SCHEMA = {
    "mlp": {"hidden": _int_list, "dropout": _float(0, 1, open_max=True)},
    "cnn": {"widths": _int_list, "dropout": _float(0, 1, open_max=True), "stem": _choice("pool", "stride")},
    "seed_cnn": {},
}
ARCH_NAMES = tuple(NET_SCHEMA)  # the keys of src.models.ARCHS (a test checks); not imported, so
# that editing model code does not make the data stages, which validate params too, rerun

MODEL_SCHEMA = {
    "arch": _choice(*ARCH_NAMES),
    "net": dict,  # checked against the architecture's NET_SCHEMA
    "epochs": _int(1),
    "batch_size": _int(1),
    "optimizer": _choice("sgd", "adam", "adamw"),
    "lr": _positive_float,
    "momentum": _float(0, 1, open_max=True),
    "weight_decay": _float(0, 1),
    "schedule": _choice("onecycle", "constant"),
    "warmup": _float(0, 1),
    "label_smoothing": _float(0, 1, open_max=True),
    "shift": _int(0, 8),
    "rotate": _float(0, 180),
    "scale": _float(0, 1, open_max=True),
    "precision": _choice("auto", "fp32", "bf16"),
}
# Keys a model section may leave out. `init`: another model section whose trained weights this one
# starts from (the same arch and net); `writer_digits`: train on data/writers/digits.pt too, the
# training writers' digits (src/writer_digits.py), beside MNIST's; `several_digits`: an eleventh
# output, a piece of ink that is several digits touching, learned from that file's pairs.
MODEL_OPTIONAL = {"init": str, "writer_digits": _bool, "several_digits": _bool}
# The one model section whose stage (train_reader) declares the files those keys read
# (models/<init>.pth, data/writers/digits.pt): set in train.mlp or train.cnn (the stage train),
# DVC would not know that the stage reads them, nor rerun it when they change.
OPTIONAL_SECTION = "reader"
DECLARED_INIT = "cnn"   # the one model whose weights train_reader declares (models/cnn.pth): the only `init`
DIGITS = 10
SEVERAL = 10   # the label of several digits (data/writers/digits.pt) and its output, after the digits'


def _int_range(minimum, maximum):
    def check(value):
        ok = isinstance(value, list) and len(value) == 2
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ok = ok and minimum <= value[0] <= value[1] <= maximum
        return ok, f"[low, high], integers with {minimum} <= low <= high <= {maximum}"
    return check


def _widths(count):
    def check(value):
        ok, _ = _int_list(value)
        return ok and len(value) == count, f"a list of {count} positive integers"
    return check


# The line model that reads whole numbers (src/train_numbers.py, src/evaluate_numbers.py); a
# mapping as a schema's value is a nested section, checked key by key.
NUMBERS_SCHEMA = {
    "images": {
        "lengths": _int_range(1, 16),
        "spacing": _int_range(-14, 14),
        "augment": {"scale": _float(0, 1, open_max=True), "rotate": _float(0, 45), "slant": _float(0, 45),
                    "baseline": _float(0, 4), "elastic": _float(0, 4), "thickness": _float(0, 1),
                    "blur": _float(0, 1), "join": _float(0, 1)},
        "writer_lines": _float(0, 4),
    },
    "net": {"widths": _widths(3), "hidden": _int(1), "sequence": _choice("lstm", "conv")},
    "train": {"seed": _int(0), "steps": _int(1), "batch_size": _int(1), "optimizer": _choice("sgd", "adam", "adamw"),
              "lr": _positive_float, "momentum": _float(0, 1, open_max=True), "weight_decay": _float(0, 1),
              "schedule": _choice("onecycle", "constant"), "warmup": _float(0, 1),
              "precision": _choice("auto", "fp32", "bf16"), "eval_every": _int(1), "val_numbers": _int(1),
              "calibration_numbers": _int(1), "unflagged_accuracy": _float(0, 1)},
    "evaluate": {"seed": _int(0), "per_kind": _int(1), "lengths": _int_range(1, 16), "per_length": _int(1),
                 "gallery_size": _int(0, 100)},
}

# The other-writers benchmark (src/writer_sets.py, src/evaluate_writers.py).
WRITERS_SCHEMA = {"seed": _int(0), "writers": _int(1), "single": _int(1), "per_set": _int(1),
                  "gallery_size": _int(0, 100)}

# Lines by the training split's other writers, for the line model (src/writer_lines.py).
WRITER_LINES_SCHEMA = {"seed": _int(0), "count": _int(1), "touching": _float(0, 1), "askew": _float(0, 1),
                       "photographed": _float(0, 1)}

# Single digits by the training split's other writers, for the reader's classifier (src/writer_digits.py).
WRITER_DIGITS_SCHEMA = {"seed": _int(0), "count": _int(1), "photographed": _float(0, 1), "pairs": _int(0),
                        "pairs_marker": _float(0, 1)}

SCHEMA = {
    "data": {"val_size": _int(0, 30000), "seed": _int(0)},
    "train": {"seed": _int(0), "device": _choice("auto", "cpu", "cuda"), "subset": _int(0), "nproc": _int(1)},
    "evaluate": {"batch_size": _int(1), "gallery_size": _int(0, 100), "tta": _bool},
    "numbers": NUMBERS_SCHEMA,
    "writers": WRITERS_SCHEMA,
    "writer_lines": WRITER_LINES_SCHEMA,
    "writer_digits": WRITER_DIGITS_SCHEMA,
}


def _check_section(section: dict, schema: dict, where: str, path: Path, required=True, optional=None):
    if not isinstance(section, dict):
        raise ParamsError(f"{path}: {where} must be a mapping, got {_describe(section)}")
    optional = optional or {}
    schema = {**schema, **optional}
    for key in section:
        if key not in schema:
            raise ParamsError(f"{path}: unknown key {where}.{key} (known: {', '.join(schema)})")
    for key, check in schema.items():
        if key not in section:
            if required and key not in optional:
                raise ParamsError(f"{path}: missing key {where}.{key}")
            continue
        value = section[key]
        if isinstance(check, dict):
            _check_section(value, check, f"{where}.{key}", path)
            continue
        if check in (dict, str):
            if not isinstance(value, check):
                kind = "a mapping" if check is dict else "a string"
                raise ParamsError(f"{path}: {where}.{key} must be {kind}, got {_describe(value)}")
            continue
        ok, expected = check(value)
        if not ok:
            raise ParamsError(f"{path}: {where}.{key} must be {expected}, got {_describe(value)}")


def validate(params: dict, path: Path = PARAMS_FILE) -> dict:
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {_describe(params)}")
    for name in params:
        if name not in SCHEMA:
            raise ParamsError(f"{path}: unknown section {name} (known: {', '.join(SCHEMA)})")
    for name, schema in SCHEMA.items():
        section = params.get(name)
        if section is None:
            raise ParamsError(f"{path}: missing section {name}")
        if name == "train":
            # every mapping under `train` is one model's settings (train.mlp, train.cnn, ...)
            models = {k: v for k, v in section.items() if isinstance(v, dict)}
            _check_section({k: v for k, v in section.items() if k not in models}, schema, name, path)
            for model_name, model in models.items():
                where = f"train.{model_name}"
                _check_section(model, MODEL_SCHEMA, where, path, optional=MODEL_OPTIONAL)
                _check_section(model["net"], NET_SCHEMA[model["arch"]], f"{where}.net", path, required=False)
                _check_optional_only_in_its_section(model, model_name, path)
                _check_init(models, model_name, path)
                _check_several(model, where, params.get("writer_digits"), path)
                if model["batch_size"] % section["nproc"]:  # each process takes an equal slice of a batch
                    raise ParamsError(f"{path}: {where}.batch_size ({model['batch_size']}) must be a multiple "
                                      f"of train.nproc ({section['nproc']})")
        else:
            _check_section(section, schema, name, path)
    return params


def _check_init(models: dict, name: str, path: Path) -> None:
    """A model that starts from another's weights must be built as that one is."""
    init = models[name].get("init")
    if init is None:
        return
    if init == name or init not in models:
        others = ", ".join(sorted(set(models) - {name}))
        raise ParamsError(f"{path}: train.{name}.init must name another model section ({others}), got {init!r}")
    if init != DECLARED_INIT:   # another file than the stage's dep: DVC would neither order nor rerun it by that model
        raise ParamsError(f"{path}: train.{name}.init can only be {DECLARED_INIT} (or absent), whose weights "
                          f"(models/{DECLARED_INIT}.pth) the stage train_reader declares; got {init!r}")
    for key in ("arch", "net"):
        if models[name][key] != models[init][key]:
            raise ParamsError(f"{path}: train.{name}.{key} ({models[name][key]!r}) must equal train.{init}.{key} "
                              f"({models[init][key]!r}): train.{name} starts from {init}'s weights")


def _check_optional_only_in_its_section(model: dict, name: str, path: Path) -> None:
    if name == OPTIONAL_SECTION:
        return
    for key in MODEL_OPTIONAL:
        if model.get(key):
            raise ParamsError(f"{path}: train.{name}.{key} ({model[key]!r}) is for train.{OPTIONAL_SECTION} only, whose "
                              f"stage (train_reader) declares the files it reads")


def _check_several(model: dict, where: str, writer_digits, path: Path) -> None:
    """`several_digits` learns from the writers' pairs: the model must train on them, and there must be some."""
    if not model.get("several_digits"):
        return
    if not model.get("writer_digits"):
        raise ParamsError(f"{path}: {where}.several_digits needs {where}.writer_digits: true (it learns from the "
                          "writers' pairs in data/writers/digits.pt)")
    if isinstance(writer_digits, dict) and writer_digits.get("pairs") == 0:
        raise ParamsError(f"{path}: {where}.several_digits needs writer_digits.pairs > 0, got 0")


def load_params(path: Path = PARAMS_FILE) -> dict:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    return validate(params, path)


def model_params(params: dict, name: str) -> dict:
    """The section train.<name>. Only that section is looked at, so that a stage reads no other
    model's params (tests/test_stage_declarations.py records what each stage reads)."""
    section = params["train"].get(name)
    if not isinstance(section, dict):
        models = sorted(k for k, v in dict.items(params["train"]) if isinstance(v, dict))
        raise ParamsError(f"params.yaml: no model section train.{name} (models: {', '.join(models)})")
    return section
