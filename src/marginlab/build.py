"""The data, network and device a validated config names.

Training (:mod:`marginlab.training.assembly`) and :class:`marginlab.runs.run.Run` both
build through here, so a finished run rebuilds exactly the model and data it was trained
with.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch import nn

from marginlab.config import ConfigError, RunConfig
from marginlab.data import Dataset, load_dataset
from marginlab.memory import check_fits
from marginlab.models import build_model
from marginlab.models.declare import declare_homogeneity
from marginlab.models.describe import rebuild

DTYPES = {"float64": torch.float64, "float32": torch.float32}

# Copies of the weights that exist at once while a network trains: the weights, their
# gradient, the accepted weights a rollback returns to, and the update being formed.
TRAINING_COPIES = 4


def resolve_device(name: str) -> torch.device:
    """Map ``auto`` to CUDA when present, else CPU; refuse ``cuda`` without a GPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but no CUDA device is available; use cpu")
    return torch.device(name)


def build_data(
    config: RunConfig,
    data_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    base: str | os.PathLike | None = None,
) -> Dataset:
    """Load the run's data set, on ``device`` in the run's dtype.

    ``data.path`` (your own file) is read relative to ``base`` when it is relative: a run
    directory keeps the tensors it was trained on beside its config.
    """
    data = config.data
    params = dict(data.params)
    if data.path is not None:
        params["path"] = Path(base or ".") / data.path
    try:
        dataset = load_dataset(
            data.name,
            data_dir=data_dir,
            classes=data.classes,
            n_train=data.n_train,
            n_test=data.n_test,
            subset=data.subset,
            seed=config.seed,
            **params,
        )
    except ValueError as error:
        raise ConfigError(f"data: {error}") from None
    except MemoryError:
        raise ConfigError(
            "data: the data set does not fit in the memory available; use fewer samples "
            "(data.n_train, data.params.n)"
        ) from None
    if dataset.n_classes < 2:
        raise ConfigError(
            f"data.classes: {list(data.classes or [])} selects a single class, and a margin "
            "separates two or more; list at least two (e.g. data.classes=[3, 5])"
        )
    return dataset.to(device=device, dtype=DTYPES[config.dtype])


def build_network(
    config: RunConfig,
    dataset: Dataset,
    device: str = "cpu",
    template: nn.Module | None = None,
    copies: int = TRAINING_COPIES,
) -> nn.Module:
    """Build the run's model for ``dataset`` and check that its outputs fit the labels.

    A network that a run of :func:`marginlab.fit` recorded layer by layer is rebuilt from
    its description; one it could not describe (``model.kind: module``) needs ``template``,
    a module of the same shape, whose copy receives the weights. A zoo network is refused
    before it is built when ``copies`` of its weights exceed the memory available (training
    holds :data:`TRAINING_COPIES`; reading a checkpoint, one).
    """
    n_outputs = (
        1 if dataset.n_classes == 2 and config.loss != "cross_entropy" else dataset.n_classes
    )
    kind = config.model.get("kind")
    if kind in ("sequential", "module"):
        model = _recorded_network(config.model, template)
        return model.to(device=device, dtype=DTYPES[config.dtype])
    spec = {"seed": config.seed, **config.model}
    try:
        if torch.device(device).type == "cpu":
            _check_network_fits(spec, tuple(dataset.input_shape), n_outputs, config.dtype, copies)
        model = build_model(spec, input_shape=tuple(dataset.input_shape), n_outputs=n_outputs)
    except (TypeError, ValueError) as error:  # every value here comes from the user's spec
        raise ConfigError(f"model: {error}") from None
    except (MemoryError, RuntimeError) as error:  # torch: too large to allocate
        first = (str(error).strip().splitlines() or [""])[0]
        raise ConfigError(f"model: the network cannot be built ({first})") from None
    model = model.to(device=device, dtype=DTYPES[config.dtype])
    with torch.no_grad():
        width = model(dataset.x_train[:2]).shape[1]
    if width not in (n_outputs, dataset.n_classes) or (width == 1 and dataset.n_classes != 2):
        raise ConfigError(
            f"model: the network has {width} outputs but the data has {dataset.n_classes} "
            f"classes; make the last layer {dataset.n_classes} wide"
            + (", or set model.outputs=auto" if kind == "cnn" else "")
            + (" (or 1 for a binary logistic/exponential model)" if dataset.n_classes == 2 else "")
        )
    return model


def _check_network_fits(
    spec: dict, input_shape: tuple[int, ...], n_outputs: int, dtype: str, copies: int
) -> None:
    """Refuse a network whose weights could not fit in the memory available, before any
    of them is allocated: it is built on the meta device, which only counts them."""
    try:
        with torch.device("meta"):
            probe = build_model(spec, input_shape=input_shape, n_outputs=n_outputs)
    except (NotImplementedError, RuntimeError):
        return  # an operation without a meta kernel: the real build alone decides
    count = sum(p.numel() for p in probe.parameters())
    keys = [f"model.{key}" for key in ("width", "hidden", "spec", "depth") if key in spec]
    held = f"{copies} copies in {dtype} while it trains" if copies > 1 else dtype
    check_fits(
        copies * count * DTYPES[dtype].itemsize,
        f"the network's {count:,} parameters ({held})",
        "make it smaller" + (f" ({', '.join(keys)})" if keys else ""),
    )


def _recorded_network(description: dict, template: nn.Module | None) -> nn.Module:
    """The network of a run of :func:`marginlab.fit`, with the order and layer degrees that
    were measured when it was trained."""
    if template is not None:
        model = copy.deepcopy(template)
    elif description["kind"] == "sequential":
        model = rebuild(description)
    else:
        raise ConfigError(
            f"model: the run trained a {description.get('class', 'Python')} module that a run "
            "directory cannot rebuild; open it from Python with "
            "marginlab.load_run(path, model=a_module_of_the_same_shape)"
        )
    declare_homogeneity(model, description.get("order"), description.get("degrees"))
    return model
