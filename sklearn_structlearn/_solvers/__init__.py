"""Numba kernels. Only the inner epochs live here; stopping, warnings and verbosity are the
callers' business (plain Python), and nothing here knows about scikit-learn."""

import os

from ._cache import drop_stale_kernels
from ._prox import group_soft_threshold
from ._encode import encode_bcd_nonneg, encode_bcd_signed, encode_lasso
from ._dictionary import dictionary_bcd

# before any kernel is called, hence before numba reads their cache (see _cache)
drop_stale_kernels(encode_lasso, os.path.dirname(__file__))

__all__ = ["group_soft_threshold", "encode_lasso", "encode_bcd_signed", "encode_bcd_nonneg",
           "dictionary_bcd"]
