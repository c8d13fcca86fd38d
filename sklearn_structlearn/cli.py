"""Command line: learn a structure from a data set, print it, save pictures and model.

::

    sklearn-structlearn learn --data digits --out results/digits
    sklearn-structlearn learn --data fashion-mnist --n-samples 2000 --out results/fashion
    sklearn-structlearn learn --data my_images.npy --image-shape 28x28 --out results/mine
    sklearn-structlearn learn --data wine.csv --target-column target --out results/wine

writes a new folder ``--out`` holding:

- ``summary.txt``: the printed summary (depth, widths, groups, fan-in, entropies,
  locality for images; for tables, which input columns each layer reads, by name);
- ``model.joblib``: the fitted :class:`~sklearn_structlearn.DeepStructureLearner`
  (``joblib.load`` it back -- only from a source you trust: loading a pickle runs
  code from the file);
- ``entropy_vs_depth.png`` and, per kept layer, ``connectivity_layer{L}.png`` and (image
  data) ``receptive_fields_layer{L}.png``.

With ``--shared-weights`` (single-channel images) the structure is a
:class:`~sklearn_structlearn.sharing.SharedWeightLearner` instead -- the pixel grid
recovered from the data alone, shared kernels learned on it and pooled over neighbouring
sites -- and the pictures are ``topology.png`` (the recovered grid against the true one)
and ``kernels_layer1.png``, ``model.joblib`` the fitted shared-weight learner;
``--shuffle-pixels`` shuffles the pixels first, so that the grid has to be found::

    sklearn-structlearn learn --data digits --shared-weights --shuffle-pixels --out results/grid

The rules of the command, tested in ``tests/test_cli.py``:

- every bad use (a bad value, a missing or unreadable file, an unknown or non-numeric
  column, a size this machine cannot hold, an ``--out`` that cannot be written) exits
  with status 2 and ONE line on stderr, and writes nothing; all of it is checked before
  the fit starts;
- data are images only when asked (``--image-shape``), when the data set is known to
  be images (digits, Fashion-MNIST) or when a ``.npy`` array is 3-d / 4-d
  (``n_samples x height x width [x channels]``); any other table is tabular, whatever
  its number of columns;
- the outputs are written into a temporary folder next to ``--out`` and moved into
  place only once complete: a run never mixes its files with an older run's, never
  writes through a planted symbolic link, and replaces an older run only with
  ``--overwrite`` (a folder holding anything else is never replaced);
- progress bars are drawn only when stderr is a terminal (the rule of ``_progress``); a
  closed stdout (``... | head -1``) does not stop the run: the results are still saved.
"""

import argparse
import contextlib
import csv
import fnmatch
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from array import array
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser", "load_data", "UsageError"]

PROG = "sklearn-structlearn"
BUILTIN_DATA = ("digits", "fashion-mnist")
_FASHION_NAMES = ("fashion-mnist", "fashion_mnist", "fashion")
# Limits of the sizes given on the command line (beyond them a run cannot be useful:
# refused up front, with the reason, instead of failing after minutes or a MemoryError).
MAX_DEPTH_LIMIT = 100
MAX_ITER_LIMIT = 10**6
# The files a run writes; a folder holding only these is a previous run.
OUTPUT_PATTERNS = ("summary.txt", "model.joblib", "entropy_vs_depth.png",
                   "connectivity_layer*.png", "receptive_fields_layer*.png", "topology.png",
                   "kernels_layer*.png")
# DeepStructureLearner's options that a shared-weight structure does not have.
_MASKED_ONLY = ("max_depth", "n_components", "depth_criterion", "depth_tol", "preprocessing",
                "transform_algorithm")
# SharedWeightLearner's options.
_SHARED_ONLY = ("n_kernels", "kernel_size", "shuffle_pixels")
# Column names on the connectivity picture's axis up to this many inputs.
_MAX_NAMED_INPUTS = 60
_TRUST_NOTE = ("load the model with joblib.load -- only from a source you trust: loading "
               "a pickle runs code from the file")


class UsageError(Exception):
    """A bad use of the command: reported as one line on stderr, exit status 2."""


def _one_line(exc):
    return " ".join(str(exc).split())


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is a UsageError (one line), not usage text + exit."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


# --------------------------------------------------------------------------- argument types
def _int_in(name, low, high=None):
    """An int (``1e3`` accepted when integral) in ``[low, high]``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number == int(number)):
                raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
            value = int(number)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{value} is too large: at most {high} {name}")
        return value

    return parse


def _image_shape(text):
    """Parse ``28x28`` / ``28,28`` / ``32x32x3`` into a tuple of ints."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"must look like HxW or HxWxC (e.g. 28x28), got {text!r}")
    return shape


def _per_layer_int(text):
    """``128`` or ``128,64,32`` (one value per layer), each >= 1."""
    try:
        values = [int(float(v)) if float(v) == int(float(v)) else None
                  for v in text.split(",")]
    except (ValueError, OverflowError):
        values = [None]
    if any(v is None or v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected a positive int or a comma-separated list of them, got {text!r}")
    return values[0] if len(values) == 1 else values


def _per_layer_penalty(text):
    """``auto``, a finite float >= 0, or a comma-separated list of them."""
    values = []
    for v in text.split(","):
        v = v.strip()
        if v == "auto":
            values.append("auto")
            continue
        try:
            value = float(v)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(
                f"expected 'auto', a finite float >= 0 or a comma-separated list of them, "
                f"got {text!r}")
        values.append(value)
    return values[0] if len(values) == 1 else values


def _depth_tol(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a float (inf and -inf allowed), got {text!r}")
    return value


def _n_jobs(text):
    value = _int_in("threads", -(2**31))(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 threads has no meaning; use a positive int or -1")
    return value


def _column_list(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def build_parser():
    """The ``sklearn-structlearn`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Learn the structure of a deep network (connectivity, pooling groups, "
                    "depth) from unlabeled data by stacked group sparse coding.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    learn = sub.add_parser(
        "learn",
        help="learn a structure, print it, save pictures and the fitted model",
        description="Fit a DeepStructureLearner (or, with --shared-weights, a "
                    "SharedWeightLearner) on a data set, print the learned structure "
                    "and write summary.txt, model.joblib and PNG pictures into a new folder "
                    "--out. Every bad use exits with status 2 and one line on stderr, "
                    "before any work, and writes nothing.",
    )
    data = learn.add_argument_group("data")
    data.add_argument(
        "--data", required=True,
        help="'digits' (scikit-learn's 8x8 digits), 'fashion-mnist' (needs the Debian "
             "package dataset-fashion-mnist) or a FILE: .npy (n_samples x n_features, or "
             "n_samples x H x W [x C] images) or .csv (UTF-8, comma-separated, one sample "
             "per row, an optional header line naming the columns).",
    )
    data.add_argument("--target-column", default=None, metavar="NAME",
                      help="CSV: a label column, left out of the (unsupervised) fit; by name, "
                           "or by 0-based position when the file has no header")
    data.add_argument("--drop", type=_column_list, action="append", default=[],
                      metavar="NAME[,NAME...]",
                      help="CSV: columns to leave out (repeatable), e.g. identifiers or text")
    data.add_argument("--image-shape", type=_image_shape, default=None,
                      help="HxW or HxWxC: the rows of FILE are flattened images of this shape "
                           "(digits, fashion-mnist and 3-d/4-d .npy arrays are images "
                           "already; anything else is a table)")
    data.add_argument("--n-samples", type=_int_in("samples", 2), default=None,
                      help="use this many samples (random subset); default all for FILE and "
                           "digits, 2000 for fashion-mnist")
    data.add_argument("--fashion-mnist-path", default=None,
                      help="directory of the Fashion-MNIST idx files (default: the Debian "
                           "package's /usr/share/datasets/fashion-mnist)")

    model = learn.add_argument_group("structure")
    model.add_argument("--max-depth", type=_int_in("layers", 1, MAX_DEPTH_LIMIT), default=None,
                       help=f"maximum number of layers (1 to {MAX_DEPTH_LIMIT}; default 1, "
                            "the estimator's)")
    model.add_argument("--n-components", type=_per_layer_int, default=None,
                       help="units per layer: an int or a comma-separated list per layer "
                            "(default: the estimator's 'auto' width, min(8 x inputs, "
                            "samples / 2, 1024))")
    model.add_argument("--group-size", type=_per_layer_int, default=None,
                       help="units per pooling group: an int or a list per layer")
    model.add_argument("--alpha", type=_per_layer_penalty, default=None,
                       help="code penalty: 'auto', a float or a list per layer")
    model.add_argument("--connectivity-alpha", type=_per_layer_penalty, default=None,
                       help="connectivity penalty: 'auto', a float or a list per layer "
                            "(0: dense layers)")
    model.add_argument("--depth-criterion", choices=["information", "redundancy", "entropy"],
                       default=None,
                       help="what a layer beyond the first must improve to be kept: "
                            "'information' (default) -- the fraction of the input's variance "
                            "a linear read-out of the outputs recovers on held-out rows must "
                            "grow by --depth-tol; 'redundancy' -- the redundancy of the "
                            "outputs (the fraction of their summed bits they share) must "
                            "drop by --depth-tol; 'entropy' -- their output entropy must "
                            "grow by --depth-tol, relative")
    model.add_argument("--depth-tol", type=_depth_tol, default=None,
                       help="minimum improvement for a layer beyond the first to be kept "
                            "(default 0.01): with --depth-criterion information, the rise of "
                            "the decodable fraction of the input's variance; with redundancy, "
                            "the drop of the redundancy of the outputs (absolute, it is a "
                            "fraction); with entropy, the relative entropy gain. inf keeps "
                            "one layer, -inf "
                            "stacks --max-depth layers")
    model.add_argument("--transform-algorithm", choices=["threshold", "lasso"], default=None,
                       help="how each layer codes its inputs once its dictionary is learned: "
                            "'threshold' (default) -- one proximal step, the soft-threshold "
                            "of the correlations with the atoms (feed-forward, keeps more of "
                            "the input's information); 'lasso' -- the codes that minimise the "
                            "layer's objective")
    model.add_argument("--preprocessing", choices=["standardize", "zca", "none"], default=None,
                       help="preprocessing of the inputs (default: the estimator's, zca)")
    model.add_argument("--max-iter", type=_int_in("iterations", 1, MAX_ITER_LIMIT),
                       default=None, help="maximum alternating iterations per layer")
    model.add_argument("--random-state", type=_int_in("", 0, 2**32 - 1), default=0,
                       help="seed (default 0)")
    model.add_argument("--n-jobs", type=_n_jobs, default=None,
                       help="threads (default: all cores; -1: all cores)")

    shared = learn.add_argument_group(
        "shared weights",
        "a convolution-like structure found without labels (single-channel images); "
        "--group-size, --alpha, --connectivity-alpha (one value each), --max-iter, "
        "--random-state and --n-jobs apply too")
    shared.add_argument("--shared-weights", action="store_true",
                        help="learn a SharedWeightLearner instead: the pixel grid recovered "
                             "from the data alone, shared kernels (families of units with one "
                             "weight vector) learned on it by group sparse coding and pooled "
                             "over neighbouring sites, layer after layer")
    shared.add_argument("--n-kernels", type=_per_layer_int, default=None,
                        help="kernels per layer, a comma-separated list (default 32,64); the "
                             "number of layers is its length")
    shared.add_argument("--kernel-size", type=_per_layer_int, default=None,
                        help="odd window side: an int or one per layer (default 5)")
    shared.add_argument("--shuffle-pixels", action="store_true",
                        help="shuffle the pixels of every image by one fixed permutation "
                             "(seeded by --random-state) before learning, so that the grid "
                             "must be found from the data; the recovered grid is scored "
                             "against the true one either way")

    output = learn.add_argument_group("output")
    output.add_argument("--out", required=True, type=Path,
                        help="output folder: created, or an empty folder; an older run's "
                             "folder only with --overwrite")
    output.add_argument("--overwrite", action="store_true",
                        help="replace the results of an older run in --out (a folder "
                             "holding other files is never replaced)")
    output.add_argument("--no-plots", action="store_true", help="do not write PNG pictures")
    output.add_argument("-q", "--quiet", action="store_true", help="print the summary only")
    return parser


# --------------------------------------------------------------------------- data
def _subsample(X, n_samples, random_state):
    if n_samples is None or n_samples >= X.shape[0]:
        return X
    rows = np.random.RandomState(random_state).choice(X.shape[0], n_samples, replace=False)
    return X[np.sort(rows)]


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_index(name, header, n_columns, option):
    """Position of column ``name`` (a header name, or a 0-based position without header)."""
    if header is not None:
        if name in header:
            return header.index(name)
        shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
        raise UsageError(f"{option} {name!r}: no such column (columns: {shown})")
    if name.isdigit() and int(name) < n_columns:
        return int(name)
    raise UsageError(
        f"{option} {name!r}: the file has no header line, so columns are named by their "
        f"0-based position, 0 to {n_columns - 1}")


def _load_csv(path, target_column=None, drop=()):
    """``(X, feature_names or None, note)`` from a CSV file (UTF-8, with or without BOM)."""
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"--data {path}: cannot read it ({exc.strerror})") from None
    with handle:
        reader = csv.reader(handle)

        def numbered_rows():
            for row in reader:
                if any(field.strip() for field in row):  # blank lines are skipped
                    yield reader.line_num, [field.strip() for field in row]

        rows = numbered_rows()
        try:
            first = next(rows, None)
            second = next(rows, None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"--data {path}: not a readable UTF-8 CSV file "
                             f"({_one_line(exc)})") from None
        if first is None:
            raise UsageError(f"--data {path}: the file is empty")
        n_columns = len(first[1])
        # A header names the columns: a non-numeric field above a numeric one (a text
        # column of a file without header, e.g. "setosa" on every row, is not one).
        below = second[1] if second is not None else [""] * n_columns
        header = first[1] if any(
            not _is_number(top) and (_is_number(low) or second is None)
            for top, low in zip(first[1], below)) else None
        if header is not None:
            duplicates = sorted({n for n in header if header.count(n) > 1})
            if duplicates:
                raise UsageError(f"--data {path}: column {duplicates[0]!r} appears twice in "
                                 "the header")
        left_out = {}
        if target_column is not None:
            left_out[_column_index(target_column, header, n_columns, "--target-column")] = \
                "target"
        for name in drop:
            left_out[_column_index(name, header, n_columns, "--drop")] = "dropped"
        kept = [j for j in range(n_columns) if j not in left_out]
        if not kept:
            raise UsageError(f"--data {path}: no column left once the target and the "
                             "dropped columns are left out")

        def label(j):
            return repr(header[j]) if header is not None else str(j)

        values = array("d")
        n_rows = 0
        line = first[0]
        head = ([] if header is not None else [first]) + ([second] if second else [])
        try:
            for line, row in _chain(head, rows):
                if len(row) != n_columns:
                    raise UsageError(f"--data {path}: line {line} has {len(row)} fields, the "
                                     f"first line {n_columns}")
                for j in kept:
                    field = row[j]
                    try:
                        value = float(field)
                    except ValueError:
                        what = "an empty value" if not field else f"{field!r}"
                        advice = ("missing values are not supported" if not field else
                                  f"drop it (--drop {header[j] if header else j}) or name "
                                  "it as the target (--target-column)")
                        raise UsageError(
                            f"--data {path}: column {label(j)} is not numeric ({what} on "
                            f"line {line}); {advice}") from None
                    if not math.isfinite(value):
                        raise UsageError(
                            f"--data {path}: column {label(j)} has a non-finite value "
                            f"({field!r}) on line {line}; only finite numbers are supported")
                    values.append(value)
                n_rows += 1
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"--data {path}: not a readable UTF-8 CSV file near line {line} "
                             f"({_one_line(exc)})") from None
    if n_rows == 0:
        raise UsageError(f"--data {path}: no data rows")
    X = np.frombuffer(values, dtype=np.float64).reshape(n_rows, len(kept)).copy()
    names = None if header is None else [header[j] for j in kept]
    parts = []
    for kind in ("target", "dropped"):
        columns = [header[j] if header else str(j) for j, k in left_out.items() if k == kind]
        if columns:
            parts.append(f"{kind} column{'s' if len(columns) > 1 else ''} "
                         + ", ".join(columns) + " left out")
    return X, names, "; ".join(parts)


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable


def _load_npy(path):
    if path.is_dir():
        raise UsageError(f"--data {path} is a directory, not a .npy file")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise UsageError(f"--data {path}: cannot read it ({exc.strerror})") from None
    if not magic:
        raise UsageError(f"--data {path} is empty (0 bytes), not a .npy array")
    if magic.startswith(b"PK\x03\x04"):
        raise UsageError(f"--data {path} is a .npz archive (a zip of arrays), not a .npy "
                         "array; save the array itself with numpy.save")
    if magic != b"\x93NUMPY":
        raise UsageError(f"--data {path} is not a valid .npy array (no NumPy header); save "
                         "it with numpy.save")
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise UsageError(f"--data {path} holds Python objects, which are not loaded "
                             "(they could run code); save a numeric array") from None
        raise UsageError(f"--data {path} is not a valid .npy array ({_one_line(exc)})") from None
    except (OSError, EOFError) as exc:
        raise UsageError(f"--data {path} is not a valid .npy array ({_one_line(exc)})") from None
    if not isinstance(X, np.ndarray):
        raise UsageError(f"--data {path} is not a single .npy array")
    return X


def load_data(data, *, n_samples=None, image_shape=None, fashion_path=None, random_state=0,
              target_column=None, drop=()):
    """Load ``--data`` as ``(X, image_shape, description, feature_names)``.

    Parameters
    ----------
    data : str
        ``"digits"``, ``"fashion-mnist"`` or the path of a ``.npy`` / ``.csv`` file.
    n_samples : int, default=None
        Random subset size (``None``: all, or 2000 for Fashion-MNIST).
    image_shape : tuple of int, default=None
        Shape of the images of a file (``None``: a 3-d / 4-d ``.npy`` array gives it,
        anything else is a table).
    fashion_path : str, default=None
        Directory of the Fashion-MNIST files.
    random_state : int, default=0
        Seed of the subset.
    target_column : str, default=None
        CSV only: a label column to leave out.
    drop : sequence of str, default=()
        CSV only: columns to leave out.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    image_shape : tuple of int or None
    description : str
    feature_names : list of str or None
        The CSV header's names of the columns of ``X``.

    Raises
    ------
    UsageError
        Anything wrong with the data or their options, in one line.
    """
    from .datasets import load_digits_images, load_fashion_mnist

    drop = list(drop)
    is_csv = data not in BUILTIN_DATA + _FASHION_NAMES and Path(data).suffix.lower() == ".csv"
    if (target_column is not None or drop) and not is_csv:
        raise UsageError("--target-column and --drop select columns of a .csv file; --data "
                         f"{data} is not one")
    if data == "digits":
        X, _ = load_digits_images()
        X = _subsample(X, n_samples, random_state)
        X, shape, description = X, (8, 8), f"scikit-learn digits, {X.shape[0]} images of 8x8"
        names = None
    elif data in _FASHION_NAMES:
        n = 2000 if n_samples is None else n_samples
        try:
            X, _ = load_fashion_mnist(fashion_path, n_samples=n, random_state=random_state)
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise UsageError(_one_line(exc)) from None
        shape, names = (28, 28), None
        description = f"Fashion-MNIST, {X.shape[0]} training images of 28x28"
    else:
        path = Path(data)
        if not path.exists():
            raise UsageError(f"--data {data!r} is neither one of {', '.join(BUILTIN_DATA)} "
                             "nor an existing file")
        suffix = path.suffix.lower()
        note = ""
        names = None
        if suffix == ".npy":
            X = _load_npy(path)
        elif suffix == ".csv":
            if path.is_dir():
                raise UsageError(f"--data {path} is a directory, not a .csv file")
            X, names, note = _load_csv(path, target_column, drop)
        else:
            raise UsageError(f"--data file must be a .npy or .csv file, got {path.name!r}")
        if X.dtype.kind not in "biuf":  # strings, dates, complex: never converted silently
            raise UsageError(f"--data {path.name} must hold real numbers, got dtype {X.dtype}")
        if X.ndim in (3, 4):
            if image_shape is None:
                image_shape = tuple(int(s) for s in X.shape[1:])
            X = X.reshape(X.shape[0], -1)
        elif X.ndim != 2:
            raise UsageError(
                f"--data {path.name} holds an array of shape {X.shape}; expected (n_samples, "
                "n_features) or (n_samples, height, width[, channels])")
        if X.shape[0] < 2 or X.shape[1] < 1:
            raise UsageError(f"--data {path.name} holds {X.shape[0]} samples x {X.shape[1]} "
                             "features; at least 2 samples of 1 feature are needed")
        X = np.asarray(X, dtype=np.float64)
        if not np.all(np.isfinite(X)):
            raise UsageError(f"--data {path.name} holds NaN or infinite values")
        X = _subsample(X, n_samples, random_state)
        shape = image_shape
        if shape is not None and int(np.prod(shape)) != X.shape[1]:
            raise UsageError(
                f"--image-shape {'x'.join(map(str, shape))} has {int(np.prod(shape))} pixels "
                f"but {path.name} has {X.shape[1]} features per sample")
        kind = f", images of {'x'.join(map(str, shape))}" if shape else ", a table"
        description = (f"{path.name}, {X.shape[0]} samples x {X.shape[1]} features{kind}"
                       + (f" ({note})" if note else ""))
        return X, shape, description, names
    if image_shape is not None and tuple(image_shape[:2]) != shape:
        raise UsageError(f"--image-shape {'x'.join(map(str, image_shape))} does not match the "
                         f"{data} images ({'x'.join(map(str, shape))})")
    return X, shape, description, names


# --------------------------------------------------------------------------- checks
def _per_layer(value, max_depth, option):
    if isinstance(value, list):
        if len(value) != max_depth:
            raise UsageError(f"{option} has {len(value)} per-layer values but --max-depth is "
                             f"{max_depth}; give one value or exactly {max_depth}")
        return value
    return [value] * max_depth


def _physical_memory():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None


def _check_sizes(args, n_samples, n_features):
    """Refuse, before the fit, sizes that cannot work (with the reason)."""
    from .deep import DeepStructureLearner
    from .penalties import auto_n_components

    defaults = DeepStructureLearner().get_params()
    depth = args.max_depth if args.max_depth is not None else defaults["max_depth"]
    units = _per_layer(args.n_components if args.n_components is not None
                       else defaults["n_components"], depth, "--n-components")
    groups = _per_layer(args.group_size if args.group_size is not None
                        else defaults["group_size"], depth, "--group-size")
    for option in ("alpha", "connectivity_alpha"):
        value = getattr(args, option)
        if value is not None:
            _per_layer(value, depth, f"--{option.replace('_', '-')}")
    memory = _physical_memory()
    n_inputs = n_features
    for layer, (k, g) in enumerate(zip(units, groups), start=1):
        if k is None:  # the estimator's "auto" width
            k = auto_n_components(n_inputs, n_samples, g)
        if k % g:
            raise UsageError(f"layer {layer}: --n-components {k} is not a multiple of "
                             f"--group-size {g}; each pooling group needs {g} units")
        # codes and their statistics (n_samples x units), the Gram (units x units) and the
        # dictionary (units x inputs), float64, a few copies of each
        need = 8 * (3 * n_samples * k + 2 * k * k + 2 * k * n_inputs)
        if memory is not None and need > memory:
            raise UsageError(
                f"layer {layer}: {k} units on {n_inputs} inputs and {n_samples} samples need "
                f"about {need / 2**30:.1f} GiB, more than this machine's "
                f"{memory / 2**30:.1f} GiB; lower --n-components or --n-samples")
        n_inputs = k // g


def _check_structure_options(args, image_shape):
    """Refuse the options of the other kind of structure, and data it cannot learn on."""
    def flag(name):
        return "--" + name.replace("_", "-")

    def given(name):
        return getattr(args, name) not in (None, False)

    if not args.shared_weights:
        wrong = [name for name in _SHARED_ONLY if given(name)]
        if wrong:
            raise UsageError(f"{flag(wrong[0])} applies to --shared-weights only")
        return
    wrong = [name for name in _MASKED_ONLY if given(name)]
    if wrong:
        raise UsageError(f"{flag(wrong[0])} does not apply to --shared-weights (its depth is "
                         "the length of --n-kernels, its width --n-kernels, its inputs "
                         "standardised by one mean and one scale, its maps computed by its "
                         "own shared kernels); drop it")
    if image_shape is None:
        raise UsageError("--shared-weights needs images, a grid to recover: digits, "
                         "fashion-mnist, a 3-d .npy array or --image-shape HxW")
    if len(image_shape) == 3 and image_shape[2] != 1:
        raise UsageError(f"--shared-weights handles single-channel images; these have "
                         f"{image_shape[2]} channels")
    for name in ("group_size", "alpha", "connectivity_alpha"):
        if isinstance(getattr(args, name), list):
            raise UsageError(f"{flag(name)} takes one value with --shared-weights (all its "
                             f"layers share it), got {len(getattr(args, name))}")


def _shared_learner(args, n_samples, image_shape):
    """The SharedWeightLearner of the options, its parameters and the memory its maps need
    on ``n_samples`` images checked (before any work)."""
    from .sharing import SharedWeightLearner

    optional = {"n_kernels": args.n_kernels, "kernel_size": args.kernel_size,
                "group_size": args.group_size, "alpha": args.alpha,
                "connectivity_alpha": args.connectivity_alpha, "max_iter": args.max_iter}
    learner = SharedWeightLearner(random_state=args.random_state, n_jobs=args.n_jobs,
                                  **{k: v for k, v in optional.items() if v is not None})
    try:
        learner._validate_params()
        n_kernels, _, pool_sizes = learner._layer_params()
    except ValueError as exc:
        raise UsageError(f"--shared-weights: {_one_line(exc)}") from None
    memory = _physical_memory()
    h, w = image_shape[:2]
    floats = h * w  # the input maps, then each layer's pooled maps
    for k, p in zip(n_kernels, pool_sizes):
        h, w = -(-h // p), -(-w // p)
        floats += k * h * w
    need = 8 * n_samples * floats * 2  # float64, the maps of two layers alive at once
    if memory is not None and need > memory:
        raise UsageError(
            f"--shared-weights: the maps of {n_samples} images need about "
            f"{need / 2**30:.1f} GiB, more than this machine's {memory / 2**30:.1f} GiB; "
            "lower --n-samples or --n-kernels")
    return learner


# --------------------------------------------------------------------------- output folder
def _is_run_file(path):
    return (path.is_file() and not path.is_symlink()
            and any(fnmatch.fnmatchcase(path.name, p) for p in OUTPUT_PATTERNS))


class _OutputFolder:
    """The ``--out`` folder, written atomically.

    ``check()`` refuses (before the fit) an ``--out`` that cannot become the run's folder;
    ``stage()`` creates a private temporary folder next to it (the real test that the
    place is writable); ``commit()`` moves the complete results into place; ``discard()``
    removes everything this run created.
    """

    def __init__(self, out, overwrite):
        self.out = Path(out)
        self.overwrite = overwrite
        self.staging = None
        self.created_parents = []

    def check(self):
        out = self.out
        if out.is_symlink():
            raise UsageError(f"--out {out} is a symbolic link; give the folder itself")
        if out.exists():
            if not out.is_dir():
                raise UsageError(f"--out {out} exists and is not a folder")
            entries = sorted(out.iterdir())
            if entries:
                foreign = [e.name for e in entries if not _is_run_file(e)]
                if foreign:
                    raise UsageError(
                        f"--out {out} is not empty and is not an older run's folder (it holds "
                        f"{foreign[0]!r}); choose a new or empty folder")
                if not self.overwrite:
                    raise UsageError(
                        f"--out {out} already holds a run ({', '.join(e.name for e in entries[:3])}"
                        f"{', ...' if len(entries) > 3 else ''}); pass --overwrite to replace "
                        "it, or choose another folder")
        ancestor = out.absolute().parent
        while not ancestor.exists():
            if ancestor.is_symlink():  # a dangling link on the way
                raise UsageError(f"--out {out}: {ancestor} is a broken symbolic link")
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UsageError(f"--out {out} is under {ancestor}, which is a file, not a folder")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UsageError(f"--out {out}: cannot write in {ancestor} (permission denied)")

    def stage(self):
        parent = self.out.absolute().parent
        missing = []
        for folder in [parent, *parent.parents]:
            if folder.exists():
                break
            missing.append(folder)
        try:
            for folder in reversed(missing):
                folder.mkdir()
                self.created_parents.append(folder)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-",
                                                 dir=parent))
        except OSError as exc:
            self.discard()
            raise UsageError(f"--out {self.out}: cannot create it ({exc.strerror or exc})") \
                from None
        return self.staging

    def commit(self):
        """Move the staged results to ``--out`` (an older run is replaced whole)."""
        self.check()  # --out may have changed during the fit: still ours to replace?
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.staging, 0o777 & ~umask)  # mkdtemp made it private
        if self.out.exists() or self.out.is_symlink():
            # Still an older run or an empty folder (checked before the fit); set it aside,
            # move the new run in, then delete the old one: --out is never a mix.
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-",
                                        dir=self.staging.parent))
            os.rename(self.out, old / "run")
            os.rename(self.staging, self.out)
            shutil.rmtree(old)
        else:
            os.rename(self.staging, self.out)
        self.staging = None

    def discard(self):
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        for folder in reversed(self.created_parents):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.created_parents = []


# --------------------------------------------------------------------------- streams
class _PipeSafe:
    """A text stream that stops writing, instead of raising, once its reader has gone.

    ``sklearn-structlearn learn ... | head -1`` closes stdout after one line; the fit and
    the saving of the results must go on.
    """

    def __init__(self, stream):
        self._stream = stream
        self.broken = False

    def write(self, text):
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self):
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._broke()

    def _broke(self):
        self.broken = True
        # Point the file descriptor at /dev/null, so that Python's final flush of the
        # real stream does not report the closed pipe at exit.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def isatty(self):
        try:
            return self._stream.isatty()
        except (AttributeError, ValueError):
            return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _pipe_safe_streams():
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeSafe(sys.stdout), _PipeSafe(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


# --------------------------------------------------------------------------- the command
def _learner_params(args, image_shape):
    params = {"image_shape": image_shape, "random_state": args.random_state,
              "n_jobs": args.n_jobs, "verbose": 0 if args.quiet else 1}
    optional = {
        "max_depth": args.max_depth, "n_components": args.n_components,
        "group_size": args.group_size,
        "alpha": args.alpha, "connectivity_alpha": args.connectivity_alpha,
        "depth_tol": args.depth_tol, "depth_criterion": args.depth_criterion,
        "transform_algorithm": args.transform_algorithm, "max_iter": args.max_iter,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if args.preprocessing is not None:
        params["preprocessing"] = None if args.preprocessing == "none" else args.preprocessing
    return params


def _zero_penalty_warnings(model):
    """Lines saying which "auto" penalty of the fitted ``model`` resolved to zero (never
    silently)."""
    lines = []
    for option, attr in (("connectivity_alpha", "connectivity_alpha_"), ("alpha", "alpha_")):
        requested = model._per_layer(option)  # what was asked, one value per layer
        for depth, layer in enumerate(model.layers_, start=1):
            if requested[depth - 1] == "auto" and getattr(layer, attr, None) == 0:
                flag = f"--{option.replace('_', '-')}"
                effect = ("the layer is dense (every unit reads every input)"
                          if option == "connectivity_alpha" else "the codes are not sparse")
                lines.append(f"warning: the 'auto' {option} of layer {depth} resolved to 0 on "
                             f"these data: {effect}; pass {flag} with a positive value to "
                             "change that")
    return lines


def _named_inputs(model, names, max_groups=16, max_names=6):
    """Which input columns the first layer reads, by name (tabular data)."""
    layer = model.layers_[0]
    mask = np.asarray(layer.connectivity_, dtype=bool)
    weights = np.abs(np.asarray(layer.components_)) * mask
    width = max(len(n) for n in names)
    lines = [f"layer 1 inputs by name (units of {mask.shape[0]} reading each):"]
    for j in np.argsort(-mask.sum(axis=0), kind="stable"):
        lines.append(f"  {names[j]:<{width}}  {int(mask[:, j].sum())}")
    size = layer.group_size
    n_groups = mask.shape[0] // size
    lines.append("layer 1 groups, inputs by connection weight:")
    for g in range(min(n_groups, max_groups)):
        mass = weights[g * size:(g + 1) * size].sum(axis=0)
        order = [j for j in np.argsort(-mass, kind="stable") if mass[j] > 0]
        shown = ", ".join(names[j] for j in order[:max_names])
        more = f", ... ({len(order)} inputs)" if len(order) > max_names else ""
        lines.append(f"  group {g}: {shown or '(no input)'}{more}")
    if n_groups > max_groups:
        lines.append(f"  ... {n_groups - max_groups} more groups")
    return lines


def _save_figure(fig, folder, name, written):
    fig.savefig(folder / name, dpi=100)
    written.append(name)


def _write_pictures(model, folder, written, names):
    # the depth rule's own quantity on the second axis (the decodable variance of each
    # tried layer, or the redundancy of each representation); entropies on a log scale,
    # or the input's thousands of bits flatten the layers'
    if model.depth_criterion == "information":
        rule = dict(accuracies=np.concatenate([[np.nan], model.decodable_variances_]),
                    accuracy_label="input variance decodable (depth rule)")
    else:
        rule = dict(accuracies=model.redundancies_, accuracy_label="redundancy (depth rule)")
    fig = model.plot_entropy_curve(
        **rule, title=f"output entropy and the depth rule vs depth "
                      f"(depth_tol={model.depth_tol:g})")
    if np.all(model.candidate_entropies_ > 0):
        fig.axes[0].set_yscale("log")
    _save_figure(fig, folder, "entropy_vs_depth.png", written)
    for depth in range(1, model.n_layers_ + 1):
        kwargs = {}
        if depth == 1 and names is not None and len(names) <= _MAX_NAMED_INPUTS:
            kwargs["input_names"] = names
        _save_figure(model.plot_connectivity(layer=depth, **kwargs), folder,
                     f"connectivity_layer{depth}.png", written)
        if model.image_shape_ is not None:
            structure = model.structure_[depth - 1]
            title = (f"layer {depth} receptive fields"
                     + (" (traced to the pixels)" if depth > 1 else "")
                     + f"\nlocality {structure.locality:.2f} (1 = random), "
                       f"median fan-in {structure.fan_in['median']:.0f} of "
                       f"{structure.n_inputs} inputs")
            fig = model.plot_receptive_fields(layer=depth, n_units=64, title=title)
            fig.subplots_adjust(top=1 - 0.75 / fig.get_figheight())  # room for 2 lines
            _save_figure(fig, folder, f"receptive_fields_layer{depth}.png", written)


def _recovery_line(model, image_shape, permutation):
    """How the recovered grid compares with the true one (known for images)."""
    h, w = image_shape[:2]
    scores = model.topology_.recovery((h, w), permutation)
    return (f"recovered grid against the true {h}x{w} grid: {scores['exact']:.1%} of the "
            f"pixels at their exact site, {scores['neighbours']:.1%} of the true neighbours "
            "adjacent" + (" (pixels shuffled first)" if permutation is not None else ""))


def _write_shared_pictures(model, folder, written, x, image_shape, permutation):
    from .plotting import plot_recovered_topology

    _save_figure(plot_recovered_topology(model, x, image_shape[:2], permutation=permutation),
                 folder, "topology.png", written)
    _save_figure(model.plot_kernels(), folder, "kernels_layer1.png", written)


def _say(text, args):
    if not args.quiet:
        print(text, flush=True)


def learn(args):
    """Run the ``learn`` command; returns the fitted learner.

    Raises UsageError (before any work, and having written nothing) for a bad use.
    """
    import joblib
    from sklearn.exceptions import ConvergenceWarning

    from .datasets import permute_pixels
    from .deep import DeepStructureLearner

    output = _OutputFolder(args.out, args.overwrite)
    output.check()
    drop = [name for names in args.drop for name in names]
    X, image_shape, description, names = load_data(
        args.data, n_samples=args.n_samples, image_shape=args.image_shape,
        fashion_path=args.fashion_mnist_path, random_state=args.random_state,
        target_column=args.target_column, drop=drop,
    )
    _check_structure_options(args, image_shape)
    permutation = None
    if args.shared_weights:
        model = _shared_learner(args, X.shape[0], image_shape)
        if args.shuffle_pixels:
            X, permutation = permute_pixels(X, random_state=args.random_state)
            description += ", pixels shuffled by one fixed permutation"
    else:
        _check_sizes(args, X.shape[0], X.shape[1])
        model = DeepStructureLearner(**_learner_params(args, image_shape))
    staging = output.stage()
    try:
        _say(f"data: {description}", args)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            # A solver stopping at max_iter is routine here; one line says so instead of a
            # warning (with a source line) per layer.
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                model.fit(X)
            except (ValueError, TypeError) as exc:
                raise UsageError(_one_line(exc)) from None
        elapsed = time.perf_counter() - start
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        n_convergence = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        if n_convergence:
            _say(f"note: {n_convergence} solver(s) stopped at their iteration limit "
                 "(raise --max-iter for tighter fits)", args)
        if names is not None:
            # the names of the CSV header, as fitting on a DataFrame would have recorded them
            model.feature_names_in_ = np.asarray(names, dtype=object)

        lines = [f"data: {description}", model.summary()]
        if args.shared_weights:
            lines.append(_recovery_line(model, image_shape, permutation))
        else:
            lines += _zero_penalty_warnings(model)
        if names is not None:
            lines += _named_inputs(model, names)
        lines.append(f"fit time: {elapsed:.1f}s")
        summary = "\n".join(lines) + "\n"
        # the data line was printed before the fit (unless quiet)
        print(summary if args.quiet else summary.split("\n", 1)[1], end="", flush=True)
        written = []
        (staging / "summary.txt").write_text(summary, encoding="utf-8")
        written.append("summary.txt")
        joblib.dump(model, staging / "model.joblib")
        written.append("model.joblib")
        if not args.no_plots:
            try:
                if args.shared_weights:
                    _write_shared_pictures(model, staging, written, X[0], image_shape,
                                           permutation)
                else:
                    _write_pictures(model, staging, written, names)
            except ImportError as exc:  # matplotlib is optional
                print(f"pictures skipped: {_one_line(exc)}", file=sys.stderr)
        output.commit()
    finally:
        output.discard()
    _say(f"wrote {os.fspath(args.out)}{os.sep}: {', '.join(written)} ({_TRUST_NOTE})", args)
    return model


def main(argv=None):
    """Entry point of the ``sklearn-structlearn`` console script.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success; 2 on a bad use (one line on stderr, nothing written); 130 when
        interrupted (nothing written).
    """
    with _pipe_safe_streams():
        try:
            args = build_parser().parse_args(argv)
            if args.command == "learn":
                learn(args)
        except UsageError as exc:
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
            return 2
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted; nothing was written", file=sys.stderr, flush=True)
            return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
