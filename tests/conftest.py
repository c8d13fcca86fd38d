"""Shared test configuration: a fast hypothesis profile and small random problems."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Numba kernels can be slow on their first call (cache loading), so no per-example
# deadline; a moderate number of examples keeps the property tests fast. Derandomized, so
# that the default run is reproducible (known bugs have their own deterministic tests); no
# example database: the suite must not write into the source tree.
settings.register_profile(
    "structlearn",
    deadline=None,
    max_examples=25,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# a longer, random exploration: HYPOTHESIS_PROFILE=structlearn-thorough pytest tests/...
settings.register_profile("structlearn-thorough", parent=settings.get_profile("structlearn"),
                          max_examples=500, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "structlearn"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def blas_threads():
    """The thread counts of the loaded BLAS libraries, sorted (a callable: read it when due)."""
    from threadpoolctl import threadpool_info

    return lambda: sorted(info["num_threads"] for info in threadpool_info()
                          if info["user_api"] == "blas")


@pytest.fixture
def make_problem():
    """Factory of small random code problems (see ``_random_problem``)."""
    return _random_problem


def _random_problem(rng, n_samples=8, n_features=12, n_components=8, *, normalize=True):
    """Gaussian data ``X`` and a Gaussian dictionary ``D`` (rows normalised by default).

    With ``n_components <= n_features`` the dictionary has full row rank almost surely, so
    every code problem is strongly convex and its solution unique: tests may compare codes,
    not only objective values.
    """
    X = rng.standard_normal((n_samples, n_features))
    D = rng.standard_normal((n_components, n_features))
    if normalize:
        D /= np.linalg.norm(D, axis=1, keepdims=True)
    return X, D
