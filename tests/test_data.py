import gzip
import pickle
import struct

import numpy as np
import pytest

from gdflows.data import DatasetNotFoundError, load_dataset
from gdflows.data.dataset import stratified_order
from gdflows.data.idx import read_idx
from gdflows.errors import GDFlowsError


def write_idx(path, array, gz=False):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_idx_folder(folder, rng, n_train=12, n_test=6, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 3,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 3,
    }
    for name, arr in arrays.items():
        write_idx(folder / name, arr, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, gz):
    arrays = make_idx_folder(tmp_path / "mnist", np.random.default_rng(0), gz=gz)
    d = load_dataset("mnist", data_dir=tmp_path / "mnist")
    assert d.x_train.shape == (12, 28, 28, 1) and d.x_test.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(d.x_train[..., 0] * 255, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert d.num_classes == 3 and d.name == "mnist"


def test_idx_rejects_bad_magic_and_size(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">i", 3) + b"abc")
    with pytest.raises(GDFlowsError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">i", 5) + b"abc")
    with pytest.raises(GDFlowsError, match="declares shape"):
        read_idx(short)


def write_cifar(folder, rng, n=4):
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": list(rng.integers(0, 10, n))}
        (folder / name).write_bytes(pickle.dumps(batch))
        batches[name] = batch
    return batches


def test_cifar_roundtrip_channels_last(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(1))
    d = load_dataset("cifar10", data_dir=tmp_path)  # the parent folder is accepted
    assert d.x_train.shape == (20, 32, 32, 3) and d.x_test.shape == (4, 32, 32, 3)
    row = batches["data_batch_2"][b"data"][1]
    # pixel (i, j) of channel c sits at row[c * 1024 + i * 32 + j]
    assert d.x_train[5, 3, 7, 2] * 255 == pytest.approx(row[2 * 1024 + 3 * 32 + 7])
    np.testing.assert_array_equal(d.y_test, batches["test_batch"][b"labels"])


def test_missing_files_name_the_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte.*pass --data-dir"):
        load_dataset("fashion_mnist", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py/data_batch_1"):
        load_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(GDFlowsError, match="choose one of"):
        load_dataset("imagenet")


def test_bundled_subset_split_and_scaling():
    d = load_dataset("mnist_subset")
    assert d.x_train.shape == (4000, 28, 28, 1) and d.x_test.shape == (1000, 28, 28, 1)
    assert np.bincount(d.y_train).tolist() == [400] * 10
    assert np.bincount(d.y_test).tolist() == [100] * 10
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    assert d.x_train.dtype == np.float64


def test_class_and_size_subsets_standardised():
    d = load_dataset("mnist_subset", classes=[7, 2], n_train=31, n_test=10, standardize=True, dtype="float32")
    assert d.num_classes == 2 and d.x_train.dtype == np.float32
    assert np.bincount(d.y_train).tolist() == [16, 15]  # round-robin, class 7 first
    assert np.bincount(d.y_test).tolist() == [5, 5]
    assert abs(float(d.x_train.mean())) < 1e-5 and float(d.x_train.std()) == pytest.approx(1, abs=1e-5)


def test_stratified_order_round_robin():
    y = np.array([1, 1, 1, 0, 2, 0])
    assert stratified_order(y).tolist() == [3, 0, 4, 5, 1, 2]


def test_subset_errors():
    with pytest.raises(GDFlowsError, match="do not occur"):
        load_dataset("mnist_subset", classes=[3, 11])
    with pytest.raises(GDFlowsError, match="n_train"):
        load_dataset("mnist_subset", n_train=0)


def test_downsample_averages_blocks_and_names_the_fix():
    from gdflows.data import Dataset, downsample

    rng = np.random.default_rng(0)
    x = rng.random((3, 4, 6, 2))
    data = Dataset(x, np.zeros(3, np.int32), x[:1], np.zeros(1, np.int32), 1, "t")
    small = downsample(data, 2)
    assert small.input_shape == (2, 3, 2)
    for i, j in [(0, 0), (1, 2)]:
        block = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :]
        np.testing.assert_allclose(small.x_train[:, i, j, :], block.sum(axis=(1, 2)) / 4, rtol=1e-15)
    np.testing.assert_array_equal(small.x_test, small.x_train[:1])
    with pytest.raises(GDFlowsError, match="dividing the image size"):
        downsample(data, 4)


def test_fashion_mnist_found_in_the_system_folder_by_default(tmp_path, monkeypatch):
    from gdflows.data import load

    system = tmp_path / "system"
    arrays = make_idx_folder(system, np.random.default_rng(3), gz=True)
    monkeypatch.setitem(load.SYSTEM_DIRS, "fashion_mnist", (system, "dataset-fashion-mnist"))
    monkeypatch.setenv("GDFLOWS_DATA", str(tmp_path / "user"))  # no user folder: the system one is used
    d = load_dataset("fashion_mnist")
    np.testing.assert_array_equal(d.y_train, arrays["train-labels-idx1-ubyte"])
    # a user folder, when it exists, comes first
    user = make_idx_folder(tmp_path / "user" / "fashion_mnist", np.random.default_rng(4), n_train=9)
    np.testing.assert_array_equal(load_dataset("fashion_mnist").y_train, user["train-labels-idx1-ubyte"])


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path, monkeypatch):
    from gdflows.data import load

    monkeypatch.setitem(load.SYSTEM_DIRS, "fashion_mnist", (tmp_path / "absent", "dataset-fashion-mnist"))
    monkeypatch.setenv("GDFLOWS_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=r"--data-dir.*`make data`.*apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", data_dir=tmp_path)  # a folder without the files
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    assert "apt-get" not in str(err.value)  # no package holds MNIST
