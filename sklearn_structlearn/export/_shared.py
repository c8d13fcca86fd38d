"""Torch modules of shared-weight networks on a recovered input topology.

Imported lazily (it imports torch). A shared-weight layer on a lattice is defined by an
index table: for every output site and every kernel offset, the index of the input at the
neighbouring site (``-1``: none) -- :func:`sklearn_structlearn.sharing.lattice_neighbourhoods`.
Its output is ``y[b, o, s] = bias[o] + sum_{c, k} W[o, c, k] x[b, c, index[s, k]]``: the
same weights at every site. :meth:`LatticeConv.gather_forward` computes exactly that;
``forward`` computes the same thing faster, by gathering the inputs onto the lattice once
(``site_inputs``) and running ``conv2d`` -- on a lattice the two are the same operation,
for any order of the inputs (tested).

Design rules as in ``_modules``: weights are parameters; index tables, masks and the
lattice shape are buffers or plain attributes; masks are applied in ``forward`` so pruned
weights stay pruned; no data-dependent Python branching in ``forward``.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._lattice import lattice_neighbourhoods, lattice_pooling

__all__ = ["InputStandardisation", "LatticeConv", "LatticePool", "SharedWeightNet",
           "build_shared_weight_net"]


def _safe_sqrt(s):
    positive = s > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, s, torch.ones_like(s))), 0.0)


def _gather_sites(x, index):
    """``x[..., index]`` with ``-1`` read as zero; x (B, C, n), index int tensor."""
    padded = F.pad(x, (0, 1))
    return padded[..., torch.where(index >= 0, index, x.shape[-1])]


class LatticeConv(nn.Module):
    """Shared-weight layer on a lattice: a gather-based convolution.

    Parameters
    ----------
    weight : Tensor of shape (out_channels, in_channels, k, k)
        One kernel per family of units.
    bias : Tensor of shape (out_channels,) or None
    grid_shape : tuple of (int, int)
        Lattice of the output sites (stride 1, zero "same" padding).
    site_inputs : array-like of int of shape (height * width,), default=None
        Index of the input at every site (``-1``: empty site), e.g. the recovered
        topology's ``site_inputs_``; ``None``: the inputs are the sites, in raster order.
    mask : Tensor of bool, same shape as weight, default=None
        Connectivity of every kernel (``None``: all ones).

    Examples
    --------
    >>> import torch
    >>> from sklearn_structlearn.export._shared import LatticeConv
    >>> w = torch.zeros(1, 1, 3, 3); w[0, 0, 1, 2] = 1.0      # reads the right neighbour
    >>> conv = LatticeConv(w, None, (2, 2), site_inputs=[3, 2, 1, 0])
    >>> x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])     # input 3 sits at site (0, 0), ...
    >>> conv(x).tolist(), conv.gather_forward(x).tolist()
    ([[[3.0, 0.0, 1.0, 0.0]]], [[[3.0, 0.0, 1.0, 0.0]]])
    """

    def __init__(self, weight, bias, grid_shape, *, site_inputs=None, mask=None):
        super().__init__()
        weight = torch.as_tensor(weight)
        out_c, in_c, kh, kw = weight.shape
        if kh != kw or kh % 2 == 0:
            raise ValueError(f"kernels must be square with an odd side, got {kh}x{kw}.")
        if mask is None:
            mask = torch.ones_like(weight, dtype=torch.bool)
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.shape != weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(weight.shape)}")
        self.grid_shape = tuple(int(s) for s in grid_shape)
        h, w = self.grid_shape
        self.weight = nn.Parameter(torch.where(mask, weight, 0.0).clone())
        if bias is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(torch.as_tensor(bias, dtype=weight.dtype).clone())
        self.register_buffer("mask", mask.clone())
        sites = np.arange(h * w) if site_inputs is None else np.asarray(site_inputs)
        self.register_buffer("site_inputs", torch.as_tensor(sites, dtype=torch.int64))
        # The index table: for every output site and offset, the input read (-1: none).
        index = lattice_neighbourhoods(self.grid_shape, kh, site_inputs=sites)
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.int64))

    @property
    def kernel_size(self):
        return self.weight.shape[-1]

    def masked_weight(self):
        return torch.where(self.mask, self.weight, 0.0)

    def forward(self, x):
        """``x`` (batch, in_channels, n_inputs) -> (batch, out_channels, height * width)."""
        h, w = self.grid_shape
        image = _gather_sites(x, self.site_inputs).reshape(x.shape[0], x.shape[1], h, w)
        y = F.conv2d(image, self.masked_weight(), self.bias, padding=self.kernel_size // 2)
        return y.reshape(x.shape[0], y.shape[1], h * w)

    def gather_forward(self, x):
        """The same output from the index table: ``sum_{c,k} W[o,c,k] x[b,c,index[s,k]]``."""
        patches = _gather_sites(x, self.index)  # (B, C, sites, K)
        weight = self.masked_weight().reshape(self.weight.shape[0], self.weight.shape[1], -1)
        y = torch.einsum("bcsk,ock->bos", patches, weight)
        if self.bias is not None:
            y = y + self.bias[None, :, None]
        return y

    def extra_repr(self):
        h, w = self.grid_shape
        return (f"{self.weight.shape[1]} -> {self.weight.shape[0]} families, "
                f"{self.kernel_size}x{self.kernel_size} kernels on a {h}x{w} lattice, "
                f"density={self.mask.float().mean().item():.3f}")


class LatticePool(nn.Module):
    """Pool every channel over ``pool_size`` x ``pool_size`` blocks of lattice sites.

    ``"max"`` or ``"l2"`` (Euclidean norm of the block). Input (batch, C, height * width),
    output (batch, C // n_families, pooled sites); the blocks are
    :func:`~sklearn_structlearn.sharing.lattice_pooling`'s, and each output pools
    ``n_families`` consecutive channels together (a group of families, default 1).

    Examples
    --------
    >>> import torch
    >>> from sklearn_structlearn.export._shared import LatticePool
    >>> LatticePool((2, 2), 2, "max")(torch.tensor([[[1.0, 4.0, 2.0, 3.0]]]))
    tensor([[[4.]]])
    """

    def __init__(self, grid_shape, pool_size=2, pooling="max", n_families=1):
        super().__init__()
        if pooling not in ("max", "l2"):
            raise ValueError(f"pooling must be 'max' or 'l2', got {pooling!r}.")
        self.grid_shape = tuple(int(s) for s in grid_shape)
        self.pool_size = int(pool_size)
        self.pooling = pooling
        self.n_families = int(n_families)
        index, self.pooled_shape = lattice_pooling(self.grid_shape, self.pool_size)
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.int64))

    def forward(self, x):
        """``x`` (batch, channels, height * width) -> (batch, channels // n_families, n_blocks)."""
        h, w = self.grid_shape
        p = self.pool_size
        bh, bw = min(p, h), min(p, w)
        grouped = x.reshape(x.shape[0], -1, self.n_families, h, w)
        if self.pooling == "max":  # max over a group's families, then over the block
            y = F.max_pool2d(grouped.amax(dim=2), (bh, bw))
        else:  # the group's energy summed over the block
            energy = (grouped * grouped).sum(dim=2)
            y = _safe_sqrt(F.avg_pool2d(energy, (bh, bw)) * (bh * bw))
        return y.reshape(x.shape[0], y.shape[1], -1)

    def gather_forward(self, x):
        """Reference: pool the gathered blocks of the index table, all families of a group."""
        grouped = x.reshape(x.shape[0], -1, self.n_families, x.shape[-1])
        blocks = grouped[..., self.index]  # (batch, groups, families, blocks, sites)
        if self.pooling == "max":
            return blocks.amax(dim=(2, 4))
        return _safe_sqrt((blocks * blocks).sum(dim=(2, 4)))

    def extra_repr(self):
        families = f", groups of {self.n_families} channels" if self.n_families > 1 else ""
        return (f"{self.pooling} over {self.pool_size}x{self.pool_size} blocks of "
                f"{self.grid_shape}{families}")


class InputStandardisation(nn.Module):
    """Fixed ``x -> (x - mean) / scale`` over the inputs (buffers, not trained).

    Examples
    --------
    >>> import torch
    >>> from sklearn_structlearn.export._shared import InputStandardisation
    >>> InputStandardisation(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]))(
    ...     torch.tensor([[3.0, 0.0]]))
    tensor([[ 1.0000, -0.5000]])
    """

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean))
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, x):
        """``(x - mean) / scale``."""
        return (x - self.mean) / self.scale

    def extra_repr(self):
        return f"n_features={self.mean.shape[0]}"


class SharedWeightNet(nn.Module):
    """Standardisation, shared-weight layers (conv -> ReLU -> pool), optional linear head.

    The attribute names are those of the other exported networks
    (:class:`~sklearn_structlearn.export.StructuredNet`): a fixed ``preprocessing``
    stage, the trainable ``layers``, a ``head`` -- what
    :class:`~sklearn_structlearn.StructuredNetClassifier` trains.

    Attributes
    ----------
    preprocessing : InputStandardisation or nn.Identity
        Input standardisation (in the inputs' own order).
    layers : nn.ModuleList of LatticeConv
    pools : nn.ModuleList of LatticePool
    head : nn.Linear or nn.Identity
    """

    def __init__(self, preprocessing, layers, pools, head=None):
        super().__init__()
        self.preprocessing = preprocessing if preprocessing is not None else nn.Identity()
        self.layers = nn.ModuleList(layers)
        self.pools = nn.ModuleList(pools)
        self.head = head if head is not None else nn.Identity()

    def features(self, x):
        """``x`` (batch, n_features) raw inputs -> the top pooled maps, flattened."""
        x = self.preprocessing(x)[:, None, :]
        for conv, pool in zip(self.layers, self.pools):
            x = pool(torch.relu(conv(x)))
        return x.flatten(1)

    def forward(self, x):
        """``x`` (batch, n_features) raw inputs -> top pooled maps flattened, or logits."""
        return self.head(self.features(x))


def build_shared_weight_net(learner, n_classes=None, dtype=None):
    """Torch module of a fitted :class:`~sklearn_structlearn.sharing.SharedWeightLearner`.

    The first layer reads the raw inputs in their own (possibly shuffled) order through
    the recovered topology's ``site_inputs_``; the layers above run on the pooled
    lattices. Kernels, biases (thresholds) and masks are the learned ones; the head (when
    ``n_classes`` is given) is torch's default initialisation.

    Parameters
    ----------
    learner : fitted SharedWeightLearner
    n_classes : int, default=None
    dtype : torch.dtype, default=None
        ``None``: float32.

    Returns
    -------
    net : SharedWeightNet
    """
    dtype = torch.float32 if dtype is None else dtype

    def t(a):
        return torch.as_tensor(np.asarray(a, dtype=np.float64)).to(dtype)

    convs, pools = [], []
    site_inputs = learner.topology_.site_inputs_
    for i, layer in enumerate(learner.layers_):
        convs.append(LatticeConv(t(layer.kernels), t(layer.bias), layer.grid_shape,
                                 site_inputs=site_inputs if i == 0 else None,
                                 mask=torch.as_tensor(layer.mask)))
        pools.append(LatticePool(layer.grid_shape, layer.pool_size, layer.pooling,
                                 n_families=layer.pooled_families))
    top = learner.layers_[-1]
    n_out = top.n_outputs * top.pooled_shape[0] * top.pooled_shape[1]
    head = None if n_classes is None else nn.Linear(n_out, int(n_classes), dtype=dtype)
    return SharedWeightNet(InputStandardisation(t(learner.mean_), t(learner.scale_)),
                           convs, pools, head)
