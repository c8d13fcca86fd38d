"""Tests of the plotting helpers (matplotlib object API, Agg rendering)."""

import doctest
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # never open a window, whatever the environment says

from matplotlib.figure import Figure  # noqa: E402

from sklearn_structlearn import plotting  # noqa: E402
from sklearn_structlearn.plotting import (  # noqa: E402
    plot_connectivity,
    plot_entropy_curve,
    plot_receptive_fields,
    plot_recovered_topology,
)


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ receptive fields
def test_plot_receptive_fields_grid_and_png(tmp_path):
    W = np.random.RandomState(0).randn(20, 64)
    fig = plot_receptive_fields(W, (8, 8), n_units=16, title="layer 1")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 16
    assert all(len(ax.images) == 1 for ax in fig.axes)
    assert fig.axes[0].images[0].get_array().shape == (8, 8)
    assert fig._suptitle.get_text() == "layer 1"
    path = tmp_path / "fields.png"
    fig.savefig(path)
    assert _is_png(path)


def test_plot_receptive_fields_fewer_units_than_requested_removes_empty_axes():
    W = np.random.RandomState(0).randn(5, 16)
    fig = plot_receptive_fields(W, (4, 4))  # n_units=64 > 5: a 3x2 grid, one removed
    assert len(fig.axes) == 5


def test_plot_receptive_fields_sorted_by_norm_with_symmetric_colours():
    W = np.random.RandomState(0).randn(6, 16)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    W *= np.array([3.0, 1.0, 6.0, 2.0, 5.0, 4.0])[:, None]  # known norms
    fig = plot_receptive_fields(W, (4, 4), n_units=3, sort_by="norm")
    assert len(fig.axes) == 3
    for ax, unit in zip(fig.axes, [2, 4, 5]):
        image = ax.images[0]
        assert_allclose(image.get_array(), W[unit].reshape(4, 4))
        vmin, vmax = image.get_clim()
        assert vmin == -vmax == -np.abs(W[unit]).max()
        assert image.get_cmap().name == "RdBu_r"
    fig = plot_receptive_fields(W, (4, 4), n_units=3, sort_by=None, cmap="gray")
    assert_allclose(fig.axes[0].images[0].get_array(), W[0].reshape(4, 4))
    assert fig.axes[0].images[0].get_cmap().name == "gray"
    with pytest.raises(ValueError, match="sort_by"):
        plot_receptive_fields(W, (4, 4), sort_by="entropy")


def test_plot_receptive_fields_permutation_unshuffles():
    W = np.random.RandomState(1).randn(3, 36)
    perm = np.random.RandomState(2).permutation(36)
    fig = plot_receptive_fields(W[:, perm], (6, 6), sort_by=None, permutation=perm)
    for unit, ax in enumerate(fig.axes):
        assert_allclose(ax.images[0].get_array(), W[unit].reshape(6, 6))


def test_plot_receptive_fields_rgb_and_dead_units():
    W = np.random.RandomState(0).randn(4, 5 * 5 * 3)
    W[2] = 0.0
    fig = plot_receptive_fields(W, (5, 5, 3), sort_by=None)
    assert len(fig.axes) == 4
    rgb = np.asarray(fig.axes[0].images[0].get_array())
    assert rgb.shape == (5, 5, 3)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert_allclose(np.asarray(fig.axes[2].images[0].get_array()), 0.5)  # zero = grey
    # a single unit given as a 1D array
    assert len(plot_receptive_fields(W[0], (5, 5, 3)).axes) == 1


def test_plot_receptive_fields_validation():
    with pytest.raises(ValueError, match="image_shape"):
        plot_receptive_fields(np.ones((2, 10)), (3, 3))
    with pytest.raises(ValueError, match="n_units"):
        plot_receptive_fields(np.ones((2, 9)), (3, 3), n_units=0)


# ---------------------------------------------------------------------- entropy curve
def test_plot_entropy_curve_basic_and_png(tmp_path):
    entropies = [3.0, 5.0, 5.8, 5.9]
    fig = plot_entropy_curve(entropies, title="entropy vs depth")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2, 3])
    assert_allclose(ax.lines[0].get_ydata(), entropies)
    assert "bits" in ax.get_ylabel()
    assert "depth" in ax.get_xlabel()
    assert ax.get_title() == "entropy vs depth"
    path = tmp_path / "entropy.png"
    fig.savefig(path)
    assert _is_png(path)


def test_plot_entropy_curve_marks_depth_and_accuracies(tmp_path):
    fig = plot_entropy_curve([3.0, 5.0, 5.8, 5.85], n_layers=2,
                             accuracies=[0.7, 0.85, 0.9, np.nan], unit="nats")
    assert len(fig.axes) == 2
    ax, ax_acc = fig.axes
    assert "nats" in ax.get_ylabel()
    labels = [line.get_label() for line in ax.lines]
    assert "chosen depth = 2" in labels and "not kept" in labels
    chosen = ax.lines[labels.index("chosen depth = 2")]
    assert_array_equal(chosen.get_xdata(), [2, 2])
    assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2])  # kept layers only
    assert_allclose(ax_acc.lines[0].get_ydata()[:3], [0.7, 0.85, 0.9])
    assert any(a.get_legend() is not None for a in fig.axes)
    fig.savefig(tmp_path / "entropy_acc.png")
    with pytest.raises(ValueError, match="n_layers"):
        plot_entropy_curve([1.0, 2.0], n_layers=2)
    with pytest.raises(ValueError, match="empty"):
        plot_entropy_curve([])


def _markers(ax):
    """{depth: "filled" | "hollow"} of every marker drawn on the entropy axes."""
    from matplotlib.colors import to_rgba

    found = {}
    for line in ax.lines:
        if line.get_marker() in ("None", None, "") or line.get_linestyle() == ":":
            continue
        face = to_rgba(line.get_markerfacecolor())
        style = "hollow" if face == to_rgba("white") else "filled"
        for x in np.asarray(line.get_xdata(), dtype=float):
            found.setdefault(int(x), set()).add(style)
    return found


@pytest.mark.parametrize("n_layers", [1, 2])
def test_plot_entropy_curve_last_kept_layer_is_filled(n_layers):
    # depths 0..n_layers are kept (filled), only the rejected ones are hollow; each
    # depth is drawn in one style only (a hollow marker on top would hide the filled one)
    fig = plot_entropy_curve([3.0, 5.0, 5.8, 5.85][: n_layers + 2], n_layers=n_layers)
    markers = _markers(fig.axes[0])
    assert markers == {**{d: {"filled"} for d in range(n_layers + 1)},
                       n_layers + 1: {"hollow"}}
    # the curve still continues into the rejected layer (dashed)
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    assert_array_equal(dashed[0].get_xdata(), [n_layers, n_layers + 1])


def test_plot_entropy_curve_all_kept_is_all_filled():
    fig = plot_entropy_curve([3.0, 5.0, 5.8], n_layers=2)
    assert _markers(fig.axes[0]) == {0: {"filled"}, 1: {"filled"}, 2: {"filled"}}


# ----------------------------------------------------------------------- connectivity
def test_plot_connectivity_names_the_inputs():
    mask = np.random.RandomState(0).rand(8, 3) < 0.5
    fig = plot_connectivity(mask, input_names=["alcohol", "ash", "hue"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["alcohol", "ash", "hue"]
    with pytest.raises(ValueError, match="input_names has 2 names for 3 inputs"):
        plot_connectivity(mask, input_names=["a", "b"])


def test_plot_connectivity_image_and_truncation(tmp_path):
    mask = np.random.RandomState(0).rand(300, 40) < 0.2
    fig = plot_connectivity(mask, max_units=256)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.images) == 1
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape == (256, 40)
    assert_array_equal(shown, mask[:256])
    assert "first 256 units" in ax.get_title()
    path = tmp_path / "connectivity.png"
    fig.savefig(path)
    assert _is_png(path)


def test_plot_connectivity_weights_groups_and_title():
    W = np.zeros((8, 5))
    W[::2, 1] = -0.3
    fig = plot_connectivity(W, group_size=2, title="layer 2")
    ax = fig.axes[0]
    assert_array_equal(np.asarray(ax.images[0].get_array()), W != 0)
    assert ax.get_title() == "layer 2"
    assert len(ax.lines) == 3  # separators between the 4 groups
    assert len(plot_connectivity(W).axes[0].lines) == 0


# ------------------------------------------------------------------------ misc
# ------------------------------------------------------------------ recovered topology
@pytest.fixture(scope="module")
def shuffled_topology():
    from scipy.ndimage import gaussian_filter

    from sklearn_structlearn.topology import InputTopologyLearner

    rng = np.random.default_rng(0)
    images = gaussian_filter(rng.standard_normal((2000, 7, 5)), (0, 1, 1), mode="nearest")
    perm = rng.permutation(35)
    X = images.reshape(2000, 35)[:, perm]
    return InputTopologyLearner().fit(X), X, perm


def test_plot_recovered_topology_draws_the_true_grid_back(shuffled_topology, tmp_path):
    topo, X, perm = shuffled_topology
    fig = plot_recovered_topology(topo, X[0], (7, 5), permutation=perm)
    received, on_lattice, rows, cols = (ax.images[0].get_array() for ax in fig.axes)
    assert_array_equal(received, X[0].reshape(7, 5))           # as the model saw it
    assert_allclose(on_lattice.ravel(), topo.transform(X[:1])[0])
    # every pixel back at its site (up to a symmetry of the grid): the true rows and
    # columns at the recovered sites are ramps, each line of sites one row or column
    assert sorted(np.unique(rows).tolist() + np.unique(cols).tolist()) == sorted(
        list(range(7)) + list(range(5)))
    assert all(len(set(line)) == 1 for line in rows.T) or all(
        len(set(line)) == 1 for line in rows)
    assert "100% of the 35 pixels" in fig._suptitle.get_text()
    path = tmp_path / "topology.png"
    fig.savefig(path)
    assert _is_png(path)


def test_plot_recovered_topology_validation(shuffled_topology):
    from sklearn_structlearn.topology import InputTopologyLearner

    topo, X, perm = shuffled_topology
    with pytest.raises(ValueError, match="fitted InputTopologyLearner"):
        plot_recovered_topology(InputTopologyLearner(), X[0], (7, 5))
    with pytest.raises(ValueError, match="one input of 35 features"):
        plot_recovered_topology(topo, X[:2], (7, 5))
    with pytest.raises(ValueError, match="image_shape"):
        plot_recovered_topology(topo, X[0], (6, 5))
    with pytest.raises(ValueError, match="permutation"):
        plot_recovered_topology(topo, X[0], (7, 5), permutation=np.zeros(35, int))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_shared_weight_learner_plots_its_first_layer_kernels():
    from sklearn.datasets import load_digits
    from sklearn.exceptions import NotFittedError

    from sklearn_structlearn.sharing import SharedWeightLearner

    learner = SharedWeightLearner(n_kernels=[5, 4], kernel_size=3, n_patches=1000, max_iter=2,
                                  random_state=0)
    with pytest.raises(NotFittedError):
        learner.plot_kernels()
    learner.fit(load_digits().data[:300])
    fig = learner.plot_kernels(title="k")
    assert len(fig.axes) == 5 and fig._suptitle.get_text() == "k"
    # in the families' order, each panel one family's kernel
    for ax, kernel in zip(fig.axes, learner.layers_[0].kernels[:, 0]):
        assert_array_equal(ax.images[0].get_array(), kernel)


def test_missing_matplotlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    for call in (
        lambda: plot_receptive_fields(np.ones((1, 4)), (2, 2)),
        lambda: plot_entropy_curve([1.0, 2.0]),
        lambda: plot_connectivity(np.ones((2, 2))),
    ):
        with pytest.raises(ImportError, match=r"sklearn-structlearn\[plot\]"):
            call()


def test_plotting_does_not_touch_pyplot_state():
    before = set(sys.modules)
    plot_entropy_curve([1.0, 2.0])
    if "matplotlib.pyplot" not in before:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        import matplotlib.pyplot as plt

        n_open = len(plt.get_fignums())
        plot_connectivity(np.ones((2, 2)))
        assert len(plt.get_fignums()) == n_open


def test_docstring_examples():
    failures, _ = doctest.testmod(plotting, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
