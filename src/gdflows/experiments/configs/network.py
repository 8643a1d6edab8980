"""Which network on which data: the part of a config that the commands on a network share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs.base import (
    ActivationName,
    DatasetName,
    DType,
    LossName,
    ModelName,
    check_choices,
    check_integers,
    flag,
    load,
)


@dataclasses.dataclass(frozen=True)
class NetworkSetup:
    """Which network on which data (CPU-sized defaults: a tanh MLP, 2 hidden layers of 32,
    MSE on 1,000 bundled MNIST images pooled to 14x14: 7,690 parameters)."""

    dataset: DatasetName = "mnist_subset"  # mnist_subset is bundled; the others read files from data_dir
    data_dir: Path | None = None  # folder with the mnist / fashion_mnist IDX files or cifar-10-batches-py
    n_train: int | None = 1000  # training images (None: all), class-balanced
    n_test: int | None = None  # test images (None: all)
    classes: tuple[int, ...] = ()  # keep only these labels (empty: all)
    downsample: int = 2  # average-pool images by this factor
    model: ModelName = "mlp"
    depth: int = 2  # hidden layers (mlp only)
    width: int = 32  # hidden width (mlp), width multiplier (cnn, vgg, resnet)
    activation: ActivationName = "tanh"  # relu is not holomorphic: no Principal Flow through it
    loss: LossName = "mse"
    seed: int = 0  # parameter initialisation
    dtype: DType = "float64"
    curvature_size: int | None = 1000  # training images the diagnoses use (a class-balanced subset; None: all)
    chunk_size: int | None = None  # images per chunk of every full-data pass (None: 256, on CPUs fewer for big nets)

    def validate(self, prefix: str = "--net.") -> None:
        check_choices(self, prefix)
        positive = ("n_train", "n_test", "downsample", "depth", "width", "curvature_size", "chunk_size")
        check_integers(self, positive, 1, prefix)
        check_integers(self, ("classes", "seed"), 0, prefix)
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise GDFlowsError(
                f"{flag('data_dir', prefix)} {self.data_dir} is not a folder; pass the folder that holds "
                f"the {self.dataset} files"
            )

    def build(self, devices: int | None = None, tol: float | None = None):
        """Load and subset the data, initialise the model, lay the data out on ``devices`` local devices
        (None: all) (a :class:`gdflows.problems.network.NetworkProblem`, diagnosing at ``tol``)."""
        self.validate()
        return load("gdflows.experiments.network_setup:build_network")(self, devices=devices, tol=tol)


def track_net() -> NetworkSetup:
    return NetworkSetup(n_train=256, classes=(0, 1, 2, 3), downsample=4, depth=1, width=16)
