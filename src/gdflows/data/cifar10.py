"""CIFAR-10 from the python-pickle batches in ``cifar-10-batches-py``.

Files: ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch``; each a
pickled dict with ``b'data'`` (N, 3072) uint8, rows as 3 colour planes of
32x32 (CHW order), and ``b'labels'`` (N ints).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from gdflows.data.dataset import DatasetNotFoundError
from gdflows.errors import GDFlowsError

TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
TEST = ["test_batch"]
FOLDER = "cifar-10-batches-py"


def _batch_folder(folder: Path) -> Path:
    """Accept the batch folder itself or its parent holding ``cifar-10-batches-py``."""
    folder = Path(folder)
    return folder / FOLDER if (folder / FOLDER).is_dir() else folder


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) from one pickle batch."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    try:
        data, labels = batch[b"data"], batch[b"labels"]
    except (KeyError, TypeError):
        raise GDFlowsError(f"{path} is not a CIFAR-10 batch (no b'data'/b'labels' keys)") from None
    x = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(labels, dtype=np.int32)


def load_raw(folder: Path):
    folder = _batch_folder(folder)
    missing = [n for n in TRAIN + TEST if not (folder / n).exists()]
    if missing:
        raise DatasetNotFoundError(
            f"cifar10: {', '.join(missing)} not found in {folder.resolve()}; download "
            "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
            f"extract it so that {FOLDER}/data_batch_1..5 and {FOLDER}/test_batch exist, "
            f"and pass --data-dir pointing to {FOLDER} or its parent"
        )
    train = [read_batch(folder / n) for n in TRAIN]
    x_test, y_test = read_batch(folder / TEST[0])
    return (np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), x_test, y_test)


def write_random_batches(folder: Path, per_batch: int, seed: int = 0) -> Path:
    """Random images and labels in the CIFAR-10 batch format under ``folder/cifar-10-batches-py``.

    Five train batches and a test batch of ``per_batch`` images each. For
    measuring costs and checking configs where the real data is absent; a
    step's cost does not depend on the pixels.
    """
    out = Path(folder) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in TRAIN + TEST:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
        }
        (out / name).write_bytes(pickle.dumps(batch))
    return out
