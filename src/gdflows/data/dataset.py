"""The dataset record every loader returns, and the subsetting shared by all.

Images are kept as ``(N, H, W, C)`` arrays (NHWC), pixels scaled to [0, 1];
labels are integer class indices ``0..num_classes-1``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gdflows.errors import GDFlowsError
from gdflows.validation import is_integer_in


class DatasetNotFoundError(GDFlowsError, FileNotFoundError):
    """A dataset's files are not on disk; the message says which files go where."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset (``x``: (N, H, W, C), ``y``: (N,) ints), and a validation split
    carved from the training images where one was asked for (:func:`split_validation`)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def select_classes(x: np.ndarray, y: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
    """Keep examples of ``classes`` and relabel them ``0..len(classes)-1`` in the order given."""
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or not classes:
        raise GDFlowsError(f"classes must be distinct labels, got {classes}")
    missing = sorted(set(classes) - set(np.unique(y).tolist()))
    if missing:
        raise GDFlowsError(f"classes {missing} do not occur in the data (labels present: {sorted(set(y.tolist()))})")
    keep = np.isin(y, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([relabel[int(c)] for c in y[keep]], dtype=np.int32)


def stratified_order(y: np.ndarray) -> np.ndarray:
    """Indices interleaving the classes round-robin (each class in its original order).

    Taking the first n of them gives a class-balanced, deterministic subset.
    """
    rank = np.zeros(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rank[idx] = np.arange(len(idx))
    return np.lexsort((y, rank))


def split_validation(data: Dataset, n_val: int) -> Dataset:
    """``data`` with its last ``n_val`` training examples in :func:`stratified_order` moved to a validation
    split (class-balanced; the training split keeps the first ones, so a larger ``n_train`` only adds)."""
    n = len(data.y_train)
    if not is_integer_in(n_val, 1, n - 1):
        raise GDFlowsError(f"n_val must be an integer in [1, {n - 1}] (below the {n} training images), got {n_val!r}")
    if data.x_val is not None:
        raise GDFlowsError("this dataset already has a validation split")
    order = stratified_order(data.y_train)
    train, val = np.sort(order[: n - n_val]), np.sort(order[n - n_val :])
    return dataclasses.replace(
        data, x_train=data.x_train[train], y_train=data.y_train[train], x_val=data.x_train[val], y_val=data.y_train[val]
    )


def take_stratified(x: np.ndarray, y: np.ndarray, n: int | None, split: str):
    """The first ``n`` examples in :func:`stratified_order` (all when ``n`` is None)."""
    if n is None:
        return x, y
    if not is_integer_in(n, 1, len(y)):
        raise GDFlowsError(f"n_{split} must be an integer in [1, {len(y)}], got {n!r}")
    idx = np.sort(stratified_order(y)[: int(n)])
    return x[idx], y[idx]


def finish(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    name,
    classes=None,
    n_train=None,
    n_test=None,
    standardize=False,
    dtype="float64",
) -> Dataset:
    """Apply class and size subsets, scale uint8 pixels to [0, 1], optionally standardise.

    Standardisation uses the scalar mean and std of the (subset) training pixels:
    x <- (x - mean) / std, the same constants for the test set.
    """
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if classes is not None:
        x_train, y_train = select_classes(x_train, y_train, classes)
        x_test, y_test = select_classes(x_test, y_test, classes)
        num_classes = len(classes)
    x_train, y_train = take_stratified(x_train, y_train, n_train, "train")
    x_test, y_test = take_stratified(x_test, y_test, n_test, "test")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise GDFlowsError(f"dtype must be float32 or float64, got {dtype}")
    x_train, x_test = _scaled(x_train, dtype), _scaled(x_test, dtype)
    if standardize:
        mean, std = x_train.mean(), x_train.std()
        for x in (x_train, x_test):
            x -= mean
            x /= std
    return Dataset(x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32), num_classes, name)


def _scaled(x: np.ndarray, dtype) -> np.ndarray:
    """x / 255 in ``dtype``, in place on the converted copy (one copy of the images, not three)."""
    out = x.astype(dtype)
    out /= dtype.type(255)
    return out


def downsample(data: Dataset, factor: int) -> Dataset:
    """Average-pool the images by ``factor`` in height and width (a CPU-budget knob).

    x'[n, i, j, c] = mean over a, b in [0, factor) of x[n, factor*i + a, factor*j + b, c].
    """
    h, w, c = data.input_shape
    if not is_integer_in(factor, 1) or h % factor or w % factor:
        raise GDFlowsError(
            f"downsample factor must be an integer >= 1 dividing the image size "
            f"{h}x{w}, got {factor!r}; e.g. 2 for MNIST (14x14)"
        )
    k = int(factor)

    def pool(x):
        return x.reshape(x.shape[0], h // k, k, w // k, k, c).mean(axis=(2, 4)).astype(x.dtype)

    val = None if data.x_val is None else pool(data.x_val)
    return dataclasses.replace(data, x_train=pool(data.x_train), x_test=pool(data.x_test), x_val=val)
