"""Shared-weight layers learned on a recovered input topology: the CNN's priors, learned.

Once the inputs' layout is known (:mod:`sklearn_structlearn.topology`), "the same feature
at another place" has a meaning: a unit reading the neighbourhood of one site of the
lattice has a translate at every other site. This module learns such families:

- :func:`lattice_neighbourhoods`: for every output site and every kernel offset, the index
  of the input at the neighbouring site -- the index table of a gather-based convolution
  (on an exactly recovered grid it *is* a convolution, for any order of the inputs);
- :func:`learn_shared_layer`: group sparse coding
  (:class:`~sklearn_structlearn.GroupSparseCodingLayer`) of local patches gathered through
  the recovered topology. Every atom is a *family* of units -- one per site, all with the
  same weights (the kernel) -- and its connectivity penalty decides which offsets and
  channels the kernel reads (its local receptive field inside the window);
- pooling: each family is pooled over ``pool_size`` x ``pool_size`` neighbouring sites of
  the lattice (units that respond to the same content at neighbouring places), which
  makes the outputs invariant to small shifts -- measured against random groups of the
  same units by :func:`pooling_invariance_against_random`; with ``group_pooling``, the
  families of a sparse-coding group (atoms that switch on together: a subspace of
  features, as the complex cells of independent subspace analysis) are pooled together
  too, one output channel per group -- an invariance learned from the data, which a
  CNN's max pooling over sites does not have;
- :class:`SharedWeightLearner`: the whole stack, from raw (possibly shuffled) inputs:
  topology, then shared-weight layers each learned on the pooled maps of the one below,
  all without labels; ``to_torch`` exports it for supervised training
  (:class:`~sklearn_structlearn.export._shared.SharedWeightNet`).

Maps are arrays of shape ``(n_samples, n_channels, n_sites)`` with the sites of a lattice
in raster order (``r * width + c``).
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._groups import pool_codes
from ._lattice import check_grid, lattice_neighbourhoods, lattice_pooling
from ._param_validation import (
    N_JOBS,
    StrOptions,
    fit_context,
    int_in,
    real_in,
    validate_named,
    validate_params,
)
from ._torch import import_torch
from .layer import PENALTY, GroupSparseCodingLayer
from .structure import pooling_invariance
from .topology import InputTopologyLearner

__all__ = [
    "SharedLayer",
    "SharedWeightLearner",
    "extract_lattice_patches",
    "family_pooling_groups",
    "find_translated_families",
    "lattice_neighbourhoods",
    "lattice_pooling",
    "learn_shared_layer",
    "pooling_invariance_against_random",
    "shared_layer_forward",
]

POOLING = [StrOptions({"max", "l2"})]
# Scale floor of a patch dimension, relative to the median scale, when patches are
# standardised: a window offset that is (almost) always empty is not blown up.
_SCALE_FLOOR = 0.01


# --------------------------------------------------------------------------- #
# index tables
# --------------------------------------------------------------------------- #
def _gather(maps, index):
    """``maps[:, :, index]`` with ``-1`` entries read as zeros: (n, C, n_out, K)."""
    padded = np.concatenate([maps, np.zeros(maps.shape[:2] + (1,), dtype=maps.dtype)], axis=2)
    return padded[:, :, np.where(index >= 0, index, maps.shape[2])]


@validate_params(
    {
        "maps": "no_validation",
        "grid_shape": "no_validation",
        "kernel_size": [int_in(1)],
        "n_patches": [int_in(1)],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def extract_lattice_patches(maps, grid_shape, kernel_size, n_patches, *, random_state=None):
    """Random ``kernel_size`` x ``kernel_size`` patches of maps on a lattice.

    Parameters
    ----------
    maps : ndarray of shape (n_samples, n_channels, n_sites)
    grid_shape : tuple of (int, int)
    kernel_size : int
    n_patches : int
        Patches drawn (sample and site uniformly at random, with replacement).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    patches : ndarray of shape (n_patches, n_channels * kernel_size ** 2)
        Channel-major: feature ``c * k * k + o`` is channel ``c`` at offset ``o``; zeros
        outside the lattice.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.sharing import extract_lattice_patches
    >>> maps = np.arange(16.0).reshape(1, 1, 16)
    >>> extract_lattice_patches(maps, (4, 4), 3, 5, random_state=0).shape
    (5, 9)
    """
    maps = np.asarray(maps)
    n, c, n_sites = maps.shape
    h, w = check_grid(grid_shape)
    if n_sites != h * w:
        raise ValueError(f"maps have {n_sites} sites, grid_shape {h}x{w} has {h * w}.")
    rng = check_random_state(random_state)
    index = lattice_neighbourhoods(grid_shape, kernel_size)
    samples = rng.randint(n, size=n_patches)
    sites = rng.randint(n_sites, size=n_patches)
    padded = np.concatenate([maps, np.zeros((n, c, 1), dtype=maps.dtype)], axis=2)
    cols = np.where(index[sites] >= 0, index[sites], n_sites)  # (n_patches, K)
    patches = padded[samples[:, None, None], np.arange(c)[None, :, None], cols[:, None, :]]
    return patches.reshape(n_patches, -1)


# --------------------------------------------------------------------------- #
# one shared-weight layer
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class SharedLayer:
    """A learned shared-weight layer: families of units, one kernel per family.

    ``forward``: ``pool(relu(conv(maps, kernels) + bias))``; the convolution runs over the
    sites of ``grid_shape`` (stride 1, zero "same" padding), pooling over
    ``pool_size`` x ``pool_size`` blocks of sites -- and, with ``group_pooling``, over the
    ``group_size`` consecutive families of each sparse-coding group (``n_outputs``
    channels out).

    Attributes
    ----------
    kernels : ndarray of shape (n_kernels, n_channels, kernel_size, kernel_size)
        Weights of every family, on the layer's raw inputs (the patch standardisation is
        folded in), scaled so that the pre-activation has the standard deviation
        torch's default initialisation gives (``sqrt(mean(patch ** 2) / 3)``).
    bias : ndarray of shape (n_kernels,)
        Folded patch mean and code threshold (``-alpha``), same scale.
    mask : ndarray of bool, same shape as ``kernels``
        Learned connectivity of every kernel inside its window.
    grid_shape, pooled_shape : tuple of (int, int)
        Lattice of the inputs and of the pooled outputs.
    pool_size : int
    pooling : {"max", "l2"}
    alpha : float
        Code penalty of the sparse coding (the threshold in ``bias``).
    group_size : int
        Group size of the sparse coding (families in the same group switch on together).
    n_iter : int
        Outer iterations the sparse coding ran.
    group_pooling : bool
        Whether the families of a group are pooled into one output channel.
    """

    kernels: np.ndarray = field(repr=False)
    bias: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    grid_shape: tuple
    pooled_shape: tuple
    pool_size: int
    pooling: str
    alpha: float
    group_size: int = 1
    n_iter: int = 0
    group_pooling: bool = False

    @property
    def n_kernels(self):
        return self.kernels.shape[0]

    @property
    def n_channels(self):
        return self.kernels.shape[1]

    @property
    def kernel_size(self):
        return self.kernels.shape[2]

    @property
    def n_sites(self):
        return self.grid_shape[0] * self.grid_shape[1]

    @property
    def pooled_families(self):
        """Families pooled into one output channel: the group size, or 1."""
        return self.group_size if self.group_pooling else 1

    @property
    def n_outputs(self):
        """Channels of the pooled maps."""
        return self.n_kernels // self.pooled_families

    def family_sizes(self):
        """Units per family (one per site of the lattice), one entry per kernel.

        Returns
        -------
        sizes : ndarray of int of shape (n_kernels,)
        """
        return np.full(self.n_kernels, self.n_sites, dtype=np.int64)

    def fan_in(self):
        """Learned connections of every kernel (its mask's support), one entry per kernel.

        Returns
        -------
        fan_in : ndarray of int of shape (n_kernels,)
        """
        return self.mask.reshape(self.n_kernels, -1).sum(axis=1)

    def summary(self):
        """One line: families, kernel support, pooling.

        Returns
        -------
        summary : str
        """
        k = self.kernel_size
        fan_in = self.fan_in()
        families = (f" and groups of {self.pooled_families} families"
                    if self.pooled_families > 1 else "")
        return (
            f"{self.n_channels} channels on {self.grid_shape[0]}x{self.grid_shape[1]} -> "
            f"{self.n_kernels} families of {self.n_sites} units ({k}x{k} kernels, fan-in "
            f"mean {fan_in.mean():.1f} of {self.n_channels * k * k}) -> {self.pooling} pool "
            f"{self.pool_size}x{self.pool_size}{families} -> {self.n_outputs} channels on "
            f"{self.pooled_shape[0]}x{self.pooled_shape[1]}"
        )


def _check_maps(maps, grid_shape):
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (n_samples, n_channels, n_sites), got {maps.shape}.")
    h, w = check_grid(grid_shape)
    if maps.shape[2] != h * w:
        raise ValueError(f"maps have {maps.shape[2]} sites, grid_shape {h}x{w} has {h * w}.")
    return maps


def layer_codes(maps, layer, *, batch_size=256):
    """Unpooled responses ``relu(conv(maps) + bias)`` of a layer, shape (n, n_kernels, n_sites)."""
    maps = _check_maps(maps, layer.grid_shape)
    index = lattice_neighbourhoods(layer.grid_shape, layer.kernel_size)
    weights = layer.kernels.reshape(layer.n_kernels, layer.n_channels, -1)
    out = np.empty((maps.shape[0], layer.n_kernels, layer.n_sites), dtype=maps.dtype)
    for start in range(0, maps.shape[0], batch_size):
        block = _gather(maps[start:start + batch_size], index)  # (b, C, sites, K)
        z = np.einsum("bcsk,ock->bos", block, weights, optimize=True)
        out[start:start + batch_size] = np.maximum(z + layer.bias[None, :, None], 0.0)
    return out


def _pooled_units(n_channels, grid_shape, pool_size, n_families):
    """Units (``channel * n_sites + site``) of every pooled output, outputs channel-major:
    ``n_families`` consecutive channels at the sites of one :func:`lattice_pooling` block.
    Shape (n_channels // n_families * n_blocks, n_families * block sites)."""
    blocks, _ = lattice_pooling(grid_shape, pool_size)
    n_sites = grid_shape[0] * grid_shape[1]
    g = n_families
    channels = np.arange(n_channels).reshape(n_channels // g, 1, g, 1)
    units = channels * n_sites + blocks[None, :, None, :]  # (outputs, blocks, g, sites)
    return units.reshape(-1, g * blocks.shape[1])


def pool_maps(codes, grid_shape, pool_size, pooling, n_families=1):
    """Pool ``codes`` (n, C, n_sites) over the blocks of :func:`lattice_pooling` and over
    ``n_families`` consecutive channels: (n, C // n_families, n_blocks)."""
    n, c = codes.shape[:2]
    units = _pooled_units(c, grid_shape, pool_size, n_families)
    pooled = pool_codes(codes.reshape(n, -1)[:, units.ravel()], units.shape[1], pooling)
    return pooled.reshape(n, c // n_families, -1)


def shared_layer_forward(maps, layer, *, batch_size=256):
    """Pooled outputs of a :class:`SharedLayer` on maps, shape (n, n_outputs, n_pooled_sites).

    Parameters
    ----------
    maps : ndarray of shape (n_samples, n_channels, n_sites)
    layer : SharedLayer
    batch_size : int, default=256
        Samples per block of the gather (memory).

    Returns
    -------
    pooled : ndarray of shape (n_samples, n_outputs, pooled_height * pooled_width)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.sharing import SharedLayer, shared_layer_forward
    >>> kernels = np.zeros((1, 1, 3, 3)); kernels[0, 0, 1, 1] = 1.0   # the identity
    >>> layer = SharedLayer(kernels, np.zeros(1), kernels != 0, (4, 4), (2, 2), 2, "max", 0.0)
    >>> shared_layer_forward(np.arange(16.0).reshape(1, 1, 16), layer).tolist()
    [[[5.0, 7.0, 13.0, 15.0]]]
    """
    maps = _check_maps(maps, layer.grid_shape)
    n_pooled = layer.pooled_shape[0] * layer.pooled_shape[1]
    pooled = np.empty((maps.shape[0], layer.n_outputs, n_pooled), dtype=maps.dtype)
    # pooled block by block: the unpooled responses are pool_size^2 times larger than the
    # outputs (60,000 Fashion-MNIST images x 32 kernels x 784 sites: 12 GB in float64)
    for start in range(0, maps.shape[0], batch_size):
        codes = layer_codes(maps[start:start + batch_size], layer, batch_size=batch_size)
        pooled[start:start + batch_size] = pool_maps(codes, layer.grid_shape, layer.pool_size,
                                                     layer.pooling, layer.pooled_families)
    return pooled


@validate_params(
    {
        "maps": "no_validation",
        "grid_shape": "no_validation",
        "n_kernels": [int_in(1)],
        "kernel_size": [int_in(1)],
        "group_size": [int_in(1)],
        "alpha": PENALTY,
        "connectivity_alpha": PENALTY,
        "pooling": POOLING,
        "pool_size": [int_in(1)],
        "group_pooling": ["boolean"],
        "n_patches": [int_in(1)],
        "max_iter": [int_in(1)],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
    },
    prefer_skip_nested_validation=True,
)
def learn_shared_layer(maps, grid_shape, *, n_kernels, kernel_size=5, group_size=1,
                       alpha="auto", connectivity_alpha="auto", pooling="max", pool_size=2,
                       group_pooling=False, n_patches=20000, max_iter=20, random_state=None,
                       n_jobs=None):
    """Learn one shared-weight layer by group sparse coding of lattice patches.

    Patches of the maps (:func:`extract_lattice_patches`) are standardised per dimension
    (a diagonal map, so that a kernel's support stays its support) and coded by a
    :class:`~sklearn_structlearn.GroupSparseCodingLayer` with non-negative codes; every
    atom becomes a kernel applied at every site (a family of units sharing its weights),
    its connectivity the kernel's mask. The code threshold ``alpha`` becomes a bias, so
    that ``relu(conv + bias)`` is one proximal step of the coding problem from zero, up to
    a positive scale per kernel: each family's pre-activation is scaled to the standard
    deviation torch's default initialisation gives a unit of the same fan-in on the same
    patches (the same units switch on; a network initialised with these kernels trains
    from activations of the size the optimiser's defaults are tuned for).

    Parameters
    ----------
    maps : ndarray of shape (n_samples, n_channels, n_sites)
    grid_shape : tuple of (int, int)
    n_kernels : int
        Families (atoms); a multiple of ``group_size``.
    kernel_size : int, default=5
        Odd window side.
    group_size, alpha, connectivity_alpha, max_iter, random_state, n_jobs
        Passed to :class:`~sklearn_structlearn.GroupSparseCodingLayer`.
    pooling : {"max", "l2"}, default="max"
        Pooling of every family over neighbouring sites.
    pool_size : int, default=2
    group_pooling : bool, default=False
        Pool the ``group_size`` families of each sparse-coding group together as well:
        ``n_kernels // group_size`` output channels.
    n_patches : int, default=20000
        Patches the dictionary is learned on.

    Returns
    -------
    layer : SharedLayer
    """
    maps = _check_maps(maps, grid_shape)
    k = kernel_size
    rng = check_random_state(random_state)
    # No more patches than there are distinct ones (sample x site).
    n_patches = min(n_patches, maps.shape[0] * maps.shape[2])
    patches = extract_lattice_patches(maps, grid_shape, k, n_patches,
                                      random_state=rng).astype(np.float64)
    mean = patches.mean(axis=0)
    scale = patches.std(axis=0)
    scale = np.maximum(scale, _SCALE_FLOOR * max(float(np.median(scale)), 1e-12))
    Z = (patches - mean) / scale
    coder = GroupSparseCodingLayer(
        n_components=n_kernels, group_size=group_size, alpha=alpha,
        connectivity_alpha=connectivity_alpha, positive_code=True, pooling=None,
        max_iter=max_iter, random_state=rng, n_jobs=n_jobs,
    ).fit(Z)
    D = coder.components_  # (n_kernels, C * k * k), on standardised patches
    weights = D / scale
    bias = -(mean / scale) @ D.T - coder.alpha_
    # Every family's pre-activation D.z - alpha scaled (a positive scale: the same units
    # switch on) to the standard deviation torch's default initialisation gives a unit of
    # this fan-in on these patches: weights U(+-1/sqrt(fan_in)) have variance
    # 1 / (3 fan_in), so E[(w.x)^2] = mean(x^2) / 3 -- the size a CNN starts from and its
    # optimiser's defaults are tuned for (unit spread started 1.7x-4.4x larger and trained
    # worse: RESULTS section 10).
    spread = (Z @ D.T).std(axis=0)
    gain = np.sqrt(np.mean(patches ** 2) / 3.0) / np.where(spread > 0, spread, 1.0)
    weights *= gain[:, None]
    bias *= gain
    shape = (n_kernels, maps.shape[1], k, k)
    _, pooled_shape = lattice_pooling(grid_shape, pool_size)
    return SharedLayer(
        kernels=weights.reshape(shape), bias=bias, mask=(D != 0).reshape(shape),
        grid_shape=tuple(int(s) for s in grid_shape), pooled_shape=pooled_shape,
        pool_size=int(pool_size), pooling=pooling, alpha=float(coder.alpha_),
        group_size=int(group_size), n_iter=int(coder.n_iter_),
        group_pooling=bool(group_pooling),
    )


# --------------------------------------------------------------------------- #
# invariance of the pooled outputs
# --------------------------------------------------------------------------- #
@validate_params(
    {
        "codes_fn": [callable],
        "X": ["array-like"],
        "image_shape": "no_validation",
        "groups": ["array-like"],
        "pooling": POOLING,
        "n_random": [int_in(1)],
        "center": ["boolean"],
        "permutation": ["array-like", None],
        "random_state": ["random_state"],
        "shifts": "no_validation",
        "mode": [StrOptions({"constant", "wrap"})],
    },
    prefer_skip_nested_validation=True,
)
def pooling_invariance_against_random(codes_fn, X, image_shape, groups, *, pooling="max",
                                      n_random=5, center=True, permutation=None,
                                      random_state=None,
                                      shifts=((0, 1), (1, 0), (0, -1), (-1, 0)),
                                      mode="constant"):
    """Shift invariance of pooled outputs: learned groups against random groups.

    For the units ``codes_fn(X)`` (n_samples, n_units) and a grouping of them (every row of
    ``groups`` lists the units of one group), the pooled outputs are the ``max`` (or L2
    norm) over each group. :func:`~sklearn_structlearn.structure.pooling_invariance`
    measures the relative change of the pooled outputs (and of the units) under
    one-pixel shifts of the images; the same is measured for ``n_random`` random groupings
    of the same units into groups of the same size.

    With ``center=True`` every output is centred on its mean over ``X`` (the unshifted
    sample) before the relative change is taken, ``||f(shift X) - f(X)|| / ||f(X) -
    mean f(X)||``: the change is then measured against how much the output varies across
    images, not against its offset. Without centring, the maximum of random units --
    whose mean grows with the group -- looks invariant only because its offset is large.

    Parameters
    ----------
    codes_fn : callable
        ``X -> (n_samples, n_units)`` unit responses.
    X : ndarray of shape (n_samples, n_features)
        Images, in the feature order ``codes_fn`` expects (shuffled when ``permutation``
        is given; the shift acts on the true grid -- this is a measurement).
    image_shape : tuple of int
    groups : array-like of int of shape (n_groups, group_size)
    pooling : {"max", "l2"}, default="max"
    n_random : int, default=5
    center : bool, default=True
    permutation : array-like of shape (n_features,), default=None
    random_state : int, RandomState instance or None, default=None
    shifts : sequence of (int, int), default=one pixel in the 4 directions
    mode : {"constant", "wrap"}, default="constant"

    Returns
    -------
    result : dict
        ``learned`` (the :func:`~sklearn_structlearn.structure.pooling_invariance` dict
        of the learned groups), ``random`` (list of those of the random groupings), ``learned_change`` and
        ``random_change`` (mean relative change of the pooled outputs; lower is more
        invariant), ``codes_change``, ``learned_score`` and ``random_score``
        (``1 - pooled/codes``).

    Examples
    --------
    Units = an image's pixels, groups = 2x2 blocks: pooling neighbours beats random
    groups of four pixels.

    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> from sklearn_structlearn.sharing import lattice_pooling, pooling_invariance_against_random
    >>> rng = np.random.default_rng(0)
    >>> X = gaussian_filter(rng.random((200, 8, 8)), (0, 1, 1)).reshape(200, 64)
    >>> blocks, _ = lattice_pooling((8, 8), 2)
    >>> r = pooling_invariance_against_random(lambda X: X, X, (8, 8), blocks, random_state=0)
    >>> bool(r["learned_change"] < r["random_change"])
    True
    """
    groups = np.asarray(groups, dtype=np.int64)
    if groups.ndim != 2:
        raise ValueError(f"groups must be (n_groups, group_size), got shape {groups.shape}.")
    rng = check_random_state(random_state)
    X = np.asarray(X)
    cache = {}

    def raw_codes(X_):
        # pooling_invariance calls the pooled and the codes transform on the same array:
        # compute the codes once per array (the cache holds it, so its id stays unique).
        if id(X_) not in cache:
            cache.clear()
            cache[id(X_)] = (X_, np.asarray(codes_fn(X_), dtype=np.float64))
        return cache[id(X_)][1]

    def pool(c, group_index):
        return pool_codes(c[:, group_index.ravel()], group_index.shape[1], pooling)

    codes_mean = raw_codes(X).mean(axis=0) if center else 0.0

    def codes(X_):
        return raw_codes(X_) - codes_mean

    def pooled(group_index):
        offset = pool(raw_codes(X), group_index).mean(axis=0) if center else 0.0
        return lambda X_: pool(raw_codes(X_), group_index) - offset

    kwargs = dict(shifts=shifts, mode=mode, permutation=permutation)
    learned = pooling_invariance(pooled(groups), codes, X, image_shape, **kwargs)
    random = []
    for _ in range(n_random):
        units = rng.permutation(groups.ravel()).reshape(groups.shape)
        random.append(pooling_invariance(pooled(units), codes, X, image_shape, **kwargs))
    return {
        "learned": learned,
        "random": random,
        "learned_change": learned["pooled_change"],
        "random_change": float(np.mean([r["pooled_change"] for r in random])),
        "codes_change": learned["codes_change"],
        "learned_score": learned["score"],
        "random_score": float(np.mean([r["score"] for r in random])),
    }


def family_pooling_groups(layer):
    """Units pooled together by a :class:`SharedLayer`: a family (or, with
    ``group_pooling``, a group of families) at neighbouring sites.

    Units are numbered ``kernel * n_sites + site`` (the flattened unpooled maps).

    Parameters
    ----------
    layer : SharedLayer

    Returns
    -------
    groups : ndarray of int of shape (n_outputs * n_pooled_sites, pooled_families * pool_size ** 2)
        In the order of the pooled outputs (channel-major).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.sharing import SharedLayer, family_pooling_groups
    >>> k = np.ones((2, 1, 3, 3))
    >>> layer = SharedLayer(k, np.zeros(2), k > 0, (4, 4), (2, 2), 2, "max", 0.0)
    >>> family_pooling_groups(layer)[[0, 4]].tolist()    # kernel 0 and kernel 1, block 0
    [[0, 1, 4, 5], [16, 17, 20, 21]]
    """
    return _pooled_units(layer.n_kernels, layer.grid_shape, layer.pool_size,
                         layer.pooled_families)


# --------------------------------------------------------------------------- #
# families among units learned without sharing
# --------------------------------------------------------------------------- #
def _centred_windows(images, size):
    """Each unit's weights cropped to a ``size`` x ``size`` window at its centre of mass."""
    n, h, w = images.shape
    mass = np.abs(images)
    total = mass.sum(axis=(1, 2))
    total = np.where(total > 0, total, 1.0)
    rows = np.rint((mass.sum(axis=2) * np.arange(h)).sum(axis=1) / total).astype(int)
    cols = np.rint((mass.sum(axis=1) * np.arange(w)).sum(axis=1) / total).astype(int)
    r = size // 2
    padded = np.pad(images, ((0, 0), (r + 1, r + 1), (r + 1, r + 1)))
    windows = np.empty((n, size + 2, size + 2))
    for i in range(n):  # one slice per unit (not a hot path: a few thousand units)
        windows[i] = padded[i, rows[i]:rows[i] + size + 2, cols[i]:cols[i] + size + 2]
    return windows, np.c_[rows, cols]


@validate_params(
    {
        "components": ["array-like"],
        "site_inputs": ["array-like"],
        "grid_shape": "no_validation",
        "window": [int_in(1)],
        "min_similarity": [real_in(-1, 1, closed="both")],
    },
    prefer_skip_nested_validation=True,
)
def find_translated_families(components, site_inputs, grid_shape, *, window=7,
                             min_similarity=0.8):
    """Families of units whose receptive fields are translates of each other.

    Units learned *without* weight sharing (e.g. a
    :class:`~sklearn_structlearn.GroupSparseCodingLayer`'s ``components_``, on inputs in
    any order) are put on the recovered lattice, cropped to a ``window`` x ``window``
    window at their centre of mass, and compared up to a translation of one site (the
    rounding of the centre): two units are translates when the cosine of their windows
    is at least ``min_similarity`` (the sign counts: a unit and its negative are not the
    same feature). Families are the connected components of that relation; a family of
    several units is a feature the unshared learner found at several places -- the
    evidence for tying their weights.

    Parameters
    ----------
    components : array-like of shape (n_units, n_features)
    site_inputs : array-like of int of shape (height * width,)
        The recovered topology (``InputTopologyLearner.site_inputs_``).
    grid_shape : tuple of (int, int)
    window : int, default=7
        Odd window side.
    min_similarity : float, default=0.8

    Returns
    -------
    families : list of ndarray of int
        Units of every family, largest first (singletons included).
    kernels : list of ndarray of shape (window, window)
        Mean aligned window of every family (its shared kernel).
    centres : ndarray of int of shape (n_units, 2)
        Lattice position of every unit's centre of mass.

    Examples
    --------
    Three translated copies of one edge detector and one blob, on a 6x6 lattice:

    >>> import numpy as np
    >>> from sklearn_structlearn.sharing import find_translated_families
    >>> units = np.zeros((4, 6, 6))
    >>> for i, (r, c) in enumerate([(1, 1), (3, 2), (2, 4)]):
    ...     units[i, r, c - 1:c + 1] = [1.0, -1.0]
    >>> units[3, 3:5, 3:5] = 1.0
    >>> families, kernels, centres = find_translated_families(
    ...     units.reshape(4, 36), np.arange(36), (6, 6), window=3)
    >>> [f.tolist() for f in families]
    [[0, 1, 2], [3]]
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    components = np.asarray(components, dtype=np.float64)
    h, w = check_grid(grid_shape)
    site_inputs = np.asarray(site_inputs, dtype=np.int64)
    size = window
    if size % 2 == 0:
        raise ValueError(f"window must be odd, got {size}.")
    filled = site_inputs >= 0
    images = np.zeros((components.shape[0], h * w))
    images[:, filled] = components[:, site_inputs[filled]]
    images = images.reshape(-1, h, w)
    windows, centres = _centred_windows(images, size)
    n = windows.shape[0]
    centre = windows[:, 1:-1, 1:-1].reshape(n, -1)
    norms = np.linalg.norm(centre, axis=1)
    unit = centre / np.where(norms > 0, norms, 1.0)[:, None]
    best = np.full((n, n), -np.inf)
    best_shift = np.zeros((n, n, 2), dtype=np.int64)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            shifted = windows[:, 1 + dr:1 + dr + size, 1 + dc:1 + dc + size].reshape(n, -1)
            sn = np.linalg.norm(shifted, axis=1)
            shifted = shifted / np.where(sn > 0, sn, 1.0)[:, None]
            cos = unit @ shifted.T  # unit i against unit j moved by (dr, dc)
            better = cos > best
            best = np.where(better, cos, best)
            best_shift[better] = (dr, dc)
    similar = np.maximum(best, best.T) >= min_similarity
    np.fill_diagonal(similar, False)
    similar &= (norms > 0)[:, None] & (norms > 0)[None, :]
    _, labels = connected_components(csr_matrix(similar), directed=False)
    families = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
    families.sort(key=lambda f: (-f.size, f[0]))
    kernels = []
    for fam in families:
        ref = fam[0]
        aligned = []
        for j in fam:
            dr, dc = best_shift[ref, j]
            aligned.append(windows[j, 1 + dr:1 + dr + size, 1 + dc:1 + dc + size])
        kernels.append(np.mean(aligned, axis=0))
    return families, kernels, centres


# --------------------------------------------------------------------------- #
# estimator
# --------------------------------------------------------------------------- #
def _per_layer(value, n_layers, name):
    if isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise ValueError(f"{name} has {len(value)} entries for {n_layers} layers.")
        return list(value)
    return [value] * n_layers


class SharedWeightLearner(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                          BaseEstimator):
    """Learn a shared-weight (convolution-like) network structure from unlabeled data.

    1. The inputs' lattice layout, from their statistics alone
       (:class:`~sklearn_structlearn.topology.InputTopologyLearner`): any fixed order of
       the pixels gives the same network, up to a symmetry of the grid.
    2. The inputs are standardised by one mean and one standard deviation over all of
       them (as a CNN's pixels) and put on the recovered lattice.
    3. Per layer: shared kernels learned by group sparse coding of lattice patches
       (:func:`learn_shared_layer`), every kernel a family of units with one weight
       vector; the families' responses pooled over neighbouring sites (and, with
       ``group_pooling``, over the families of each group); the next layer is learned on
       the pooled maps.

    ``transform`` returns the top layer's pooled maps, flattened; ``to_torch`` the
    network as a torch module (gather-based first convolution on the raw inputs).

    Parameters
    ----------
    n_kernels : int or list of int, default=(32, 64)
        Families per layer; the number of layers is its length.
    kernel_size : int or list of int, default=5
        Odd window side per layer.
    pool_size : int or list of int, default=2
    pooling : {"max", "l2"}, default="max"
    group_size : int, default=1
        Group size of the sparse coding of every layer; ``n_kernels`` must be multiples
        of it.
    group_pooling : bool, default=False
        Pool the families of each group together (a layer of ``n`` kernels then has
        ``n // group_size`` output channels): an invariance learned from which features
        the sparse coding switches on together.
    alpha, connectivity_alpha : float or "auto", default="auto"
        Penalties of the sparse coding (see
        :class:`~sklearn_structlearn.GroupSparseCodingLayer`).
    n_patches : int, default=20000
        Patches each layer's kernels are learned on.
    max_iter : int, default=20
        Outer iterations of each layer's sparse coding.
    topology : InputTopologyLearner or None, default=None
        Cloned and fitted on ``X``; ``None``: ``InputTopologyLearner()``.
    random_state : int, RandomState instance or None, default=None
    n_jobs : int, default=None

    Attributes
    ----------
    topology_ : InputTopologyLearner
        The fitted topology.
    mean_, scale_ : ndarray of shape (n_features_in,)
        Standardisation of the inputs: ``(x - mean_) / scale_``, one mean and one scale
        for all inputs (a shared-weight layer reads every site alike).
    layers_ : list of SharedLayer
    n_layers_ : int
        Number of layers (the length of ``n_kernels``).
    structure_ : dict
        What was learned, in plain values: ``"topology"`` (``n_inputs``, the recovered
        ``grid_shape``, ``n_empty_sites``, the layout ``objective``) and ``"layers"``, one
        dict per layer (``n_channels``, ``grid_shape``, ``n_families``, ``family_sizes``
        -- units per family, one per site --, ``kernel_size``, ``mean_fan_in`` of the
        learned kernel supports, ``pooling``, ``pool_size``, ``pooled_families`` --
        families pooled into one output --, ``n_outputs`` channels, ``pooled_shape``).
    n_iter_ : int
        Most outer iterations run by the sparse coding of a layer.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_structlearn.sharing import SharedWeightLearner
    >>> X = load_digits().data
    >>> learner = SharedWeightLearner(n_kernels=[8], kernel_size=3, n_patches=2000,
    ...                               max_iter=5, random_state=0).fit(X)
    >>> learner.transform(X).shape                    # 8 families on the 4x4 pooled grid
    (1797, 128)
    >>> print(learner.layers_[0].summary())           # doctest: +ELLIPSIS
    1 channels on 8x8 -> 8 families of 64 units (3x3 kernels, ...) -> ... -> 8 channels on 4x4
    """

    def __init__(self, n_kernels=(32, 64), kernel_size=5, pool_size=2, pooling="max",
                 group_size=1, group_pooling=False, alpha="auto", connectivity_alpha="auto",
                 n_patches=20000, max_iter=20, topology=None, random_state=None,
                 n_jobs=None):
        self.n_kernels = n_kernels
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.pooling = pooling
        self.group_size = group_size
        self.group_pooling = group_pooling
        self.alpha = alpha
        self.connectivity_alpha = connectivity_alpha
        self.n_patches = n_patches
        self.max_iter = max_iter
        self.topology = topology
        self.random_state = random_state
        self.n_jobs = n_jobs

    _parameter_constraints = {
        "n_kernels": [int_in(1), "array-like"],
        "kernel_size": [int_in(1), "array-like"],
        "pool_size": [int_in(1), "array-like"],
        "pooling": POOLING,
        "group_size": [int_in(1)],
        "group_pooling": ["boolean"],
        "alpha": PENALTY,
        "connectivity_alpha": PENALTY,
        "n_patches": [int_in(1)],
        "max_iter": [int_in(1)],
        "topology": [InputTopologyLearner, None],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
    }

    def _layer_params(self):
        """Per-layer kernel counts, kernel sizes and pool sizes, every entry checked."""
        n_kernels = (list(self.n_kernels) if isinstance(self.n_kernels, (list, tuple))
                     else [self.n_kernels])
        if not n_kernels:
            raise ValueError("n_kernels must list at least one layer.")
        n_layers = len(n_kernels)
        per_layer = {"n_kernels": n_kernels,
                     "kernel_size": _per_layer(self.kernel_size, n_layers, "kernel_size"),
                     "pool_size": _per_layer(self.pool_size, n_layers, "pool_size")}
        validate_named({f"{name}[{i}]": [int_in(1)] for name, values in per_layer.items()
                        for i in range(n_layers)},
                       {f"{name}[{i}]": v for name, values in per_layer.items()
                        for i, v in enumerate(values)},
                       type(self).__name__)
        for k in per_layer["kernel_size"]:
            if k % 2 == 0:  # a window centred on its site
                raise ValueError(f"kernel_size must be odd, got {k}.")
        for n in n_kernels:
            if n % self.group_size:
                raise ValueError(f"n_kernels must be multiples of group_size="
                                 f"{self.group_size}, got {n}.")
        return per_layer["n_kernels"], per_layer["kernel_size"], per_layer["pool_size"]

    @fit_context
    def fit(self, X, y=None):
        """Learn the topology, then the shared-weight layers, from ``X`` (no labels).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : SharedWeightLearner
        """
        n_kernels, kernel_sizes, pool_sizes = self._layer_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        rng = check_random_state(self.random_state)
        topology = InputTopologyLearner() if self.topology is None else clone(self.topology)
        self.topology_ = topology.fit(X)
        # One mean and one scale for every input, as a CNN standardises its pixels: shared
        # weights read every site the same way, and a per-input mean would add a fixed,
        # site-dependent pattern to every image that they cannot undo (it cost the trained
        # network ~0.5 point on Fashion-MNIST: benchmarks/RESULTS.md section 10). One
        # common scale also keeps a blank border pixel quiet.
        self.mean_ = np.full(X.shape[1], float(X.mean(dtype=np.float64)))
        spread = float(X.std(dtype=np.float64))
        self.scale_ = np.full(X.shape[1], spread if spread > 0 else 1.0)
        maps = self._input_maps(X)
        grid = self.topology_.grid_shape_
        self.layers_ = []
        for i, (n, k, p) in enumerate(zip(n_kernels, kernel_sizes, pool_sizes)):
            layer = learn_shared_layer(
                maps, grid, n_kernels=n, kernel_size=k, group_size=self.group_size,
                alpha=self.alpha, connectivity_alpha=self.connectivity_alpha,
                pooling=self.pooling, pool_size=p, group_pooling=self.group_pooling,
                n_patches=self.n_patches, max_iter=self.max_iter, random_state=rng,
                n_jobs=self.n_jobs,
            )
            self.layers_.append(layer)
            if i + 1 < len(n_kernels):
                maps = shared_layer_forward(maps, layer)
                grid = layer.pooled_shape
        self.n_layers_ = len(self.layers_)
        self.n_iter_ = max(layer.n_iter for layer in self.layers_)
        self.structure_ = self._describe()
        top = self.layers_[-1]
        self._n_features_out = top.n_outputs * top.pooled_shape[0] * top.pooled_shape[1]
        return self

    def _input_maps(self, X):
        """Standardised inputs on the recovered lattice: (n, 1, n_sites), empty sites 0."""
        Z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return self.topology_.transform(Z)[:, None, :]

    def transform(self, X):
        """Pooled maps of the top layer, flattened (channel-major).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        features : ndarray of shape (n_samples, n_outputs_top * n_pooled_sites_top)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        maps = self._input_maps(X)
        for layer in self.layers_:
            maps = shared_layer_forward(maps, layer)
        return maps.reshape(maps.shape[0], -1).astype(X.dtype, copy=False)

    def layer_maps(self, X, depth=None, *, pooled=True):
        """Maps of one layer (``depth`` 1-based, default the top), pooled or not.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        depth : int, default=None
        pooled : bool, default=True
            ``False``: the unpooled unit responses (n, n_kernels, n_sites) of that layer.

        Returns
        -------
        maps : ndarray of shape (n_samples, n_outputs, n_pooled_sites)
            Or, unpooled, of shape (n_samples, n_kernels, n_sites).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        if depth is None:
            depth = len(self.layers_)
        validate_named({"depth": [int_in(1)]}, {"depth": depth}, type(self).__name__)
        if depth > len(self.layers_):
            raise ValueError(f"depth must be <= {len(self.layers_)}, got {depth}.")
        maps = self._input_maps(X)
        for layer in self.layers_[:depth - 1]:
            maps = shared_layer_forward(maps, layer)
        layer = self.layers_[depth - 1]
        return shared_layer_forward(maps, layer) if pooled else layer_codes(maps, layer)

    def _describe(self):
        """``structure_``: the recovered topology and the families of every layer."""
        topology = self.topology_
        layers = [
            {"n_channels": layer.n_channels, "grid_shape": tuple(layer.grid_shape),
             "n_families": layer.n_kernels, "family_sizes": layer.family_sizes().tolist(),
             "kernel_size": layer.kernel_size,
             "mean_fan_in": float(layer.fan_in().mean()),
             "pooling": layer.pooling, "pool_size": layer.pool_size,
             "pooled_families": layer.pooled_families, "n_outputs": layer.n_outputs,
             "pooled_shape": tuple(layer.pooled_shape)}
            for layer in self.layers_
        ]
        return {"topology": {"n_inputs": self.n_features_in_,
                             "grid_shape": tuple(topology.grid_shape_),
                             "n_empty_sites": int(np.sum(topology.site_inputs_ < 0)),
                             "objective": float(topology.layout_.objective)},
                "layers": layers}

    def summary(self):
        """Topology and layers, one line each.

        Returns
        -------
        summary : str
        """
        check_is_fitted(self)
        h, w = self.topology_.grid_shape_
        lines = [f"topology: {self.n_features_in_} inputs on a recovered {h}x{w} lattice "
                 f"(J = {self.topology_.layout_.objective:.2f})"]
        lines += [f"layer {i + 1}: {layer.summary()}" for i, layer in enumerate(self.layers_)]
        return "\n".join(lines)

    def plot_kernels(self, **kwargs):
        """Figure of the first layer's shared kernels (one panel per family).

        The first layer's kernels read the pixels on the recovered grid, so they are
        drawn as small images; deeper kernels read pooled maps of many channels.

        Parameters
        ----------
        **kwargs
            Passed to :func:`~sklearn_structlearn.plotting.plot_receptive_fields`
            (``n_units``, ``sort_by`` -- default None, the families' order --, ``title``...).

        Returns
        -------
        fig : matplotlib.figure.Figure

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_structlearn.sharing import SharedWeightLearner
        >>> learner = SharedWeightLearner(n_kernels=[6], kernel_size=3, n_patches=1000,
        ...                               max_iter=3, random_state=0).fit(load_digits().data)
        >>> len(learner.plot_kernels().axes)
        6
        """
        from .plotting import plot_receptive_fields

        check_is_fitted(self)
        layer = self.layers_[0]
        k = layer.kernel_size
        kwargs.setdefault("sort_by", None)
        kwargs.setdefault("title", f"layer 1: {layer.n_kernels} shared {k}x{k} kernels, "
                                   "learned without labels")
        return plot_receptive_fields(layer.kernels[:, 0].reshape(layer.n_kernels, k * k),
                                     (k, k), **kwargs)

    def to_torch(self, mode="feedforward", n_classes=None, *, dtype=None):
        """Export the learned structure as a torch module (see ``export._shared``).

        The module computes ``transform`` (then the head): standardisation, and per layer
        the shared kernels on the lattice, ReLU, pooling. It has the attributes
        :class:`~sklearn_structlearn.StructuredNetClassifier` trains (``preprocessing``,
        ``layers``, ``head``), so ``StructuredNetClassifier(SharedWeightLearner())``
        learns the structure without labels and trains it with them.

        Parameters
        ----------
        mode : {"feedforward", "exact"}, default="feedforward"
            Both give the same network: the layers of this learner are feedforward
            already (thresholded responses of shared kernels), so the network is at once
            exact (it reproduces ``transform``) and trainable. The parameter is there so
            that this learner is exported as the other structure learners are.
        n_classes : int, default=None
            Adds a linear head (torch's default initialisation).
        dtype : torch.dtype, default=None
            ``None``: float32.

        Returns
        -------
        module : SharedWeightNet
        """
        from .export._build import _MODES  # torch-free; the modes of every exported network

        check_is_fitted(self)
        validate_named({"mode": [StrOptions(set(_MODES))],
                        "n_classes": [int_in(1), None]},
                       {"mode": mode, "n_classes": n_classes}, type(self).__name__)
        import_torch("Exporting a shared-weight network to PyTorch")
        from .export._shared import build_shared_weight_net

        return build_shared_weight_net(self, n_classes=n_classes, dtype=dtype)
