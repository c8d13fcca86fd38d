"""Numba kernels. Only the inner epochs live here; stopping, warnings and verbosity are the
callers' business (plain Python), and nothing here knows about scikit-learn."""

from ._prox import group_soft_threshold
from ._encode import encode_bcd
from ._dictionary import dictionary_bcd

__all__ = ["group_soft_threshold", "encode_bcd", "dictionary_bcd"]
