"""MNIST and Fashion-MNIST from their standard IDX files in a local folder.

Files (each raw or gzipped with a ``.gz`` suffix)::

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

IDX layout: two zero bytes, a type byte (0x08 = unsigned byte, the only one
used by these datasets), the number of dimensions, then each dimension as a
big-endian int32, then the data in C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from gdflows.data.dataset import DatasetNotFoundError
from gdflows.errors import GDFlowsError

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (raw or .gz) into a uint8 array of its declared shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise GDFlowsError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise GDFlowsError(f"{path}: IDX type byte 0x{data[2]:02x} is not unsigned byte (0x08)")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise GDFlowsError(f"{path}: header declares shape {shape} but holds {body.size} bytes")
    return body.reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def load_raw(folder: Path, name: str = "mnist", install: str = ""):
    """uint8 images (N, 28, 28, 1) and int labels for train and test.

    ``install``: how to get the files, appended to the error when they are missing.
    """
    folder = Path(folder)
    paths = {key: _find(folder, stem) for key, stem in FILES.items()}
    missing = [FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DatasetNotFoundError(
            f"{name}: {', '.join(missing)} not found in {folder.resolve()}; put the four "
            f"standard IDX files ({', '.join(FILES.values())}, raw or .gz) in that folder "
            f"or pass --data-dir pointing to the folder that holds them{install}"
        )
    arrays = {key: read_idx(p) for key, p in paths.items()}
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise GDFlowsError(f"{name}: {split} images and labels differ in count")
    return (
        arrays["x_train"][..., None],
        arrays["y_train"].astype(np.int32),
        arrays["x_test"][..., None],
        arrays["y_test"].astype(np.int32),
    )
