"""Datasets: the bundled MNIST subset, MNIST/Fashion-MNIST IDX files, CIFAR-10 batches."""

from gdflows.data.dataset import Dataset, DatasetNotFoundError, downsample
from gdflows.data.load import NAMES, load_dataset

__all__ = ["Dataset", "DatasetNotFoundError", "downsample", "load_dataset", "NAMES"]
