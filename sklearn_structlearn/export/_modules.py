"""Torch modules of the exported networks.

This module and :mod:`~sklearn_structlearn.export._shared` (the shared-weight networks)
are the only ones of the package that import torch at import time; they are themselves
imported lazily, by :func:`sklearn_structlearn.export.build_torch_module` and
:meth:`sklearn_structlearn.sharing.SharedWeightLearner.to_torch`.

Design rules, so that the modules train, move across devices and export
(``torch.export``, ONNX):

- learned weights are ``nn.Parameter``; the structure (connectivity masks, group ids,
  step sizes, penalties) are registered buffers, so they follow ``.to(...)`` and are
  saved in ``state_dict()``;
- masks are applied in ``forward`` (``torch.where(mask, weight, 0)``), so the gradient of
  a pruned weight is exactly zero and pruned connections stay pruned under training;
- groups are contiguous blocks of units, handled by splitting the last dimension into
  ``(n_groups, group_size)``; there is no NumPy and no data-dependent Python branching in
  any ``forward``.

Bad input is never hidden, and is treated the same in eager mode, under
``torch.export`` and in ONNX runtimes (no check depends on the data, so none is dropped
by an exported graph): a row holding NaN or infinity gives a row of NaN outputs (other
rows are unaffected); each row is coded divided by its own scale (coding is homogeneous:
``codes(s x; alpha) = s codes(x; alpha / s)``), so that no square over- or underflows
(float32 rows up to ~1e35 give the results of unit-scale ones); the input is cast to the
network's dtype (float16 data are promoted); any number of leading batch dimensions is
accepted, like ``nn.Linear`` -- ``(*, n_features) -> (*, n_outputs)``, an empty batch
included.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._reference import _check_pooling, fista_momentum

__all__ = [
    "MaskedLinear",
    "GroupSoftThreshold",
    "GroupPool",
    "UnrolledProxLayer",
    "FeedforwardLayer",
    "AffinePreprocessing",
    "StructuredNet",
]


def _safe_sqrt(s):
    """``sqrt(s)`` for ``s >= 0`` whose gradient at ``s = 0`` is 0 instead of inf/NaN.

    NaN stays NaN (``s * 0``): a NaN input must come out as NaN, not as a zero norm.
    """
    positive = s > 0
    # The double where keeps the untaken branch away from sqrt(0), whose gradient is inf
    # and would turn into NaN after multiplication by zero in the backward pass.
    return torch.where(positive, torch.sqrt(torch.where(positive, s, torch.ones_like(s))),
                       s * 0.0)


def _group_blocks(v, group_size):
    # Contiguous groups: the last dimension split into (n_groups, group_size), whatever
    # the leading (batch) dimensions -- and their size, 0 included.
    return v.unflatten(-1, (-1, group_size))


def _group_norms(blocks, keepdim=False):
    """L2 norm of every group of ``blocks`` (..., n_groups, group_size): the one torch
    definition, shared by the prox and the pooling (NumPy's is ``_groups.group_norms``).

    The squares are formed in the blocks' dtype: the layers below call it on codes of
    rows divided by their scale (:func:`_row_scale`), so they neither over- nor underflow.
    """
    return _safe_sqrt((blocks * blocks).sum(dim=-1, keepdim=keepdim))


def _row_scale(v):
    """The largest absolute value of each row of ``v`` (1 for an all-zero row), shape
    ``(*, 1)``; NaN for a row holding NaN, so that NaN is passed on."""
    scale = v.abs().amax(dim=-1, keepdim=True)
    return torch.where(scale > 0, scale, torch.ones_like(scale)) + scale * 0.0


class MaskedLinear(nn.Module):
    """Linear map whose weight is multiplied by a fixed connectivity mask in ``forward``.

    Parameters
    ----------
    weight : Tensor of shape (out_features, in_features)
        Initial weight (copied into an ``nn.Parameter``).
    mask : Tensor of bool of shape (out_features, in_features)
        Connectivity; ``False`` entries are pruned connections. Stored as a buffer.
    bias : bool, default=True
        Whether to learn an additive bias (initialised at zero).

    Examples
    --------
    >>> import torch
    >>> from sklearn_structlearn.export import MaskedLinear
    >>> lin = MaskedLinear(torch.ones(2, 3), torch.tensor([[1, 0, 1], [0, 1, 0]]).bool())
    >>> lin(torch.ones(1, 3)).tolist()
    [[2.0, 1.0]]
    """

    def __init__(self, weight, mask, bias=True):
        super().__init__()
        weight = torch.as_tensor(weight)
        mask = torch.as_tensor(mask, dtype=torch.bool, device=weight.device)
        if mask.shape != weight.shape:
            raise ValueError(
                f"mask shape {tuple(mask.shape)} != weight shape {tuple(weight.shape)}"
            )
        self.weight = nn.Parameter(torch.where(mask, weight, 0.0).clone())
        self.register_buffer("mask", mask.clone())
        if bias:
            self.bias = nn.Parameter(weight.new_zeros(weight.shape[0]))
        else:
            self.register_parameter("bias", None)

    @property
    def in_features(self):
        return self.weight.shape[1]

    @property
    def out_features(self):
        return self.weight.shape[0]

    def masked_weight(self):
        """The effective weight ``weight * mask``."""
        return torch.where(self.mask, self.weight, 0.0)

    def forward(self, x):
        """``x @ (weight * mask)^T + bias``."""
        return F.linear(x, self.masked_weight(), self.bias)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, density={self.mask.float().mean().item():.3f}"
        )


class GroupSoftThreshold(nn.Module):
    """Group soft-threshold: the prox of ``threshold * sum_g ||v_g||_2`` (+ ``v >= 0``).

    ``forward(v, threshold)`` shrinks each contiguous group of ``group_size`` units by
    ``threshold`` in L2 norm; ``threshold`` is a scalar tensor, one value per group, or
    any shape broadcastable to ``v``'s leading dimensions and groups ``(*, n_groups)``
    (e.g. one value per row, ``(batch, 1)``).
    With ``positive=True`` the input is first clipped at zero (the prox of the norm plus
    the non-negativity constraint).

    Examples
    --------
    >>> import torch
    >>> from sklearn_structlearn.export import GroupSoftThreshold
    >>> GroupSoftThreshold(group_size=2)(torch.tensor([[3.0, 4.0, 0.1, 0.0]]), torch.tensor(1.0))
    tensor([[2.4000, 3.2000, 0.0000, 0.0000]])
    """

    def __init__(self, group_size=1, positive=False):
        super().__init__()
        self.group_size = int(group_size)
        self.positive = bool(positive)

    def forward(self, v, threshold):
        """The prox of ``threshold * sum_g ||v_g||_2`` (+ ``v >= 0``) applied to ``v``."""
        if self.positive:  # static configuration, not data-dependent
            v = torch.relu(v)
        blocks = _group_blocks(v, self.group_size)
        norms = _group_norms(blocks, keepdim=True)
        threshold = threshold.unsqueeze(-1) if threshold.dim() else threshold
        shrunk = torch.relu(norms - threshold)
        scale = shrunk / torch.where(norms > threshold, norms, torch.ones_like(norms))
        return (blocks * scale).reshape(v.shape)

    def extra_repr(self):
        return f"group_size={self.group_size}, positive={self.positive}"


class GroupPool(nn.Module):
    """Pool contiguous groups: ``"l2"`` norm, ``"max"`` of absolute values, or ``None`` (identity).

    Examples
    --------
    >>> import torch
    >>> from sklearn_structlearn.export import GroupPool
    >>> GroupPool(2, "l2")(torch.tensor([[3.0, 4.0, 0.0, -1.0]]))
    tensor([[5., 1.]])
    >>> GroupPool(2, "max")(torch.tensor([[3.0, 4.0, 0.0, -1.0]]))
    tensor([[4., 1.]])
    """

    def __init__(self, group_size=1, pooling="l2"):
        super().__init__()
        _check_pooling(pooling)
        self.group_size = int(group_size)
        self.pooling = pooling

    def forward(self, a):
        """The pooled groups of the codes ``a`` (``a`` itself when ``pooling`` is None)."""
        if self.pooling is None:
            return a
        blocks = _group_blocks(a, self.group_size)
        if self.pooling == "l2":
            return _group_norms(blocks)
        return blocks.abs().amax(dim=-1)

    def extra_repr(self):
        return f"group_size={self.group_size}, pooling={self.pooling!r}"


class _StructuredLayer(nn.Module):
    """Shared bookkeeping of the two layer kinds: mask and group-id buffers, pooling."""

    def _init_structure(self, mask, group_size, positive, pooling):
        n_components = mask.shape[0]
        self.group_size = int(group_size)
        self.n_groups = n_components // self.group_size
        self.register_buffer("mask", mask.clone())
        # Group id of every unit. The forward pass relies on groups being contiguous
        # (a reshape); the buffer records that structure in state_dict and on device.
        self.register_buffer(
            "groups", torch.arange(n_components, device=mask.device) // self.group_size
        )
        self.prox = GroupSoftThreshold(group_size, positive)
        self.pool = GroupPool(group_size, pooling)

    @property
    def in_features(self):
        return self.mask.shape[1]

    @property
    def n_components(self):
        return self.mask.shape[0]

    @property
    def out_features(self):
        return self.n_components if self.pool.pooling is None else self.n_groups


class UnrolledProxLayer(_StructuredLayer):
    """Group sparse coding layer as ``n_iter`` unrolled FISTA iterations (``mode="exact"``).

    For each input row ``x`` it runs accelerated proximal gradient from ``a = 0`` on
    ``1/2 ||x - D^T a||^2 + alpha * sum_g ||a_g||_2`` (+ ``a >= 0``), with step ``1/L``,
    then pools the groups. The dictionary is a parameter and the correlations
    ``X D^T`` and Gram matrix ``D D^T`` are recomputed in ``forward``, so the layer can
    be trained end to end; the step is a buffer computed at construction (call
    :meth:`refresh_step_` after changing the dictionary a lot, to keep ``step <= 1/L``).

    Parameters
    ----------
    components : Tensor of shape (n_components, n_features)
    mask : Tensor of bool, same shape
    alpha : float
    step : float
        ``1 / L`` with ``L`` the largest eigenvalue of ``D D^T``.
    group_size : int
    positive : bool
    pooling : {"l2", "max", None}
    n_iter : int
    restart : bool
        Adaptive per-row momentum restart (see ``fista_codes``).
    """

    def __init__(self, components, mask, alpha, step, group_size=1, positive=False,
                 pooling="l2", n_iter=100, restart=True):
        super().__init__()
        components = torch.as_tensor(components)
        mask = torch.as_tensor(mask, dtype=torch.bool, device=components.device)
        self._init_structure(mask, group_size, positive, pooling)
        self.weight = nn.Parameter(torch.where(mask, components, 0.0).clone())
        self.register_buffer("alpha", components.new_tensor(float(alpha)))
        self.register_buffer("step", components.new_tensor(float(step)))
        self.n_iter = int(n_iter)
        self.restart = bool(restart)
        # Plain Python floats: data independent, baked into exported graphs as constants.
        self.momentum = fista_momentum(self.n_iter)

    def dictionary(self):
        """The effective (masked) dictionary ``D``."""
        return torch.where(self.mask, self.weight, 0.0)

    def codes(self, x):
        """Raw codes after ``n_iter`` FISTA iterations, shape ``(*, n_components)``."""
        codes, scale = self._scaled_codes(x)
        return codes * scale

    def _scaled_codes(self, x):
        """Codes of each row divided by its scale ``s`` (the largest of ``|x D^T|``), with
        the penalty ``alpha / s``, and ``s``: the codes of ``x`` are ``s`` times them.
        Every iterate is scaled alike, so this is the same algorithm, in numbers of order
        one whatever the scale of the rows."""
        D = self.dictionary()
        C = x @ D.T
        G = D @ D.T
        scale = _row_scale(C)
        C = C / scale
        step = self.step
        threshold = self.alpha * step / scale
        a = torch.zeros_like(C)
        y = a
        if not self.restart:  # static configuration
            for beta in self.momentum:
                a_next = self.prox(y - (y @ G - C) * step, threshold)
                y = a_next + beta * (a_next - a)
                a = a_next
            return a, scale
        # Per-row momentum state; the restart is a torch.where, not a Python branch.
        t = torch.ones_like(C[..., :1])
        for _ in range(self.n_iter):
            a_next = self.prox(y - (y @ G - C) * step, threshold)
            t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = (t - 1.0) / t_next
            reset = ((y - a_next) * (a_next - a)).sum(dim=-1, keepdim=True) > 0
            beta = torch.where(reset, 0.0, beta)
            t = torch.where(reset, 1.0, t_next)
            y = a_next + beta * (a_next - a)
            a = a_next
        return a, scale

    def forward(self, x):
        """The pooled outputs: FISTA codes of ``x``, then the group pooling (pooling is
        homogeneous: the scaled codes are pooled, then scaled back)."""
        codes, scale = self._scaled_codes(x)
        return self.pool(codes) * scale

    @torch.no_grad()
    def refresh_step_(self):
        """Recompute ``step = 1 / L`` from the current (masked) dictionary, in place."""
        D = self.dictionary().double()
        L = torch.linalg.eigvalsh(D @ D.T)[-1]
        self.step.fill_(float(1.0 / L) if L > 0 else 1.0)
        return self

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, n_components={self.n_components}, "
            f"n_groups={self.n_groups}, n_iter={self.n_iter}, restart={self.restart}"
        )


def _inverse_softplus(value):
    # log(exp(v) - 1) written to stay finite for large v; v is clipped away from 0 where
    # the inverse diverges (a zero threshold is reached only in the limit).
    value = max(float(value), 1e-8)
    return value + math.log(-math.expm1(-value))


class FeedforwardLayer(_StructuredLayer):
    """Fast encoder with the learned structure (``mode="feedforward"``).

    ``pool(group_soft_threshold(x @ (W * mask)^T + b, softplus(rho)))``: a masked linear
    map initialised with the dictionary (bias at zero), a learnable threshold per group
    (softplus-parametrised so it stays positive) initialised at ``alpha``, then the group
    pooling. At initialisation this is one proximal-gradient step from zero with unit
    step (the exact codes when the atoms are orthonormal); it is meant to be fine-tuned.

    Parameters
    ----------
    components : Tensor of shape (n_components, n_features)
    mask : Tensor of bool, same shape
    alpha : float
    group_size : int
    positive : bool
    pooling : {"l2", "max", None}
    bias : bool, default=True
    """

    def __init__(self, components, mask, alpha, group_size=1, positive=False,
                 pooling="l2", bias=True):
        super().__init__()
        components = torch.as_tensor(components)
        mask = torch.as_tensor(mask, dtype=torch.bool, device=components.device)
        self._init_structure(mask, group_size, positive, pooling)
        self.linear = MaskedLinear(components, mask, bias=bias)
        self.threshold_param = nn.Parameter(
            components.new_full((self.n_groups,), _inverse_softplus(alpha))
        )

    @property
    def threshold(self):
        """The per-group thresholds ``softplus(threshold_param)``."""
        return F.softplus(self.threshold_param)

    def codes(self, x):
        """Codes before pooling, shape ``(*, n_components)``."""
        codes, scale = self._scaled_codes(x)
        return codes * scale

    def _scaled_codes(self, x):
        # each row divided by its scale s, the thresholds by s too (see UnrolledProxLayer)
        v = self.linear(x)
        scale = _row_scale(v)
        return self.prox(v / scale, self.threshold / scale), scale

    def forward(self, x):
        """The pooled outputs: thresholded masked linear map of ``x``, then the pooling."""
        codes, scale = self._scaled_codes(x)
        return self.pool(codes) * scale

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, n_components={self.n_components}, "
            f"n_groups={self.n_groups}"
        )


class AffinePreprocessing(nn.Module):
    """Fixed affine map ``x -> (x - mean) @ W + bias`` (all buffers, not trained)."""

    def __init__(self, mean=None, W=None, bias=None):
        super().__init__()
        # Absent parts are neutral buffers so forward has no optional branches.
        ref = next(t for t in (W, mean, bias) if t is not None)
        n_in = W.shape[0] if W is not None else ref.shape[0]
        n_out = W.shape[1] if W is not None else n_in
        self.register_buffer("mean", mean if mean is not None else ref.new_zeros(n_in))
        self.register_buffer("W", W if W is not None else torch.eye(n_in, dtype=ref.dtype))
        self.register_buffer("bias", bias if bias is not None else ref.new_zeros(n_out))

    def forward(self, x):
        """``(x - mean) @ W + bias``."""
        return (x - self.mean) @ self.W + self.bias

    def extra_repr(self):
        return f"in_features={self.W.shape[0]}, out_features={self.W.shape[1]}"


class StructuredNet(nn.Module):
    """The exported network: preprocessing, stacked structured layers, optional linear head.

    Attributes
    ----------
    preprocessing : AffinePreprocessing or nn.Identity
    layers : nn.ModuleList of UnrolledProxLayer or FeedforwardLayer
    head : nn.Linear or nn.Identity
    mode : {"exact", "feedforward"}
    n_features_in, n_features_out : int
    """

    def __init__(self, layers, *, preprocessing=None, head=None, mode="exact"):
        super().__init__()
        self.preprocessing = preprocessing if preprocessing is not None else nn.Identity()
        self.layers = nn.ModuleList(layers)
        self.head = head if head is not None else nn.Identity()
        self.mode = mode
        pre = self.preprocessing
        self.n_features_in = pre.W.shape[0] if isinstance(pre, AffinePreprocessing) else (
            self.layers[0].in_features
        )
        last = self.layers[-1]
        self.n_features_out = head.out_features if head is not None else last.out_features

    def features(self, x):
        """Output of the last structured layer (before the head).

        ``x`` of shape ``(*, n_features_in)`` is first cast to the network's dtype.
        """
        # static (the parameters' dtype): float16 or integer inputs are promoted
        x = x.to(next(p.dtype for p in self.parameters() if p.is_floating_point()))
        x = self.preprocessing(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x):
        """The network's output: logits with a head, otherwise the top layer's outputs."""
        return self.head(self.features(x))

    def extra_repr(self):
        return f"mode={self.mode!r}"
