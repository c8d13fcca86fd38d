"""Export learned structures to PyTorch.

The plain-NumPy specs (:class:`LayerSpec`, :class:`PreprocessingSpec`), the NumPy
reference of the exact forward pass (:func:`reference_forward`) and the builders are
importable without torch; torch is imported only when a module is built, or when one of
the module classes (``MaskedLinear``, ``UnrolledProxLayer``, ...) is accessed.

Tolerances (``mode="exact"``): the module runs the same unrolled FISTA as
:func:`reference_forward`; they agree to ~1e-13 relative in float64 and ~2e-5 in
float32. With ``n_iter=1000`` (adaptive momentum restart) it matches ``transform`` of a
default-fitted layer on the digits to ~1e-4 relative in float32 (tested at 1e-3); the
default ``n_iter=DEFAULT_N_ITER=300`` reaches that on sparser codes (the learners of the
export tests), not on the default layer's (5e-2 measured). Exported graphs (``torch.export``, ONNX) are
unrolled, so their size and export time grow linearly with ``n_iter``.
"""

from ._build import (
    build_torch_module,
    estimator_to_torch,
    layer_spec_from_estimator,
    layer_specs_from_estimator,
    preprocessing_spec_from_transformer,
)
from ._reference import (
    DEFAULT_N_ITER,
    DEFAULT_RESTART,
    LayerSpec,
    PreprocessingSpec,
    fista_codes,
    reference_forward,
)

_TORCH_MODULES = (
    "MaskedLinear",
    "GroupSoftThreshold",
    "GroupPool",
    "UnrolledProxLayer",
    "FeedforwardLayer",
    "AffinePreprocessing",
    "StructuredNet",
)

__all__ = [
    "DEFAULT_N_ITER",
    "DEFAULT_RESTART",
    "LayerSpec",
    "PreprocessingSpec",
    "build_torch_module",
    "estimator_to_torch",
    "fista_codes",
    "layer_spec_from_estimator",
    "layer_specs_from_estimator",
    "preprocessing_spec_from_transformer",
    "reference_forward",
    *_TORCH_MODULES,
]


def __getattr__(name):
    # PEP 562: the torch module classes are loaded on first access only, so that
    # importing this package never imports torch.
    if name in _TORCH_MODULES:
        from ._build import _import_torch

        _import_torch()
        from . import _modules

        return getattr(_modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
