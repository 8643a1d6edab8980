"""Datasets: the bundled MNIST subset, MNIST/Fashion-MNIST IDX files, CIFAR-10 batches.

:data:`NAMES` is the registry of dataset names (``load_dataset(name, ...)``); it is readable without numpy or
JAX (the command line's ``--net.dataset`` choices): every other name of this package loads on first use.
"""

from gdflows._lazy import lazy_package

NAMES = ("mnist_subset", "mnist", "fashion_mnist", "cifar10")

_API = {
    "Dataset": "gdflows.data.dataset",
    "DatasetNotFoundError": "gdflows.data.dataset",
    "downsample": "gdflows.data.dataset",
    "split_validation": "gdflows.data.dataset",
    "load_dataset": "gdflows.data.load",
}
__all__ = ["NAMES", *_API]
lazy_package(__name__, _API)
