"""One entry point for every dataset: :func:`load_dataset`."""

from __future__ import annotations

import os
from pathlib import Path

from gdflows.data import NAMES, cifar10, idx, mnist_subset
from gdflows.data.dataset import Dataset, finish
from gdflows.errors import GDFlowsError

# Where a system package puts a dataset, and the package.
SYSTEM_DIRS = {"fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"), "dataset-fashion-mnist")}


def default_data_dir(name: str) -> Path:
    """``$GDFLOWS_DATA/<name>`` (``./data/<name>`` when the variable is unset)."""
    return Path(os.environ.get("GDFLOWS_DATA", "data")) / name


def install_hint(name: str) -> str:
    """How to install ``name`` from a system package ("" when there is none)."""
    if name not in SYSTEM_DIRS:
        return ""
    folder, package = SYSTEM_DIRS[name]
    return f"; or install Debian's {package} into {folder} (`make data`, i.e. `apt-get install {package}`)"


def find_data_dir(name: str, data_dir=None) -> Path:
    """``data_dir`` if given, else ``$GDFLOWS_DATA/<name>`` if it exists, else the system package's folder.

    The system folder (:data:`SYSTEM_DIRS`) is used when it exists; otherwise
    the user folder is returned and the loader's error names both fixes.
    """
    if data_dir is not None:
        return Path(data_dir)
    user = default_data_dir(name)
    if not user.exists() and name in SYSTEM_DIRS and SYSTEM_DIRS[name][0].is_dir():
        return SYSTEM_DIRS[name][0]
    return user


def _raw(name: str, data_dir):
    if name == "mnist_subset":
        return mnist_subset.load_raw()
    folder = find_data_dir(name, data_dir)
    if name in ("mnist", "fashion_mnist"):
        return idx.load_raw(folder, name, install_hint(name))
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
    ``data_dir``). Without ``data_dir``: ``$GDFLOWS_DATA/<name>`` (default
    ``./data/<name>``) if it exists, else for ``fashion_mnist`` the folder of
    Debian's ``dataset-fashion-mnist`` package (:func:`find_data_dir`).
    ``n_train``/``n_test`` take the first examples in a round-robin order over
    classes (deterministic and balanced).
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
