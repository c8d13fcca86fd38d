"""Pictures of a learned structure: receptive fields, entropy vs depth, connectivity,
the recovered input topology.

matplotlib is an optional dependency (``pip install sklearn-structlearn[plot]``),
imported only when a function is called.  The functions build figures with the
object API (:class:`matplotlib.figure.Figure`), never through ``pyplot``, so
they touch no global state, need no display and work under any backend; save
them with ``fig.savefig("name.png")``.
"""

from numbers import Integral

import numpy as np

from ._lattice import grid_positions
from .structure import _check_2d, _check_image_shape, unpermute_features

__all__ = ["plot_connectivity", "plot_entropy_curve", "plot_receptive_fields",
           "plot_recovered_topology"]


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "Plotting needs matplotlib, which is not installed; install it with "
            "`pip install sklearn-structlearn[plot]`."
        ) from exc
    return Figure


def _check_positive_int(value, name):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def plot_receptive_fields(
    weights,
    image_shape,
    *,
    n_units=64,
    sort_by="norm",
    permutation=None,
    cmap="RdBu_r",
    ncols=None,
    title=None,
):
    """Show the receptive fields of a layer's units as a grid of images.

    Parameters
    ----------
    weights : array-like of shape (n_units_total, n_features)
        One row per unit on the flattened images (C order, channels last): a
        first layer's ``components_`` or fields traced to the pixels with
        :func:`~sklearn_structlearn.structure.trace_receptive_fields`.
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``.
    n_units : int, default=64
        Maximum number of units shown.
    sort_by : {"norm", "fan_in"} or None, default="norm"
        Show the units with the largest L2 norm (or the most connections) first;
        None keeps the units' order.
    permutation : array-like of shape (n_features,), default=None
        Fixed pixel shuffle the weights were learned under (the model saw
        ``X[:, permutation]``); undone so the fields are shown on the image grid.
    cmap : str or Colormap, default="RdBu_r"
        Colormap of single-channel fields.  Each unit gets its own symmetric
        range ``[-max|w|, max|w|]`` so zero is the centre colour.  Colour
        images (3 channels) are shown as RGB with zero as mid-grey, scaled the
        same way; other channel counts show the mean over channels.
    ncols : int, default=None
        Columns of the grid; by default about the square root of the number of
        units shown.
    title : str, default=None
        Figure title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes (with one image) per unit shown.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.plotting import plot_receptive_fields
    >>> W = np.random.RandomState(0).randn(10, 64)
    >>> fig = plot_receptive_fields(W, (8, 8), n_units=9, title="layer 1")
    >>> len(fig.axes)
    9
    >>> fig.savefig("receptive_fields.png")  # doctest: +SKIP
    """
    Figure = _figure_class()
    weights = np.asarray(weights)
    if weights.ndim == 1:
        weights = weights[np.newaxis]
    weights = _check_2d(weights, "weights").astype(np.float64)
    h, w, c = _check_image_shape(image_shape, weights.shape[1])
    n_units = _check_positive_int(n_units, "n_units")
    if permutation is not None:
        weights = unpermute_features(weights, permutation)
    if weights.shape[0] == 0:
        raise ValueError("weights has no units to show.")

    if sort_by is None:
        order = np.arange(weights.shape[0])
    elif sort_by == "norm":
        order = np.argsort(-np.linalg.norm(weights, axis=1), kind="stable")
    elif sort_by == "fan_in":
        order = np.argsort(-np.count_nonzero(weights, axis=1), kind="stable")
    else:
        raise ValueError(f"sort_by must be 'norm', 'fan_in' or None; got {sort_by!r}.")
    order = order[:n_units]

    n_shown = order.shape[0]
    ncols = int(np.ceil(np.sqrt(n_shown))) if ncols is None else _check_positive_int(ncols, "ncols")
    ncols = min(ncols, n_shown)
    nrows = int(np.ceil(n_shown / ncols))
    panel = 1.0  # inches per unit, whatever the image size: small images stay visible
    # a title is not cut off by a narrow grid: ~0.11 inch per character of the default font
    width = max(panel * ncols, 0.11 * len(title) if title else 0.0)
    fig = Figure(figsize=(width, panel * nrows + (0.4 if title else 0.0)))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_shown:]:
        ax.remove()

    for ax, unit in zip(axes, order):
        image = weights[unit].reshape(h, w, c)
        scale = np.max(np.abs(image))
        scale = scale if scale > 0 else 1.0
        if c == 3:
            ax.imshow(np.clip(0.5 + 0.5 * image / scale, 0.0, 1.0), interpolation="nearest")
        else:
            ax.imshow(image.mean(axis=2), cmap=cmap, vmin=-scale, vmax=scale,
                      interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    if title is not None:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02,
                        top=0.98 if title is None else 1 - 0.5 / fig.get_figheight(),
                        wspace=0.08, hspace=0.08)
    return fig


def plot_entropy_curve(
    entropies,
    *,
    n_layers=None,
    accuracies=None,
    title=None,
    unit="bits",
    accuracy_label="accuracy",
):
    """Plot the output entropy against depth.

    Parameters
    ----------
    entropies : array-like of shape (n_depths,)
        Entropy of the input (depth 0) and of the output of each layer, e.g.
        ``DeepStructureLearner.entropies_``.
    n_layers : int, default=None
        The depth chosen by the depth rule: marked with a vertical line. The
        depths up to it (the input and the kept layers, the last one included)
        are drawn filled; the depths beyond it (layers tried but not kept) are
        drawn hollow, joined by a dashed line.
    accuracies : array-like, default=None
        Optional downstream accuracy at depth ``0, 1, ...`` (NaN where
        unknown), drawn on a second y axis.
    title : str, default=None
        Axes title.
    unit : str, default="bits"
        Unit of the entropies, for the y label.
    accuracy_label : str, default="accuracy"
        Label of the second y axis.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes, two when ``accuracies`` is given.

    Examples
    --------
    >>> from sklearn_structlearn.plotting import plot_entropy_curve
    >>> fig = plot_entropy_curve([3.1, 5.0, 5.9, 6.0], n_layers=2,
    ...                          accuracies=[0.80, 0.90, 0.93, 0.93])
    >>> len(fig.axes)
    2
    >>> fig.savefig("entropy_vs_depth.png")  # doctest: +SKIP
    """
    Figure = _figure_class()
    entropies = np.asarray(entropies, dtype=np.float64).ravel()
    if entropies.size == 0:
        raise ValueError("entropies is empty.")
    depths = np.arange(entropies.size)
    if n_layers is not None:
        if not isinstance(n_layers, Integral) or isinstance(n_layers, bool) or not (
            0 <= n_layers < entropies.size
        ):
            raise ValueError(
                f"n_layers must be an integer in [0, {entropies.size - 1}]; got {n_layers!r}."
            )
        n_layers = int(n_layers)

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    color = "C0"
    kept = depths if n_layers is None else depths[: n_layers + 1]
    handles = ax.plot(kept, entropies[kept], "o-", color=color, label="output entropy")
    if n_layers is not None and n_layers + 1 < entropies.size:
        # Continue the curve into the rejected layers: a dashed line from the last kept
        # depth, markers (hollow: "tried, not kept") only on the rejected ones, so the last
        # kept layer keeps its filled marker.
        rest = depths[n_layers:]
        ax.plot(rest, entropies[rest], "--", color=color)
        rejected = depths[n_layers + 1:]
        handles += ax.plot(rejected, entropies[rejected], "o", color=color,
                           markerfacecolor="white", label="not kept")
    if n_layers is not None:
        handles.append(ax.axvline(n_layers, color="0.4", linestyle=":",
                                  label=f"chosen depth = {n_layers}"))
    ax.set_xlabel("depth (0 = input)")
    ax.set_ylabel(f"output entropy ({unit})", color=color)
    ax.set_xticks(depths)
    ax.grid(alpha=0.3)

    if accuracies is not None:
        accuracies = np.asarray(accuracies, dtype=np.float64).ravel()
        ax2 = ax.twinx()
        handles += ax2.plot(np.arange(accuracies.size), accuracies, "s-", color="C1",
                            label=accuracy_label)
        ax2.set_ylabel(accuracy_label, color="C1")
    if len(handles) > 1:
        # On the top-most axes, so the accuracy curve cannot hide the legend.
        fig.axes[-1].legend(handles=handles, loc="best")
    if title is not None:
        ax.set_title(title)
    return fig


def plot_connectivity(mask, *, max_units=256, group_size=None, title=None,
                      input_names=None):
    """Show a connectivity mask, units by inputs.

    Parameters
    ----------
    mask : array-like of shape (n_units, n_inputs)
        Connectivity mask or dictionary; non-zero entries are connections
        (drawn black).
    max_units : int, default=256
        Only the first ``max_units`` units (rows) are drawn.
    group_size : int, default=None
        If given, thin lines separate the pooling groups of units.
    title : str, default=None
        Axes title; by default the shape and density of the mask.
    input_names : sequence of str, default=None
        Names of the inputs (e.g. the columns of a table, ``feature_names_in_``),
        written under their columns.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes with one image.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.plotting import plot_connectivity
    >>> mask = np.random.RandomState(0).rand(32, 64) < 0.1
    >>> fig = plot_connectivity(mask, group_size=4)
    >>> len(fig.axes), len(fig.axes[0].images)
    (1, 1)
    >>> fig.savefig("connectivity.png")  # doctest: +SKIP
    """
    Figure = _figure_class()
    mask = _check_2d(mask, "mask") != 0
    max_units = _check_positive_int(max_units, "max_units")
    n_units, n_inputs = mask.shape
    if n_units == 0 or n_inputs == 0:
        raise ValueError(f"mask must have at least one unit and one input; got {mask.shape}.")
    shown = mask[:max_units]
    if input_names is not None:
        input_names = [str(name) for name in input_names]
        if len(input_names) != n_inputs:
            raise ValueError(
                f"input_names has {len(input_names)} names for {n_inputs} inputs."
            )

    fig = Figure(figsize=(max(6.0, 0.25 * n_inputs) if input_names else 6.0, 4.5),
                 layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(shown, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    if group_size is not None:
        group_size = _check_positive_int(group_size, "group_size")
        # Beyond ~100 separators the lines would hide the mask itself.
        if 1 < group_size and shown.shape[0] // group_size <= 100:
            for boundary in range(group_size, shown.shape[0], group_size):
                ax.axhline(boundary - 0.5, color="C3", linewidth=0.5, alpha=0.6)
    ax.set_xlabel("input")
    if input_names is not None:
        ax.set_xticks(np.arange(n_inputs), input_names, rotation=90, fontsize="small")
    ax.set_ylabel("unit")
    if title is None:
        title = f"connectivity: {n_units} units x {n_inputs} inputs, density {mask.mean():.1%}"
        if shown.shape[0] < n_units:
            title += f" (first {shown.shape[0]} units)"
    ax.set_title(title)
    return fig


def plot_recovered_topology(topology, x, image_shape, *, permutation=None, title=None):
    """Show a recovered input topology against the true pixel grid.

    Four panels: one input as the model received it (its features in their given, possibly
    shuffled, order, drawn on ``image_shape``); the same input put on the recovered
    lattice; and, at every site of the recovered lattice, the true row and the true column
    of the pixel placed there. The grid was recovered when the two maps are smooth ramps
    (up to a symmetry of the grid: a flip, a half turn, a transpose); empty sites are blank.

    Parameters
    ----------
    topology : fitted InputTopologyLearner or SharedWeightLearner
        The recovered topology, or a learner holding it as ``topology_``.
    x : array-like of shape (n_features,)
        One input, in the order the topology was learned on.
    image_shape : tuple of (int, int)
        The true grid (``(height, width)``) -- used only to draw and score.
    permutation : array-like of shape (n_features,), default=None
        The fixed shuffle the data went through (the model saw ``X[:, permutation]``);
        ``None``: the features are the pixels in raster order.
    title : str, default=None
        Figure title; by default the share of the pixels at their exact site
        (:meth:`~sklearn_structlearn.topology.InputTopologyLearner.recovery`).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Four axes, one image each.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> from sklearn_structlearn.plotting import plot_recovered_topology
    >>> from sklearn_structlearn.topology import InputTopologyLearner
    >>> rng = np.random.default_rng(0)
    >>> images = gaussian_filter(rng.standard_normal((3000, 8, 6)), (0, 1, 1), mode="nearest")
    >>> perm = rng.permutation(48)
    >>> X = images.reshape(3000, 48)[:, perm]
    >>> topo = InputTopologyLearner().fit(X)
    >>> fig = plot_recovered_topology(topo, X[0], (8, 6), permutation=perm)
    >>> len(fig.axes), fig.texts[0].get_text()
    (4, 'recovered topology: 100% of the 48 pixels at their exact site')
    >>> fig.savefig("topology.png")  # doctest: +SKIP
    """
    Figure = _figure_class()
    topology = getattr(topology, "topology_", topology)
    if not hasattr(topology, "site_inputs_"):
        raise ValueError(
            "topology must be a fitted InputTopologyLearner, or a fitted learner holding "
            f"one as topology_; got {type(topology).__name__}."
        )
    n_features = topology.n_features_in_
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.shape != (n_features,):
        raise ValueError(f"x must hold one input of {n_features} features; got shape "
                         f"{np.shape(x)}.")
    h, w, c = _check_image_shape(image_shape, n_features)
    if c != 1:
        raise ValueError(f"image_shape must be (height, width); got {image_shape!r}.")
    truth = grid_positions((h, w), permutation)  # (row, column) of every feature
    gh, gw = topology.grid_shape_
    sites = topology.site_inputs_
    filled = sites >= 0
    true_at_site = np.full((gh * gw, 2), np.nan)
    true_at_site[filled] = truth[sites[filled]]

    panels = [
        (x.reshape(h, w), "the input as received", "gray"),
        (topology.transform(x[None])[0].reshape(gh, gw), "the same input\non the recovered lattice",
         "gray"),
        (true_at_site[:, 0].reshape(gh, gw), "true row of the pixel\nat each recovered site",
         "viridis"),
        (true_at_site[:, 1].reshape(gh, gw), "true column of the pixel\nat each recovered site",
         "viridis"),
    ]
    fig = Figure(figsize=(11.0, 3.4), layout="constrained")
    for ax, (image, label, cmap) in zip(fig.subplots(1, 4), panels):
        ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(label, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    if title is None:
        exact = topology.recovery((h, w), permutation)["exact"]
        title = f"recovered topology: {exact:.0%} of the {n_features} pixels at their exact site"
    fig.suptitle(title)
    return fig
