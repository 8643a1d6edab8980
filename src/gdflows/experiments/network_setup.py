"""Which network on which data: the part of a config that ``train`` and ``drift`` share.

Defaults are CPU-sized: a tanh MLP (2 hidden layers of 32) with MSE on 1,000
images of the bundled MNIST subset, average-pooled to 14x14 (7,690 parameters).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gdflows.data import downsample, load_dataset
from gdflows.problems.network import NetworkProblem, network_problem


@dataclasses.dataclass(frozen=True)
class NetworkSetup:
    """Dataset, subset, model and loss of a network run."""

    dataset: str = "mnist_subset"
    data_dir: Path | None = None  # for mnist / fashion_mnist / cifar10 files
    n_train: int | None = 1000
    n_test: int | None = None
    classes: tuple[int, ...] = ()  # keep only these labels (empty: all)
    downsample: int = 2  # average-pool images by this factor
    model: str = "mlp"
    depth: int = 2  # hidden layers (mlp only)
    width: int = 32
    activation: str = "tanh"
    loss: str = "mse"
    seed: int = 0  # parameter initialisation
    dtype: str = "float64"

    def build(self) -> NetworkProblem:
        """Load and subset the data, initialise the model, close the loss over the training set."""
        data = load_dataset(
            self.dataset,
            data_dir=self.data_dir,
            classes=self.classes or None,
            n_train=self.n_train,
            n_test=self.n_test,
            dtype=self.dtype,
        )
        if self.downsample > 1:
            data = downsample(data, self.downsample)
        kwargs = {"width": self.width, "activation": self.activation}
        if self.model == "mlp":
            kwargs["depth"] = self.depth
        return network_problem(self.model, data, self.loss, seed=self.seed, dtype=self.dtype, **kwargs)
