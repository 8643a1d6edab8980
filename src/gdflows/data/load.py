"""One entry point for every dataset: :func:`load_dataset`."""

from __future__ import annotations

import os
from pathlib import Path

from gdflows.data import cifar10, idx, mnist_subset
from gdflows.data.dataset import Dataset, finish
from gdflows.errors import GDFlowsError

NAMES = ("mnist_subset", "mnist", "fashion_mnist", "cifar10")


def default_data_dir(name: str) -> Path:
    """``$GDFLOWS_DATA/<name>`` (``./data/<name>`` when the variable is unset)."""
    return Path(os.environ.get("GDFLOWS_DATA", "data")) / name


def _raw(name: str, data_dir):
    if name == "mnist_subset":
        return mnist_subset.load_raw()
    folder = Path(data_dir) if data_dir is not None else default_data_dir(name)
    if name in ("mnist", "fashion_mnist"):
        return idx.load_raw(folder, name)
    return cifar10.load_raw(folder)


def load_dataset(
    name: str = "mnist_subset",
    data_dir=None,
    classes=None,
    n_train=None,
    n_test=None,
    standardize: bool = False,
    dtype="float64",
) -> Dataset:
    """Load a dataset, keep ``classes`` (relabelled 0..k-1), take class-balanced subsets.

    ``name``: ``mnist_subset`` (bundled, 4,000 train / 1,000 test), ``mnist`` and
    ``fashion_mnist`` (IDX files in ``data_dir``) or ``cifar10`` (pickle batches in
    ``data_dir``). ``n_train``/``n_test`` take the first examples in a round-robin
    order over classes (deterministic and balanced).
    """
    if name not in NAMES:
        raise GDFlowsError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    return finish(
        *_raw(name, data_dir),
        name=name,
        classes=classes,
        n_train=n_train,
        n_test=n_test,
        standardize=standardize,
        dtype=dtype,
    )
