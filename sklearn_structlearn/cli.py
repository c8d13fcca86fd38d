"""Command line: learn a structure from a data set, print it, save pictures and model.

::

    sklearn-structlearn learn --data digits --out results/digits
    sklearn-structlearn learn --data fashion-mnist --n-samples 2000 --out results/fashion
    sklearn-structlearn learn --data my_images.npy --image-shape 28x28 --out results/mine

writes, into ``--out``:

- ``summary.txt``: the printed summary (depth, widths, groups, fan-in, entropies, locality);
- ``model.joblib``: the fitted :class:`~sklearn_structlearn.DeepStructureLearner`
  (``joblib.load`` it back);
- ``entropy_vs_depth.png`` and, per kept layer, ``connectivity_layer{L}.png`` and (image
  data) ``receptive_fields_layer{L}.png``.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser", "load_data"]

BUILTIN_DATA = ("digits", "fashion-mnist")


def _image_shape(text):
    """Parse ``28x28`` / ``28,28`` / ``32x32x3`` into a tuple of ints."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"--image-shape must look like HxW or HxWxC (e.g. 28x28), got {text!r}."
        )
    return shape


def _per_layer_int(text):
    """``128`` or ``128,64,32`` (one value per layer)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an int or a comma-separated list of ints, got {text!r}."
        ) from None
    return values[0] if len(values) == 1 else values


def _per_layer_penalty(text):
    """``auto``, a float, or a comma-separated list of them."""
    values = []
    for v in text.split(","):
        v = v.strip()
        if v == "auto":
            values.append("auto")
            continue
        try:
            values.append(float(v))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected 'auto', a float or a comma-separated list of them, got {text!r}."
            ) from None
    return values[0] if len(values) == 1 else values


def build_parser():
    """The ``sklearn-structlearn`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sklearn-structlearn",
        description="Learn the structure of a deep network (connectivity, pooling groups, "
                    "depth) from unlabeled data by stacked group sparse coding.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    learn = sub.add_parser(
        "learn",
        help="learn a structure, print it, save pictures and the fitted model",
        description="Fit a DeepStructureLearner on a data set, print the learned structure "
                    "and write summary.txt, model.joblib and PNG pictures to --out.",
    )
    learn.add_argument(
        "--data", required=True,
        help="'digits' (scikit-learn's 8x8 digits), 'fashion-mnist' (needs the Debian "
             "package dataset-fashion-mnist) or a FILE: .npy (n_samples x n_features, or "
             "n_samples x H x W [x C] images) or .csv (numeric, one sample per row, an "
             "optional header line).",
    )
    learn.add_argument("--out", required=True, type=Path, help="output directory (created)")
    learn.add_argument("--max-depth", type=int, default=3, help="maximum number of layers")
    learn.add_argument("--n-components", type=_per_layer_int, default=None,
                       help="units per layer: an int or a comma-separated list per layer")
    learn.add_argument("--group-size", type=_per_layer_int, default=None,
                       help="units per pooling group: an int or a list per layer")
    learn.add_argument("--alpha", type=_per_layer_penalty, default=None,
                       help="code penalty: 'auto', a float or a list per layer")
    learn.add_argument("--connectivity-alpha", type=_per_layer_penalty, default=None,
                       help="connectivity penalty: 'auto', a float or a list per layer")
    learn.add_argument("--depth-tol", type=float, default=None,
                       help="minimum relative entropy gain to keep a layer beyond the first")
    learn.add_argument("--preprocessing", choices=["standardize", "zca", "none"], default=None,
                       help="preprocessing of the inputs (default: the estimator's)")
    learn.add_argument("--image-shape", type=_image_shape, default=None,
                       help="HxW or HxWxC of the images in FILE (inferred from 3-d .npy "
                            "files, square images and the built-in data sets)")
    learn.add_argument("--n-samples", type=int, default=None,
                       help="use this many samples (random subset); default all for FILE and "
                            "digits, 2000 for fashion-mnist")
    learn.add_argument("--fashion-mnist-path", default=None,
                       help="directory of the Fashion-MNIST idx files (default: the Debian "
                            "package's /usr/share/datasets/fashion-mnist)")
    learn.add_argument("--max-iter", type=int, default=None,
                       help="maximum alternating iterations per layer")
    learn.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    learn.add_argument("--n-jobs", type=int, default=None, help="threads (default: all cores)")
    learn.add_argument("--no-plots", action="store_true", help="do not write PNG pictures")
    learn.add_argument("-q", "--quiet", action="store_true", help="print the summary only")
    return parser


def _subsample(X, n_samples, random_state):
    if n_samples is None or n_samples >= X.shape[0]:
        return X
    if n_samples < 2:
        raise ValueError(f"--n-samples must be at least 2, got {n_samples}.")
    rows = np.random.RandomState(random_state).choice(X.shape[0], n_samples, replace=False)
    return X[np.sort(rows)]


def _square_shape(n_features):
    side = int(round(np.sqrt(n_features)))
    return (side, side) if side * side == n_features and side > 1 else None


def _load_csv(path):
    with open(path) as f:
        first = f.readline()
    try:
        [float(v) for v in first.strip().split(",") if v.strip()]
        skip = 0
    except ValueError:
        skip = 1  # a header line
    X = np.loadtxt(path, delimiter=",", skiprows=skip, dtype=np.float64, ndmin=2)
    return X


def load_data(data, *, n_samples=None, image_shape=None, fashion_path=None, random_state=0):
    """Load ``--data`` as ``(X, image_shape, description)``.

    Parameters
    ----------
    data : str
        ``"digits"``, ``"fashion-mnist"`` or the path of a ``.npy`` / ``.csv`` file.
    n_samples : int, default=None
        Random subset size (``None``: all, or 2000 for Fashion-MNIST).
    image_shape : tuple of int, default=None
        Shape of the images of a file; inferred when possible.
    fashion_path : str, default=None
        Directory of the Fashion-MNIST files.
    random_state : int, default=0
        Seed of the subset.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    image_shape : tuple of int or None
    description : str
    """
    from .datasets import load_digits_images, load_fashion_mnist

    if data == "digits":
        X, _ = load_digits_images()
        X = _subsample(X, n_samples, random_state)
        return X, (8, 8), f"scikit-learn digits, {X.shape[0]} images of 8x8"
    if data in ("fashion-mnist", "fashion_mnist", "fashion"):
        n = 2000 if n_samples is None else n_samples
        X, _ = load_fashion_mnist(fashion_path, n_samples=n, random_state=random_state)
        return X, (28, 28), f"Fashion-MNIST, {X.shape[0]} training images of 28x28"
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(
            f"--data {data!r} is neither one of {', '.join(BUILTIN_DATA)} nor an existing file."
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        X = np.load(path, allow_pickle=False)
        if X.ndim in (3, 4):
            if image_shape is None:
                image_shape = tuple(int(s) for s in X.shape[1:])
            X = X.reshape(X.shape[0], -1)
    elif suffix == ".csv":
        X = _load_csv(path)
    else:
        raise ValueError(f"--data file must be a .npy or .csv file, got {path.name!r}.")
    if X.ndim != 2:
        raise ValueError(
            f"{path.name} holds an array of shape {X.shape}; expected (n_samples, n_features) "
            "or (n_samples, height, width[, channels])."
        )
    if X.dtype.kind not in "biuf":  # complex would be silently cast to its real part
        raise ValueError(f"{path.name} must hold real numbers, got dtype {X.dtype}.")
    X = _subsample(np.asarray(X, dtype=np.float64), n_samples, random_state)
    if image_shape is None:
        image_shape = _square_shape(X.shape[1])
    elif int(np.prod(image_shape)) != X.shape[1]:
        raise ValueError(
            f"--image-shape {'x'.join(map(str, image_shape))} has {int(np.prod(image_shape))} "
            f"pixels but {path.name} has {X.shape[1]} features per sample."
        )
    shape_text = f", images of {'x'.join(map(str, image_shape))}" if image_shape else ""
    return X, image_shape, f"{path.name}, {X.shape[0]} samples x {X.shape[1]} features{shape_text}"


def _learner_params(args, image_shape):
    params = {"max_depth": args.max_depth, "image_shape": image_shape,
              "random_state": args.random_state, "n_jobs": args.n_jobs,
              "verbose": 0 if args.quiet else 1}
    optional = {
        "n_components": args.n_components, "group_size": args.group_size,
        "alpha": args.alpha, "connectivity_alpha": args.connectivity_alpha,
        "depth_tol": args.depth_tol, "max_iter": args.max_iter,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if args.preprocessing is not None:
        params["preprocessing"] = None if args.preprocessing == "none" else args.preprocessing
    return params


def _save_figure(fig, path, written):
    fig.savefig(path, dpi=100)
    written.append(path)


def _write_pictures(model, out, written):
    # the depth rule's own quantity, the redundancy of each representation, on the second
    # axis; entropies on a log scale, or the input's thousands of bits flatten the layers'
    fig = model.plot_entropy_curve(
        accuracies=model.redundancies_, accuracy_label="redundancy (depth rule)",
        title=f"output entropy and redundancy vs depth (depth_tol={model.depth_tol:g})")
    if np.all(model.candidate_entropies_ > 0):
        fig.axes[0].set_yscale("log")
    _save_figure(fig, out / "entropy_vs_depth.png", written)
    for depth in range(1, model.n_layers_ + 1):
        _save_figure(model.plot_connectivity(layer=depth),
                     out / f"connectivity_layer{depth}.png", written)
        if model.image_shape_ is not None:
            structure = model.structure_[depth - 1]
            title = (f"layer {depth} receptive fields"
                     + (" (traced to the pixels)" if depth > 1 else "")
                     + f"\nlocality {structure.locality:.2f} (1 = random), "
                       f"median fan-in {structure.fan_in['median']:.0f} of "
                       f"{structure.n_inputs} inputs")
            fig = model.plot_receptive_fields(layer=depth, n_units=64, title=title)
            fig.subplots_adjust(top=1 - 0.75 / fig.get_figheight())  # room for 2 lines
            _save_figure(fig, out / f"receptive_fields_layer{depth}.png", written)


def learn(args):
    """Run the ``learn`` command; returns the fitted learner."""
    import joblib
    from sklearn.exceptions import ConvergenceWarning

    from .deep import DeepStructureLearner

    X, image_shape, description = load_data(
        args.data, n_samples=args.n_samples, image_shape=args.image_shape,
        fashion_path=args.fashion_mnist_path, random_state=args.random_state,
    )
    if not args.quiet:
        print(f"data: {description}", flush=True)
    model = DeepStructureLearner(**_learner_params(args, image_shape))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        # A solver stopping at max_iter is routine here; one line says so instead of a
        # warning (with a source line) per layer.
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X)
    elapsed = time.perf_counter() - start
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    n_convergence = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if n_convergence and not args.quiet:
        print(f"note: {n_convergence} solver(s) stopped at their iteration limit "
              "(raise --max-iter for tighter fits)", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    summary = f"data: {description}\n{model.summary()}\nfit time: {elapsed:.1f}s\n"
    # the data line was printed before the fit (unless quiet)
    print(summary if args.quiet else summary.split("\n", 1)[1], end="", flush=True)
    written = []
    (args.out / "summary.txt").write_text(summary)
    written.append(args.out / "summary.txt")
    joblib.dump(model, args.out / "model.joblib")
    written.append(args.out / "model.joblib")
    if not args.no_plots:
        try:
            _write_pictures(model, args.out, written)
        except ImportError as exc:  # matplotlib is optional
            print(f"pictures skipped: {exc}", file=sys.stderr)
    if not args.quiet:
        print("wrote: " + ", ".join(os.fspath(p) for p in written))
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
        0 on success, 2 on bad input (message on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "learn":
        try:
            learn(args)
        except (FileNotFoundError, ValueError, TypeError) as exc:
            print(f"sklearn-structlearn: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
