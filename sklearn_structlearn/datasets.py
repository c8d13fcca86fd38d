"""Data sets used by the examples, tests and benchmarks.

Everything here works offline; nothing is ever downloaded.

- :func:`load_fashion_mnist` reads the idx files of the Debian package
  ``dataset-fashion-mnist`` (or any directory holding the same files).
- :func:`load_digits_images` is :func:`sklearn.datasets.load_digits` scaled to
  ``[0, 1]``.
- :func:`extract_image_patches` samples small patches of natural images
  (:func:`sklearn.datasets.load_sample_images` by default), the usual input for
  learning receptive fields.
- :func:`make_planted_structure` generates data with a known dictionary, known
  connectivity and known groups, for recovery tests.
- :func:`permute_pixels` / :func:`unpermute` implement the "shuffled pixels"
  experiment: the learned connectivity should still be spatially local once the
  fixed permutation is undone.
"""

import gzip
import numbers
import os
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state, resample

from ._param_validation import StrOptions, int_in, real_in, validate_params

__all__ = [
    "DIGITS_SHAPE",
    "FASHION_MNIST_CLASS_NAMES",
    "FASHION_MNIST_DEFAULT_DIR",
    "FASHION_MNIST_ENV_VAR",
    "FASHION_MNIST_SHAPE",
    "extract_image_patches",
    "fashion_mnist_available",
    "load_digits_images",
    "load_fashion_mnist",
    "make_planted_structure",
    "permute_pixels",
    "unpermute",
]

# --------------------------------------------------------------------------- #
# Fashion-MNIST
# --------------------------------------------------------------------------- #

#: Shape of one Fashion-MNIST image (rows, columns).
FASHION_MNIST_SHAPE = (28, 28)

#: Class names, indexed by label (0..9), as published with the data set.
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Where the Debian package ``dataset-fashion-mnist`` installs its files.
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"

#: Environment variable that overrides :data:`FASHION_MNIST_DEFAULT_DIR`.
FASHION_MNIST_ENV_VAR = "SKLEARN_STRUCTLEARN_FASHION_MNIST"

_DEBIAN_PACKAGE = "dataset-fashion-mnist"

# Base names of the idx files; the Debian package ships them gzip-compressed,
# but a directory of uncompressed copies is accepted too.
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FASHION_SUBSETS = {"train": ("train",), "test": ("test",), "all": ("train", "test")}

# idx type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_FASHION_DESCR = """\
Fashion-MNIST
=============

70,000 grayscale 28x28 images of clothing articles in 10 classes (60,000 train,
10,000 test), a drop-in replacement for MNIST by Zalando Research
(Xiao, Rasul & Vollgraf, 2017, arXiv:1708.07747). Read from the idx files of the
Debian package ``dataset-fashion-mnist``.
"""


def _read_idx(file):
    """Parse one idx file (optionally gzip-compressed) into a numpy array.

    The idx format is a 4-byte magic number (two zero bytes, a type code and the
    number of dimensions), the dimensions as big-endian uint32, then the values
    in C order, big-endian.

    Parameters
    ----------
    file : path-like
        The idx file; gzip compression is detected from its content.

    Returns
    -------
    array : ndarray
        Array with the dimensions and type stored in the file (native byte
        order, read-only view of the file's bytes for 1-byte types).

    Raises
    ------
    ValueError
        When the file is not a well-formed idx file.
    """
    file = Path(file)
    raw = file.read_bytes()
    # Detect compression from the content rather than the name, so a renamed
    # file still works and a broken one gets a precise message.
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{file} is not a valid gzip file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{file} is not an idx file: bad magic number {raw[:4].hex() or '(empty)'}"
            " (expected 0000 followed by a type code and the number of dimensions)."
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{file} is not an idx file: unknown type code 0x{type_code:02x} in the "
            "magic number."
        )
    if ndim == 0:
        raise ValueError(f"{file} is not an idx file: it declares 0 dimensions.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{file} is truncated: the idx header is incomplete.")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{file} is corrupted: the header declares shape {shape} "
            f"({expected} bytes of data) but the file holds {len(raw) - header} bytes."
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _fashion_dir(path):
    """Directory to search and a phrase saying why it was chosen."""
    if path is not None:
        return Path(path).expanduser(), "given as path="
    env = os.environ.get(FASHION_MNIST_ENV_VAR)
    if env:
        return Path(env).expanduser(), f"from the environment variable {FASHION_MNIST_ENV_VAR}"
    return Path(FASHION_MNIST_DEFAULT_DIR), "the default location"


def _find_idx_file(directory, base):
    """The compressed or uncompressed idx file for `base`, or None."""
    for name in (base + ".gz", base):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _locate_fashion_files(path, parts):
    """Map part -> (images file, labels file); FileNotFoundError if any is missing."""
    directory, why = _fashion_dir(path)
    found, missing = {}, []
    for part in parts:
        files = []
        for base in _FASHION_FILES[part]:
            file = _find_idx_file(directory, base) if directory.is_dir() else None
            if file is None:
                missing.append(base + ".gz")
            files.append(file)
        found[part] = tuple(files)
    if missing:
        where = "" if directory.is_dir() else " (the directory does not exist)"
        raise FileNotFoundError(
            f"Fashion-MNIST files not found in '{directory}'{where}, {why}; missing: "
            f"{', '.join(missing)}. Install the Debian package {_DEBIAN_PACKAGE} "
            f"(`apt-get install -y {_DEBIAN_PACKAGE}`, files go to "
            f"{FASHION_MNIST_DEFAULT_DIR}/), or pass path= (or set the environment "
            f"variable {FASHION_MNIST_ENV_VAR}) to a directory holding the idx files. "
            "Nothing is ever downloaded."
        )
    return directory, found


def _pixel_dtype(dtype):
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a NumPy dtype, got {dtype!r}: {exc}") from exc


def fashion_mnist_available(path=None):
    """Tell whether the four Fashion-MNIST idx files can be found.

    Only the presence of the files is checked, not their content; use it to skip
    tests or examples on machines without the data.

    Parameters
    ----------
    path : str or path-like, default=None
        Directory to look in. When None, the environment variable
        ``SKLEARN_STRUCTLEARN_FASHION_MNIST`` is used if set, otherwise
        ``/usr/share/datasets/fashion-mnist`` (Debian package
        ``dataset-fashion-mnist``).

    Returns
    -------
    available : bool
        True when the train and test images and labels are all present.

    See Also
    --------
    load_fashion_mnist : Load the data.

    Examples
    --------
    >>> from sklearn_structlearn.datasets import fashion_mnist_available
    >>> fashion_mnist_available("/nonexistent/directory")
    False
    """
    try:
        _locate_fashion_files(path, ("train", "test"))
    except FileNotFoundError:
        return False
    return True


@validate_params(
    {
        "path": [str, os.PathLike, None],
        "subset": [StrOptions(set(_FASHION_SUBSETS))],
        "n_samples": [int_in(1), None],
        "random_state": ["random_state"],
        "stratify": ["boolean"],
        "return_X_y": ["boolean"],
        "dtype": "no_validation",  # anything numpy.dtype reads; checked below
        "scale": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_fashion_mnist(
    path=None,
    *,
    subset="train",
    n_samples=None,
    random_state=None,
    stratify=True,
    return_X_y=True,
    dtype=np.float32,
    scale=True,
):
    """Load Fashion-MNIST from local idx files (never downloads).

    The files are the ones of the Debian package ``dataset-fashion-mnist``
    (``apt-get install -y dataset-fashion-mnist``), installed under
    ``/usr/share/datasets/fashion-mnist/``: ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz`` (uncompressed copies without ``.gz`` are
    accepted too).

    ===============  =========================
    Classes          10
    Samples          60,000 train, 10,000 test
    Features         784 (28 x 28 pixels)
    Values           [0, 1] (or 0..255 unscaled)
    ===============  =========================

    Parameters
    ----------
    path : str or path-like, default=None
        Directory holding the idx files. When None, the environment variable
        ``SKLEARN_STRUCTLEARN_FASHION_MNIST`` is used if set, otherwise
        ``/usr/share/datasets/fashion-mnist``.

    subset : {"train", "test", "all"}, default="train"
        Which split to load; ``"all"`` is the train split followed by the test
        split (70,000 samples). Only the files of the requested split need to
        exist.

    n_samples : int, default=None
        If given, return only this many samples drawn without replacement from
        the subset, kept in file order. None returns the whole subset.

    random_state : int, RandomState instance or None, default=None
        Seeds the draw of the `n_samples` subset; pass an int for a reproducible
        subset. Ignored when `n_samples` is None.

    stratify : bool, default=True
        Whether the `n_samples` subset keeps the class proportions of the
        subset (stratified draw) or is a plain uniform draw.

    return_X_y : bool, default=True
        If True return ``(X, y)``, otherwise a :class:`~sklearn.utils.Bunch`.

    dtype : dtype, default=np.float32
        Dtype of the returned pixels. Must be a floating dtype when
        ``scale=True``.

    scale : bool, default=True
        Divide the pixels by 255 so they lie in ``[0, 1]``; otherwise keep the
        raw 0..255 intensities (cast to `dtype`).

    Returns
    -------
    X : ndarray of shape (n_samples, 784)
        Flattened images, row-major (reshape rows to ``FASHION_MNIST_SHAPE``).

    y : ndarray of shape (n_samples,), dtype int64
        Labels 0..9; ``FASHION_MNIST_CLASS_NAMES[label]`` is the class name.

    data : :class:`~sklearn.utils.Bunch`
        Returned instead of ``(X, y)`` when ``return_X_y=False``, with keys
        ``data``, ``target``, ``images`` (shape ``(n_samples, 28, 28)``, a view
        of ``data``), ``target_names``, ``image_shape``, ``subset``,
        ``indices`` (row numbers within the subset), ``filenames`` and
        ``DESCR``.

    Raises
    ------
    FileNotFoundError
        When the files are absent; the message names the directory searched
        and the Debian package to install.
    ValueError
        When a file is not a valid idx file (bad magic number, truncated,
        unexpected shape) or a parameter is invalid.

    See Also
    --------
    fashion_mnist_available : Check whether the files are present.
    load_digits_images : A much smaller image data set bundled with scikit-learn.

    Examples
    --------
    >>> from sklearn_structlearn.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", n_samples=500, random_state=0)
    >>> X.shape, X.dtype, y.shape
    ((500, 784), dtype('float32'), (500,))
    >>> bool(X.min() >= 0.0 and X.max() <= 1.0)
    True
    >>> import numpy as np
    >>> np.bincount(y).tolist()  # stratified: 50 of each class
    [50, 50, 50, 50, 50, 50, 50, 50, 50, 50]
    """
    dtype = _pixel_dtype(dtype)
    if scale and not np.issubdtype(dtype, np.floating):
        raise ValueError(f"scale=True needs a floating dtype, got {dtype}.")
    if dtype.kind not in "uif" or not np.can_cast(np.uint8, dtype, "safe"):
        # e.g. int8: the pixels 128..255 would wrap around to -128..-1
        raise ValueError(
            f"dtype={dtype} cannot hold the raw pixel values 0..255; use a float dtype, "
            "uint8 or a wider integer."
        )
    parts = _FASHION_SUBSETS[subset]
    directory, files = _locate_fashion_files(path, parts)

    images, labels = [], []
    for part in parts:
        images_file, labels_file = files[part]
        part_images = _read_idx(images_file)
        part_labels = _read_idx(labels_file)
        if part_images.ndim != 3 or part_images.shape[1:] != FASHION_MNIST_SHAPE:
            raise ValueError(
                f"{images_file} holds an array of shape {part_images.shape}, expected "
                f"(n_samples, {FASHION_MNIST_SHAPE[0]}, {FASHION_MNIST_SHAPE[1]})."
            )
        if part_labels.ndim != 1 or part_labels.shape[0] != part_images.shape[0]:
            raise ValueError(
                f"{labels_file} holds labels of shape {part_labels.shape}, which does "
                f"not match the {part_images.shape[0]} images of {images_file}."
            )
        if part_labels.size and not 0 <= part_labels.min() <= part_labels.max() <= 9:
            raise ValueError(f"{labels_file} holds labels outside 0..9.")
        images.append(part_images)
        labels.append(part_labels)
    images = images[0] if len(images) == 1 else np.concatenate(images)
    y = np.concatenate(labels).astype(np.int64)

    if n_samples is not None and n_samples > y.shape[0]:
        raise ValueError(
            f"n_samples must be in [1, {y.shape[0]}] for this subset, got {n_samples}."
        )
    if n_samples is None:
        indices = np.arange(y.shape[0])
    else:
        indices = resample(
            np.arange(y.shape[0]),
            replace=False,
            n_samples=n_samples,
            stratify=y if stratify else None,
            random_state=check_random_state(random_state),
        )
        # File order is already shuffled by the publishers; keeping it makes a
        # subset a plain row selection that is easy to reason about.
        indices = np.sort(indices)
        images, y = images[indices], y[indices]

    X = images.reshape(images.shape[0], -1).astype(dtype)
    if scale:
        X /= dtype.type(255)

    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        images=X.reshape(-1, *FASHION_MNIST_SHAPE),
        target_names=list(FASHION_MNIST_CLASS_NAMES),
        image_shape=FASHION_MNIST_SHAPE,
        subset=subset,
        indices=indices,
        filenames={part: tuple(str(f) for f in files[part]) for part in parts},
        directory=str(directory),
        DESCR=_FASHION_DESCR,
    )


# --------------------------------------------------------------------------- #
# Digits
# --------------------------------------------------------------------------- #

#: Shape of one image of :func:`load_digits_images`.
DIGITS_SHAPE = (8, 8)


@validate_params(
    {"scale": ["boolean"], "return_X_y": ["boolean"], "dtype": "no_validation"},
    prefer_skip_nested_validation=True,
)
def load_digits_images(*, scale=True, return_X_y=True, dtype=np.float32):
    """Load scikit-learn's 8x8 digits as images with pixels in ``[0, 1]``.

    A thin wrapper over :func:`sklearn.datasets.load_digits` (bundled with
    scikit-learn, 1797 samples, 10 classes) whose raw intensities 0..16 are
    divided by 16, so the data is on the same scale as the other loaders.

    Parameters
    ----------
    scale : bool, default=True
        Divide the intensities by 16 so they lie in ``[0, 1]``; otherwise keep
        the raw 0..16 values.

    return_X_y : bool, default=True
        If True return ``(X, y)``, otherwise a :class:`~sklearn.utils.Bunch`.

    dtype : floating dtype, default=np.float32
        Dtype of the returned pixels.

    Returns
    -------
    X : ndarray of shape (1797, 64)
        Flattened images, row-major (reshape rows to ``DIGITS_SHAPE``).

    y : ndarray of shape (1797,)
        Labels 0..9.

    data : :class:`~sklearn.utils.Bunch`
        Returned instead of ``(X, y)`` when ``return_X_y=False``, with keys
        ``data``, ``target``, ``images`` (shape ``(1797, 8, 8)``, a view of
        ``data``), ``target_names``, ``image_shape`` and ``DESCR``.

    See Also
    --------
    sklearn.datasets.load_digits : The underlying loader.

    Examples
    --------
    >>> from sklearn_structlearn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, X.dtype, float(X.max())
    ((1797, 64), dtype('float32'), 1.0)
    """
    from sklearn.datasets import load_digits

    dtype = _pixel_dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}.")
    digits = load_digits()
    X = digits.data.astype(dtype)
    if scale:
        X /= dtype.type(16)
    y = np.asarray(digits.target)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        images=X.reshape(-1, *DIGITS_SHAPE),
        target_names=np.asarray(digits.target_names),
        image_shape=DIGITS_SHAPE,
        DESCR=digits.DESCR,
    )


# --------------------------------------------------------------------------- #
# Natural image patches
# --------------------------------------------------------------------------- #

# Regulariser of the contrast normalisation, in units of squared [0, 1]
# intensity: it is the classic "10 on a 0..255 scale" (Coates, Lee & Ng, 2011)
# and keeps nearly flat patches (sky, walls) from having their noise blown up
# to unit contrast.
_CONTRAST_EPS = 10.0 / 255.0**2

# ITU-R BT.601 luma weights, the usual RGB -> gray conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


def _to_float_image(image):
    image = np.asarray(image)
    if image.dtype == bool:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.integer):
        # Integer images are intensities on their type's full range (0..255
        # for uint8), so divide to get [0, 1].
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"images must hold numbers, got dtype {image.dtype}.")
    return image.astype(np.float64)


def _prepare_images(images, grayscale):
    """List of float64 images, (H, W) or (H, W, C)."""
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            images = [images]
        elif images.ndim in (3, 4):
            # A 3-D array is read as a stack of grayscale images: a single color
            # image must be wrapped in a list, which is unambiguous.
            images = list(images)
        else:
            raise ValueError(
                "images as an array must have shape (H, W), (n_images, H, W) or "
                f"(n_images, H, W, C), got {images.shape}."
            )
    prepared = []
    for image in images:
        image = _to_float_image(image)
        if image.ndim == 3:
            if image.shape[2] == 1:
                image = image[:, :, 0]
            elif grayscale:
                if image.shape[2] not in (3, 4):
                    raise ValueError(
                        "grayscale=True needs images with 1, 3 (RGB) or 4 (RGBA) "
                        f"channels, got {image.shape[2]}."
                    )
                image = image[:, :, :3] @ _LUMA
        elif image.ndim != 2:
            raise ValueError(
                f"each image must have shape (H, W) or (H, W, C), got {image.shape}."
            )
        prepared.append(image)
    if not prepared:
        raise ValueError("images is empty.")
    if len({im.shape[2:] for im in prepared}) > 1:
        raise ValueError("all images must have the same number of channels.")
    return prepared


@validate_params(
    {
        "patch_size": [int_in(1), tuple, list],
        "n_patches": [int_in(1)],
        "images": ["array-like", None],
        "random_state": ["random_state"],
        "grayscale": ["boolean"],
        "normalize": [StrOptions({"contrast", "mean"}), None],
    },
    prefer_skip_nested_validation=True,
)
def extract_image_patches(
    patch_size=(8, 8),
    n_patches=10000,
    *,
    images=None,
    random_state=None,
    grayscale=True,
    normalize="contrast",
):
    """Sample random patches of natural images, flattened and normalised.

    Patches are drawn uniformly over all patch positions of all images (an
    image contributes in proportion to its number of positions). This is the
    classic input for learning receptive fields: sparse coding of such patches
    gives localised, oriented atoms.

    Parameters
    ----------
    patch_size : int or tuple of (int, int), default=(8, 8)
        Patch height and width; an int means a square patch.

    n_patches : int, default=10000
        Number of patches to draw (with replacement of positions).

    images : array-like or list of array-like, default=None
        Source images. A list of ``(H, W)`` or ``(H, W, C)`` arrays, or an array
        of shape ``(H, W)`` (one image), ``(n_images, H, W)`` (grayscale
        images) or ``(n_images, H, W, C)``. Integer images are divided by their
        type's maximum (255 for uint8); float images are taken as they are and
        should lie in ``[0, 1]`` for the contrast regulariser to have its
        intended scale. When None, the two photographs of
        :func:`sklearn.datasets.load_sample_images` are used.

    random_state : int, RandomState instance or None, default=None
        Seeds the patch positions; pass an int for reproducible patches.

    grayscale : bool, default=True
        Convert color images to gray with the ITU-R BT.601 luma weights. When
        False, color patches are flattened in ``(row, column, channel)`` order.

    normalize : {"contrast", "mean"} or None, default="contrast"
        ``"contrast"`` removes each patch's mean and divides by its standard
        deviation, regularised by ``10 / 255**2`` so that flat patches are not
        amplified to unit contrast; ``"mean"`` only removes the mean; None
        returns raw intensities.

    Returns
    -------
    patches : ndarray of shape (n_patches, h * w) or (n_patches, h * w * C), dtype float32
        One flattened patch per row (``C`` channels only with
        ``grayscale=False`` and color images).

    See Also
    --------
    sklearn.feature_extraction.image.extract_patches_2d : Patches of a single image.

    Examples
    --------
    >>> from sklearn_structlearn.datasets import extract_image_patches
    >>> P = extract_image_patches((8, 8), n_patches=1000, random_state=0)
    >>> P.shape, P.dtype
    ((1000, 64), dtype('float32'))
    >>> import numpy as np
    >>> bool(np.allclose(P.mean(axis=1), 0.0, atol=1e-5))
    True
    """
    if isinstance(patch_size, numbers.Integral):
        patch_size = (patch_size, patch_size)
    patch_size = tuple(patch_size)
    if len(patch_size) != 2 or not all(
        isinstance(s, numbers.Integral) and s >= 1 for s in patch_size
    ):
        raise ValueError(
            f"patch_size must be a positive int or a pair of them, got {patch_size!r}."
        )
    ph, pw = int(patch_size[0]), int(patch_size[1])
    if images is None:
        from sklearn.datasets import load_sample_images

        images = load_sample_images().images
    images = _prepare_images(images, grayscale)

    n_positions = np.array(
        [max(im.shape[0] - ph + 1, 0) * max(im.shape[1] - pw + 1, 0) for im in images],
        dtype=np.float64,
    )
    if n_positions.sum() == 0:
        raise ValueError(
            f"patch_size {(ph, pw)} is larger than every image "
            f"(shapes {[im.shape[:2] for im in images]})."
        )
    rng = check_random_state(random_state)
    n_patches = int(n_patches)
    source = rng.choice(len(images), size=n_patches, p=n_positions / n_positions.sum())

    n_channels = images[0].shape[2] if images[0].ndim == 3 else 1
    patches = np.empty((n_patches, ph, pw, n_channels))
    for i, image in enumerate(images):
        where = np.flatnonzero(source == i)
        if where.size == 0:
            continue
        rows = rng.randint(0, image.shape[0] - ph + 1, size=where.size)
        cols = rng.randint(0, image.shape[1] - pw + 1, size=where.size)
        # A strided view of all windows, so picking patches is one fancy index
        # instead of a Python loop over patches.
        windows = np.lib.stride_tricks.sliding_window_view(image, (ph, pw), axis=(0, 1))
        picked = windows[rows, cols]  # (m, ph, pw) or (m, C, ph, pw)
        if picked.ndim == 4:
            picked = np.moveaxis(picked, 1, -1)
        patches[where] = picked.reshape(where.size, ph, pw, n_channels)
    patches = patches.reshape(n_patches, -1)

    if normalize is not None:
        patches -= patches.mean(axis=1, keepdims=True)
    if normalize == "contrast":
        patches /= np.sqrt(np.mean(patches**2, axis=1, keepdims=True) + _CONTRAST_EPS)
    return patches.astype(np.float32)


# --------------------------------------------------------------------------- #
# Synthetic data with a planted structure
# --------------------------------------------------------------------------- #


def _local_support(rng, image_shape, fan_in):
    """Boolean mask of the `fan_in` pixels nearest to a random center pixel.

    Every pixel of the set has a strictly nearer neighbour along one axis, all
    of which are in the set, so the support is a connected blob; near the
    border it is clipped but keeps exactly `fan_in` pixels.
    """
    rows, cols = np.indices(image_shape)
    center_row = rng.randint(image_shape[0])
    center_col = rng.randint(image_shape[1])
    dist2 = ((rows - center_row) ** 2 + (cols - center_col) ** 2).ravel()
    # Squared distances are integers, so a random key in [0, 1) only breaks ties.
    order = np.argsort(dist2 + rng.uniform(0.0, 0.5, size=dist2.size), kind="stable")
    mask = np.zeros(dist2.size, dtype=bool)
    mask[order[:fan_in]] = True
    return mask


@validate_params(
    {
        "n_samples": [int_in(1)],
        "n_features": [int_in(1)],
        "n_components": [int_in(1)],
        "group_size": [int_in(1)],
        "fan_in": [int_in(1)],
        "active_groups": [int_in(0)],
        "noise": [real_in(0)],
        "image_shape": ["array-like", None],
        "positive": ["boolean"],
        "shared_support": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_planted_structure(
    n_samples=2000,
    n_features=64,
    n_components=32,
    *,
    group_size=1,
    fan_in=6,
    active_groups=3,
    noise=0.01,
    image_shape=None,
    positive=False,
    shared_support=False,
    random_state=None,
):
    """Generate data from a known sparse dictionary with known groups.

    The generative model is the one the layers fit, with every piece of
    structure known:

    - a dictionary ``D`` of shape ``(n_components, n_features)`` with unit-norm
      rows, where atom ``k`` is non-zero on exactly ``fan_in`` inputs (its
      *support*, the planted connectivity). With `image_shape`, each support
      is a compact connected blob of the image grid (the ``fan_in`` pixels
      nearest a random center), like a CNN receptive field; otherwise it is a
      random subset of inputs;
    - units split into contiguous groups of ``group_size``; in each sample
      exactly ``active_groups`` groups, chosen uniformly, are active and every
      unit of an active group is non-zero (group-sparse codes ``A``);
    - ``X = A @ D + noise * E`` with ``E`` standard normal.

    Non-zero dictionary weights and codes have magnitudes in ``[0.5, 1.5]``
    (before the atoms are normalised) with random signs, so no planted entry
    is vanishingly small.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of samples.

    n_features : int, default=64
        Number of inputs; must equal ``prod(image_shape)`` when `image_shape`
        is given.

    n_components : int, default=32
        Number of units (atoms); a multiple of `group_size`.

    group_size : int, default=1
        Units per group; group ``g`` is units ``[g * group_size, (g + 1) *
        group_size)``, as in the layers. 1 gives plain sparse codes.

    fan_in : int, default=6
        Number of inputs each atom connects to.

    active_groups : int, default=3
        Number of active groups per sample.

    noise : float, default=0.01
        Standard deviation of the Gaussian noise added to ``X``.

    image_shape : tuple of (int, int), default=None
        If given, inputs are the pixels of an image of this shape (row-major)
        and supports are local blobs.

    positive : bool, default=False
        Make the codes non-negative (for ``positive_code=True`` layers). The
        dictionary keeps random signs.

    shared_support : bool, default=False
        If True, all units of a group connect to the same inputs (one support
        drawn per group, distinct weights per unit), as pooled units of a CNN
        share a receptive field; otherwise each unit draws its own support.

    random_state : int, RandomState instance or None, default=None
        Seeds everything; pass an int for reproducible output.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With keys

        - ``X`` : ndarray of shape (n_samples, n_features), the data;
        - ``dictionary`` : ndarray of shape (n_components, n_features), ``D``;
        - ``codes`` : ndarray of shape (n_samples, n_components), ``A``;
        - ``supports`` : bool ndarray of shape (n_components, n_features),
          ``dictionary != 0``;
        - ``groups`` : int ndarray of shape (n_components,), group of each unit;
        - ``active`` : bool ndarray of shape (n_samples, n_groups), the active
          groups of each sample;
        - ``n_groups`` and the parameters ``n_samples``, ``n_features``,
          ``n_components``, ``group_size``, ``fan_in``, ``active_groups``,
          ``noise``, ``image_shape``, ``positive``, ``shared_support``.

    Examples
    --------
    >>> from sklearn_structlearn.datasets import make_planted_structure
    >>> data = make_planted_structure(
    ...     n_samples=100, n_features=64, n_components=16, group_size=2,
    ...     fan_in=5, active_groups=2, image_shape=(8, 8), random_state=0)
    >>> data.X.shape, data.dictionary.shape, data.codes.shape
    ((100, 64), (16, 64), (100, 16))
    >>> data.supports.sum(axis=1).tolist() == [5] * 16
    True
    >>> data.groups[:6].tolist()
    [0, 0, 1, 1, 2, 2]
    """
    if n_components % group_size:
        raise ValueError(
            f"n_components ({n_components}) must be a multiple of group_size "
            f"({group_size})."
        )
    n_groups = n_components // group_size
    if fan_in > n_features:
        raise ValueError(f"fan_in must be <= n_features={n_features}, got {fan_in}.")
    if active_groups > n_groups:
        raise ValueError(f"active_groups must be <= n_groups={n_groups}, got {active_groups}.")
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 2 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be a pair of positive ints, got {image_shape}.")
        if image_shape[0] * image_shape[1] != n_features:
            raise ValueError(
                f"image_shape {image_shape} has {image_shape[0] * image_shape[1]} "
                f"pixels but n_features is {n_features}."
            )
    rng = check_random_state(random_state)

    # Supports: one per unit, or one per group repeated over its units.
    n_supports = n_groups if shared_support else n_components
    supports = np.zeros((n_supports, n_features), dtype=bool)
    for k in range(n_supports):
        if image_shape is None:
            supports[k, rng.choice(n_features, size=fan_in, replace=False)] = True
        else:
            supports[k] = _local_support(rng, image_shape, fan_in)
    if shared_support:
        supports = np.repeat(supports, group_size, axis=0)

    magnitudes = rng.uniform(0.5, 1.5, size=(n_components, n_features))
    signs = rng.choice([-1.0, 1.0], size=(n_components, n_features))
    dictionary = np.where(supports, magnitudes * signs, 0.0)
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)

    # Active groups: the first `active_groups` entries of a random ranking of
    # the groups, drawn for all samples at once.
    ranking = np.argsort(rng.uniform(size=(n_samples, n_groups)), axis=1)
    active = np.zeros((n_samples, n_groups), dtype=bool)
    np.put_along_axis(active, ranking[:, :active_groups], True, axis=1)
    code_magnitudes = rng.uniform(0.5, 1.5, size=(n_samples, n_components))
    if positive:
        code_signs = 1.0
    else:
        code_signs = rng.choice([-1.0, 1.0], size=(n_samples, n_components))
    codes = np.where(
        np.repeat(active, group_size, axis=1), code_magnitudes * code_signs, 0.0
    )

    X = codes @ dictionary
    if noise > 0:
        X += noise * rng.standard_normal(size=X.shape)

    return Bunch(
        X=X,
        dictionary=dictionary,
        codes=codes,
        supports=supports,
        groups=np.repeat(np.arange(n_groups), group_size),
        active=active,
        n_groups=n_groups,
        n_samples=n_samples,
        n_features=n_features,
        n_components=n_components,
        group_size=group_size,
        fan_in=fan_in,
        active_groups=active_groups,
        noise=float(noise),
        image_shape=image_shape,
        positive=bool(positive),
        shared_support=bool(shared_support),
    )


# --------------------------------------------------------------------------- #
# Shuffled pixels
# --------------------------------------------------------------------------- #


def _check_permutation(permutation, n_features):
    permutation = np.asarray(permutation)
    if (
        permutation.ndim != 1
        or permutation.shape[0] != n_features
        or not np.issubdtype(permutation.dtype, np.integer)
        or not np.array_equal(np.sort(permutation), np.arange(n_features))
    ):
        raise ValueError(
            f"permutation must be a permutation of range({n_features}) (one entry per "
            "feature, the last axis of the array)."
        )
    return permutation


@validate_params(
    {"X": ["array-like"], "random_state": ["random_state"],
     "permutation": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def permute_pixels(X, random_state=None, *, permutation=None):
    """Shuffle the features (pixels) of `X` by one fixed random permutation.

    In the shuffled-pixels experiment every image goes through the same
    permutation, which destroys the spatial layout a CNN relies on while
    keeping all the information; a structure learner that finds local
    receptive fields *after* undoing the permutation (:func:`unpermute`)
    discovered locality from the data alone.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_features,)
        Data; the permutation acts on the last axis.

    random_state : int, RandomState instance or None, default=None
        Seeds the permutation. Ignored when `permutation` is given.

    permutation : array-like of shape (n_features,), default=None
        Apply this permutation instead of drawing one, e.g. to shuffle the
        test set exactly as the training set.

    Returns
    -------
    X_perm : ndarray
        ``X[..., permutation]``: column ``j`` of `X_perm` is column
        ``permutation[j]`` of `X`.

    permutation : ndarray of shape (n_features,)
        The permutation used.

    See Also
    --------
    unpermute : Undo the permutation, e.g. on learned atoms.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.datasets import permute_pixels, unpermute
    >>> X = np.arange(12.0).reshape(2, 6)
    >>> X_perm, perm = permute_pixels(X, random_state=0)
    >>> bool(np.array_equal(unpermute(X_perm, perm), X))
    True
    """
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError("X must have at least one dimension.")
    n_features = X.shape[-1]
    if permutation is None:
        permutation = check_random_state(random_state).permutation(n_features)
    else:
        permutation = _check_permutation(permutation, n_features)
    return np.take(X, permutation, axis=-1), permutation


def unpermute(X_perm, permutation):
    """Undo :func:`permute_pixels` on data, atoms or connectivity masks.

    Parameters
    ----------
    X_perm : array-like of shape (n_rows, n_features) or (n_features,)
        Anything whose last axis is in permuted feature order: permuted data,
        the ``components_`` or ``connectivity_`` of a layer fitted on permuted
        data, ...

    permutation : array-like of shape (n_features,)
        The permutation returned by :func:`permute_pixels`.

    Returns
    -------
    X : ndarray
        The array with its last axis back in the original (spatial) order,
        same dtype as `X_perm`.

    See Also
    --------
    permute_pixels : Apply the permutation.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.datasets import permute_pixels, unpermute
    >>> atoms = np.eye(4)
    >>> atoms_perm, perm = permute_pixels(atoms, random_state=1)
    >>> bool(np.array_equal(unpermute(atoms_perm, perm), atoms))
    True
    """
    X_perm = np.asarray(X_perm)
    if X_perm.ndim == 0:
        raise ValueError("X_perm must have at least one dimension.")
    permutation = _check_permutation(permutation, X_perm.shape[-1])
    # Column j of X_perm is original column permutation[j]; the inverse
    # permutation (argsort) puts every column back where it came from.
    return np.take(X_perm, np.argsort(permutation), axis=-1)
