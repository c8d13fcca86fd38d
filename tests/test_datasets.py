"""Tests of sklearn_structlearn.datasets (loaders, patches, planted structure)."""

import gzip
import shutil
import struct

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_structlearn.datasets import (
    DIGITS_SHAPE,
    FASHION_MNIST_CLASS_NAMES,
    FASHION_MNIST_ENV_VAR,
    FASHION_MNIST_SHAPE,
    _read_idx,
    extract_image_patches,
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
    make_planted_structure,
    permute_pixels,
    unpermute,
)

FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# Skips only when the data is really absent, naming what to install.
requires_fashion = pytest.mark.skipif(
    not fashion_mnist_available(),
    reason=(
        "Fashion-MNIST files not found: install the Debian package dataset-fashion-mnist "
        f"(apt-get install -y dataset-fashion-mnist) or set {FASHION_MNIST_ENV_VAR}"
    ),
)


def _write_idx(file, array, *, compress=True, magic=None):
    """Write `array` (uint8) as an idx file, optionally with a forged magic."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = bytes([0, 0, 0x08, array.ndim])
    payload = magic + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    file.write_bytes(gzip.compress(payload) if compress else payload)


def _write_small_fashion(directory, n_train=30, n_test=20, seed=0):
    rng = np.random.RandomState(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(
            directory / f"{prefix}-images-idx3-ubyte.gz",
            rng.randint(0, 256, size=(n, *FASHION_MNIST_SHAPE)),
        )
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


@pytest.fixture(scope="module")
def fashion_train():
    return load_fashion_mnist(subset="train")


# --------------------------------------------------------------------------- #
# Fashion-MNIST on the real files
# --------------------------------------------------------------------------- #


@pytest.mark.fashion
@requires_fashion
def test_fashion_train_real(fashion_train):
    X, y = fashion_train
    assert X.shape == (60000, 784)
    assert X.dtype == np.float32
    assert y.shape == (60000,)
    assert_array_equal(np.unique(y), np.arange(10))
    assert X.min() == 0.0 and X.max() == 1.0
    # The published split is balanced: 6000 images per class.
    assert_array_equal(np.bincount(y), np.full(10, 6000))


@pytest.mark.fashion
@requires_fashion
def test_fashion_test_real_unscaled_and_bunch():
    data = load_fashion_mnist(subset="test", return_X_y=False, scale=False, dtype=np.float64)
    assert data.data.shape == (10000, 784)
    assert data.data.dtype == np.float64
    assert data.images.shape == (10000, *FASHION_MNIST_SHAPE)
    assert np.shares_memory(data.images, data.data)
    assert data.data.max() == 255.0
    assert_array_equal(np.all(data.data == np.round(data.data)), True)
    assert_array_equal(np.unique(data.target), np.arange(10))
    assert data.target_names == list(FASHION_MNIST_CLASS_NAMES)
    assert len(FASHION_MNIST_CLASS_NAMES) == 10
    assert "Fashion-MNIST" in data.DESCR


@pytest.mark.fashion
@requires_fashion
def test_fashion_all_is_train_then_test(fashion_train):
    X_all, y_all = load_fashion_mnist(subset="all")
    X_test, y_test = load_fashion_mnist(subset="test")
    assert X_all.shape == (70000, 784)
    assert_array_equal(X_all[:60000], fashion_train[0])
    assert_array_equal(y_all[60000:], y_test)


@pytest.mark.fashion
@requires_fashion
def test_fashion_subset_reproducible_and_stratified(fashion_train):
    X1, y1 = load_fashion_mnist(subset="test", n_samples=1000, random_state=0)
    X2, y2 = load_fashion_mnist(subset="test", n_samples=1000, random_state=0)
    X3, _ = load_fashion_mnist(subset="test", n_samples=1000, random_state=1)
    assert X1.shape == (1000, 784)
    assert_array_equal(X1, X2)
    assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert_array_equal(np.bincount(y1), np.full(10, 100))

    # The subset is a row selection of the full split, in file order.
    data = load_fashion_mnist(n_samples=1000, random_state=0, return_X_y=False)
    assert np.all(np.diff(data.indices) > 0)
    assert_array_equal(data.data, fashion_train[0][data.indices])
    assert_array_equal(data.target, fashion_train[1][data.indices])

    _, y_random = load_fashion_mnist(subset="test", n_samples=7, random_state=0,
                                     stratify=False)
    assert y_random.shape == (7,)


@pytest.mark.fashion
@requires_fashion
def test_fashion_path_override_and_env_var(tmp_path, monkeypatch):
    # Copy the test split from wherever the loader finds it (default
    # location or the developer's override).
    found = load_fashion_mnist(subset="test", n_samples=10, return_X_y=False)
    for name in found.filenames["test"]:
        shutil.copy(name, tmp_path)
    X_ref, y_ref = load_fashion_mnist(subset="test", n_samples=50, random_state=0)

    X, y = load_fashion_mnist(tmp_path, subset="test", n_samples=50, random_state=0)
    assert_array_equal(X, X_ref)
    assert_array_equal(y, y_ref)

    monkeypatch.setenv(FASHION_MNIST_ENV_VAR, str(tmp_path))
    X, _ = load_fashion_mnist(subset="test", n_samples=50, random_state=0)
    assert_array_equal(X, X_ref)
    # Only the test files were copied: the train split is reported missing.
    assert not fashion_mnist_available()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(subset="train")


# --------------------------------------------------------------------------- #
# Fashion-MNIST loader on small synthetic idx files (runs everywhere)
# --------------------------------------------------------------------------- #


def test_fashion_missing_directory_message(tmp_path):
    missing = tmp_path / "no-such-dir"
    assert not fashion_mnist_available(missing)
    with pytest.raises(FileNotFoundError) as excinfo:
        load_fashion_mnist(missing)
    message = str(excinfo.value)
    assert str(missing) in message
    assert "dataset-fashion-mnist" in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "path=" in message


def test_fashion_env_var_directory_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(FASHION_MNIST_ENV_VAR, str(tmp_path))
    assert not fashion_mnist_available()
    with pytest.raises(FileNotFoundError, match=FASHION_MNIST_ENV_VAR):
        load_fashion_mnist(subset="test")


def test_fashion_small_files_roundtrip(tmp_path):
    _write_small_fashion(tmp_path)
    assert fashion_mnist_available(tmp_path)
    X, y = load_fashion_mnist(tmp_path, subset="all", scale=False, dtype=np.uint8)
    assert X.shape == (50, 784) and X.dtype == np.uint8
    assert_array_equal(y, np.r_[np.arange(30) % 10, np.arange(20) % 10])

    Xs, _ = load_fashion_mnist(tmp_path, subset="all")
    assert_allclose(Xs, X / 255.0, rtol=1e-6)

    # Uncompressed files are accepted as well.
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in FASHION_FILES:
        (plain / name[:-3]).write_bytes(gzip.decompress((tmp_path / name).read_bytes()))
    X_plain, _ = load_fashion_mnist(plain, subset="all", scale=False, dtype=np.uint8)
    assert_array_equal(X_plain, X)


@pytest.mark.parametrize(
    "corrupt",
    ["bad_magic", "bad_type_code", "truncated", "not_gzip", "wrong_image_shape", "label_count"],
)
def test_fashion_corrupted_files_raise_value_error(tmp_path, corrupt):
    _write_small_fashion(tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    pixels = np.zeros((20, 28, 28))
    if corrupt == "bad_magic":
        _write_idx(images, pixels, magic=b"\x12\x34\x08\x03")
        match = "magic"
    elif corrupt == "bad_type_code":
        _write_idx(images, pixels, magic=b"\x00\x00\x42\x03")
        match = "type code"
    elif corrupt == "truncated":
        payload = gzip.decompress(images.read_bytes())
        images.write_bytes(gzip.compress(payload[:-100]))
        match = "corrupted"
    elif corrupt == "not_gzip":
        images.write_bytes(gzip.compress(b"\x00" * 2000)[:30])
        match = "gzip"
    elif corrupt == "wrong_image_shape":
        _write_idx(images, np.zeros((20, 32, 32)))
        match = "shape"
    else:
        _write_idx(labels, np.zeros(19))
        match = "does not match"
    with pytest.raises(ValueError, match=match):
        load_fashion_mnist(tmp_path, subset="test")


def test_read_idx_parses_big_endian_types(tmp_path):
    values = np.arange(-3, 3, dtype=">i4").reshape(2, 3)
    file = tmp_path / "ints.idx"
    file.write_bytes(b"\x00\x00\x0c\x02" + struct.pack(">2I", 2, 3) + values.tobytes())
    array = _read_idx(file)
    assert array.dtype == np.int32 and array.dtype.isnative
    assert_array_equal(array, values)

    file.write_bytes(b"")
    with pytest.raises(ValueError, match="magic"):
        _read_idx(file)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"subset": "validation"}, ValueError),
        ({"n_samples": 0}, ValueError),
        ({"n_samples": 21}, ValueError),
        ({"n_samples": 2.5}, TypeError),
        ({"scale": True, "dtype": np.uint8}, ValueError),
        # regression: int8 pixels wrapped around to -128..127
        ({"scale": False, "dtype": np.int8}, ValueError),
        ({"scale": False, "dtype": bool}, ValueError),
        ({"scale": False, "dtype": "U3"}, ValueError),
        ({"scale": False, "dtype": "not a dtype"}, TypeError),
        ({"random_state": -1}, ValueError),
    ],
)
def test_fashion_invalid_parameters(tmp_path, kwargs, error):
    _write_small_fashion(tmp_path)
    with pytest.raises(error, match=r"dtype|random_state|subset|n_samples|scale"):
        load_fashion_mnist(tmp_path, **{"subset": "test", **kwargs})


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int64, np.float16,
                                   np.float32])
def test_fashion_raw_pixels_keep_their_values(tmp_path, dtype):
    _write_small_fashion(tmp_path)
    X, _ = load_fashion_mnist(tmp_path, subset="all", scale=False, dtype=dtype)
    reference, _ = load_fashion_mnist(tmp_path, subset="all", scale=False, dtype=np.float64)
    assert X.dtype == dtype and X.min() >= 0
    assert_array_equal(X.astype(np.float64), reference)


# --------------------------------------------------------------------------- #
# Digits
# --------------------------------------------------------------------------- #


def test_load_digits_images():
    X, y = load_digits_images()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0

    data = load_digits_images(scale=False, return_X_y=False)
    assert data.images.shape == (1797, *DIGITS_SHAPE)
    assert data.data.max() == 16.0
    assert_allclose(data.data / 16, X)
    assert_array_equal(data.target, y)


# --------------------------------------------------------------------------- #
# Image patches
# --------------------------------------------------------------------------- #


def test_patches_shape_dtype_and_contrast_normalisation():
    P = extract_image_patches((8, 8), n_patches=3000, random_state=0)
    assert P.shape == (3000, 64) and P.dtype == np.float32
    assert_allclose(P.mean(axis=1), 0.0, atol=1e-5)
    std = P.std(axis=1)
    # The regulariser keeps std below 1; it only matters for low-contrast patches.
    assert np.all(std <= 1.0 + 1e-5)
    assert_allclose(std[std > np.percentile(std, 90)], 1.0, atol=0.05)
    assert np.isfinite(P).all()


def test_patches_reproducible_and_options():
    P1 = extract_image_patches((6, 4), n_patches=200, random_state=42)
    P2 = extract_image_patches((6, 4), n_patches=200, random_state=42)
    P3 = extract_image_patches((6, 4), n_patches=200, random_state=43)
    assert P1.shape == (200, 24)
    assert_array_equal(P1, P2)
    assert not np.array_equal(P1, P3)

    raw = extract_image_patches(5, n_patches=100, random_state=0, normalize=None)
    assert raw.shape == (100, 25)
    assert raw.min() >= 0.0 and raw.max() <= 1.0
    centred = extract_image_patches(5, n_patches=100, random_state=0, normalize="mean")
    assert_allclose(centred, raw - raw.mean(axis=1, keepdims=True), atol=1e-6)

    color = extract_image_patches((3, 3), n_patches=10, random_state=0, grayscale=False)
    assert color.shape == (10, 27)


def test_patches_from_given_images_are_real_windows():
    rng = np.random.RandomState(0)
    image = rng.randint(0, 256, size=(12, 10)).astype(np.uint8)
    P = extract_image_patches((3, 4), n_patches=50, images=[image], normalize=None,
                              random_state=0)
    windows = np.lib.stride_tricks.sliding_window_view(image / 255.0, (3, 4))
    windows = windows.reshape(-1, 12)
    # Every patch is one of the image's windows, at float32 precision.
    dist = np.abs(P[:, None, :] - windows[None, :, :]).max(axis=2)
    assert np.all(dist.min(axis=1) < 1e-6)

    # A 3-D array is a stack of grayscale images.
    stack = rng.uniform(size=(3, 9, 9))
    assert extract_image_patches(4, n_patches=7, images=stack).shape == (7, 16)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patch_size": (0, 3)},
        {"patch_size": (500, 700)},
        {"n_patches": 0},
        {"normalize": "zca"},
        {"images": []},
    ],
)
def test_patches_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        extract_image_patches(**{"n_patches": 5, **kwargs})


# --------------------------------------------------------------------------- #
# Planted structure
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("group_size", [1, 4])
@pytest.mark.parametrize("positive", [False, True])
def test_planted_structure_properties(group_size, positive):
    data = make_planted_structure(
        n_samples=500, n_features=50, n_components=24, group_size=group_size,
        fan_in=7, active_groups=3, noise=0.01, positive=positive, random_state=0,
    )
    D, A, supports = data.dictionary, data.codes, data.supports
    assert data.X.shape == (500, 50)
    assert D.shape == supports.shape == (24, 50)
    assert A.shape == (500, 24)
    assert data.n_groups == 24 // group_size

    # Exact fan-in, unit-norm atoms, zero exactly off the support.
    assert_array_equal(supports.sum(axis=1), 7)
    assert_allclose(np.linalg.norm(D, axis=1), 1.0)
    assert_array_equal(D != 0, supports)

    # Groups are contiguous blocks of units.
    assert_array_equal(data.groups, np.repeat(np.arange(data.n_groups), group_size))

    # Group sparsity: a group is all-zero or all-non-zero, and exactly
    # `active_groups` groups are on in every sample.
    nonzero = (A != 0).reshape(500, data.n_groups, group_size)
    assert np.all(nonzero.all(axis=2) | ~nonzero.any(axis=2))
    assert_array_equal(nonzero.any(axis=2), data.active)
    assert_array_equal(data.active.sum(axis=1), 3)
    if positive:
        assert A.min() >= 0
    else:
        assert A.min() < 0

    # X follows the model, with noise of the requested size.
    residual = data.X - A @ D
    assert_allclose(residual.std(), 0.01, rtol=0.1)


def test_planted_structure_noiseless_and_params():
    data = make_planted_structure(n_samples=20, noise=0.0, random_state=3)
    assert_allclose(data.X, data.codes @ data.dictionary)
    assert data.fan_in == 6 and data.active_groups == 3 and data.group_size == 1
    assert data.image_shape is None


def test_planted_structure_local_supports():
    image_shape = (16, 16)
    data = make_planted_structure(
        n_samples=50, n_features=256, n_components=64, fan_in=9,
        image_shape=image_shape, random_state=0,
    )
    assert_array_equal(data.supports.sum(axis=1), 9)
    for mask in data.supports.reshape(-1, *image_shape):
        rows, cols = np.nonzero(mask)
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        # 9 nearest pixels of a center: at most a 5x5 box (3x3 disc plus a
        # ring tie), far smaller than the 16x16 image.
        assert height <= 5 and width <= 5
        # Connected (4-neighbourhood) blob.
        seen, stack = {(rows[0], cols[0])}, [(rows[0], cols[0])]
        pixels = set(zip(rows, cols))
        while stack:
            r, c = stack.pop()
            for nb in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if nb in pixels and nb not in seen:
                    seen.add(nb)
                    stack.append(nb)
        assert seen == pixels

    # Random (non-image) supports are spread out: their bounding boxes on a
    # 16x16 grid are much larger on average.
    random = make_planted_structure(
        n_samples=50, n_features=256, n_components=64, fan_in=9, random_state=0,
    )
    spans = [np.ptp(np.nonzero(m)[0]) for m in random.supports.reshape(-1, *image_shape)]
    assert np.mean(spans) > 8


def test_planted_structure_shared_support():
    data = make_planted_structure(
        n_samples=30, n_features=64, n_components=16, group_size=4, fan_in=5,
        image_shape=(8, 8), shared_support=True, random_state=0,
    )
    blocks = data.supports.reshape(4, 4, 64)
    assert np.all(blocks == blocks[:, :1])
    # Same inputs, different weights.
    assert not np.allclose(data.dictionary[0], data.dictionary[1])


def test_planted_structure_reproducible():
    kwargs = dict(n_samples=100, n_features=36, n_components=12, group_size=3,
                  fan_in=4, active_groups=2, image_shape=(6, 6))
    a = make_planted_structure(**kwargs, random_state=7)
    b = make_planted_structure(**kwargs, random_state=7)
    c = make_planted_structure(**kwargs, random_state=8)
    for key in ("X", "dictionary", "codes", "supports", "active"):
        assert_array_equal(a[key], b[key])
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_components": 10, "group_size": 3}, ValueError),
        ({"fan_in": 65}, ValueError),
        ({"active_groups": 33}, ValueError),
        ({"noise": -1.0}, ValueError),
        ({"image_shape": (8, 9)}, ValueError),
        ({"n_samples": 1.5}, TypeError),
    ],
)
def test_planted_structure_invalid_parameters(kwargs, error):
    with pytest.raises(error):
        make_planted_structure(**{"n_samples": 10, **kwargs})


# --------------------------------------------------------------------------- #
# Shuffled pixels
# --------------------------------------------------------------------------- #


def test_permute_unpermute_round_trip():
    X = np.random.RandomState(0).uniform(size=(5, 49)).astype(np.float32)
    X_perm, perm = permute_pixels(X, random_state=0)
    assert X_perm.shape == X.shape and X_perm.dtype == np.float32
    assert_array_equal(np.sort(perm), np.arange(49))
    assert not np.array_equal(X_perm, X)
    assert_array_equal(X_perm, X[:, perm])
    assert_array_equal(unpermute(X_perm, perm), X)

    # Same seed, same permutation; an explicit permutation is reused as is.
    assert_array_equal(permute_pixels(X, random_state=0)[1], perm)
    # regression: numpy's "Seed must be between 0 and 2**32 - 1", without the parameter
    with pytest.raises(ValueError, match=r"The 'random_state' parameter of permute_pixels"):
        permute_pixels(X, random_state=-1)
    X_again, perm_again = permute_pixels(X[:2], permutation=perm)
    assert_array_equal(perm_again, perm)
    assert_array_equal(X_again, X_perm[:2])

    # Works on boolean masks (e.g. connectivity_) and single vectors.
    mask = X > 0.5
    assert_array_equal(unpermute(permute_pixels(mask, permutation=perm)[0], perm), mask)
    assert_array_equal(unpermute(X_perm[0], perm), X[0])


def test_unpermute_restores_planted_locality():
    data = make_planted_structure(n_samples=10, n_features=64, n_components=8, fan_in=4,
                                  image_shape=(8, 8), random_state=0)
    atoms_perm, perm = permute_pixels(data.dictionary, random_state=1)
    assert_array_equal(unpermute(atoms_perm, perm), data.dictionary)


@pytest.mark.parametrize("bad", [np.arange(5), np.array([0, 1, 2, 3, 4, 4]),
                                 np.arange(6.0)])
def test_unpermute_rejects_non_permutations(bad):
    with pytest.raises(ValueError, match="permutation"):
        unpermute(np.zeros((2, 6)), bad)
    with pytest.raises(ValueError, match="permutation"):
        permute_pixels(np.zeros((2, 6)), permutation=bad)
