"""Property tests of the group soft-threshold, the prox every solver is built on.

``group_soft_threshold(v, t, positive)`` must return the unique minimiser of the
1-strongly convex function ``f(w) = 1/2 ||w - v||^2 + t ||w||_2`` (over ``w >= 0`` when
``positive``). The tests check that definition directly (against arbitrary competitors and
a derivative-free scipy minimisation), the optimality (subgradient) conditions, and the
textbook consequences: shrinkage, firm non-expansiveness, zero below the threshold.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize

from sklearn_structlearn._solvers import group_soft_threshold

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
thresholds = st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False)
positives = st.booleans()


def vectors(size=None):
    return arrays(np.float64, size if size is not None else st.integers(1, 6), elements=finite)


@st.composite
def vector_pairs(draw):
    """Two vectors of the same (random) length."""
    n = draw(st.integers(1, 6))
    return draw(vectors(n)), draw(vectors(n))


def prox(v, t, positive):
    return group_soft_threshold(np.ascontiguousarray(v, dtype=np.float64), float(t),
                                bool(positive))


def prox_objective(w, v, t):
    return 0.5 * np.sum((w - v) ** 2) + t * np.linalg.norm(w)


def _scale(v, t):
    """Magnitude of the problem, for rounding-level tolerances."""
    return 1.0 + np.linalg.norm(v) ** 2 + t**2


@given(pair=vector_pairs(), t=thresholds, positive=positives)
def test_prox_beats_every_competitor_by_strong_convexity(pair, t, positive):
    # w minimises the 1-strongly convex f iff f(z) >= f(w) + 1/2 ||z - w||^2 for every
    # feasible z: the definition of the prox, checked against an arbitrary competitor
    v, z = pair
    if positive:
        z = np.abs(z)
    w = prox(v, t, positive)
    lhs = prox_objective(z, v, t)
    rhs = prox_objective(w, v, t) + 0.5 * np.sum((z - w) ** 2)
    assert lhs >= rhs - 1e-12 * (_scale(v, t) + np.sum(z**2))


@given(v=vectors(), t=thresholds, positive=positives)
def test_prox_matches_derivative_free_minimisation(v, t, positive):
    # brute force: Powell (no gradients, so the kink at 0 is no obstacle) from two starts;
    # the prox value can never be beaten, and strong convexity turns equal values into
    # equal points
    w = prox(v, t, positive)
    f_w = prox_objective(w, v, t)

    def f(z):
        if positive:
            z = np.maximum(z, 0.0)  # minimising over z >= 0 through a clipping map
        return prox_objective(z, v, t)

    best = min(
        (minimize(f, x0, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14})
         for x0 in (v.copy(), np.zeros_like(v) + 0.1)),
        key=lambda res: res.fun,
    )
    assert f_w <= best.fun + 1e-12 * _scale(v, t)
    z = np.maximum(best.x, 0.0) if positive else best.x
    # f(z) - f(w) >= 1/2 ||z - w||^2 bounds the distance by the (small) value gap
    assert np.linalg.norm(z - w) <= np.sqrt(2 * max(best.fun - f_w, 0.0)) + 1e-6 * _scale(v, t)


@given(v=vectors(), t=thresholds, positive=positives)
def test_prox_optimality_conditions(v, t, positive):
    # 0 in w - v + t * subgradient(||.||)(w) (+ normal cone of w >= 0)
    w = prox(v, t, positive)
    tol = 1e-12 * _scale(v, t)
    norm = np.linalg.norm(w)
    if norm == 0:
        # 0 is optimal iff v lies in the threshold ball (of its positive part)
        vv = np.maximum(v, 0.0) if positive else v
        assert np.linalg.norm(vv) <= t + tol
        return
    stationarity = w - v + t * w / norm
    if positive:
        support = w > 0
        assert np.all(w >= 0)
        assert_allclose(stationarity[support], 0.0, atol=1e-9 * _scale(v, t))
        # at w_j = 0 the multiplier of w_j >= 0 is -v_j, which must be >= 0
        assert np.all(v[~support] <= tol)
    else:
        assert_allclose(stationarity, 0.0, atol=1e-9 * _scale(v, t))


@given(v=vectors(), t=thresholds, positive=positives)
def test_prox_shrinks_along_the_input(v, t, positive):
    w = prox(v, t, positive)
    vv = np.maximum(v, 0.0) if positive else v
    assert np.linalg.norm(w) <= np.linalg.norm(v) * (1 + 1e-15)
    # the shrinkage is a rescaling of (the positive part of) v: w = c v, c in [0, 1],
    # by exactly the threshold: ||w|| = max(||v|| - t, 0)
    assert_allclose(np.linalg.norm(w), max(np.linalg.norm(vv) - t, 0.0),
                    atol=1e-12 * _scale(v, t))
    assert np.all(w * vv >= 0)
    assert np.all(np.abs(w) <= np.abs(vv) * (1 + 1e-15))


@given(pair=vector_pairs(), t=thresholds, positive=positives)
def test_prox_is_firmly_nonexpansive(pair, t, positive):
    v1, v2 = pair
    d = prox(v1, t, positive) - prox(v2, t, positive)
    tol = 1e-12 * (_scale(v1, t) + _scale(v2, t))
    # firm non-expansiveness (every prox of a convex function has it) ...
    assert np.dot(d, d) <= np.dot(d, v1 - v2) + tol
    # ... implies plain non-expansiveness
    assert np.linalg.norm(d) <= np.linalg.norm(v1 - v2) + tol


@given(v=vectors(), positive=positives, factor=st.floats(1.0 + 1e-12, 10.0))
def test_prox_is_zero_below_the_threshold(v, positive, factor):
    # (a margin above 1: np.linalg.norm and the kernel may round ||v|| differently)
    t = factor * np.linalg.norm(v)
    assert_array_equal(prox(v, t, positive), 0.0)


@pytest.mark.parametrize("positive", [False, True])
def test_prox_is_zero_at_the_threshold(positive):
    # ||(3, 4)|| = 5 exactly: the boundary itself maps to zero
    assert_array_equal(prox(np.array([3.0, 4.0]), 5.0, positive), 0.0)
    assert_array_equal(prox(np.array([-3.0, 4.0]), 4.0, True), 0.0)


@given(v=vectors(), t=thresholds)
def test_positive_prox_is_nonnegative_and_ignores_negative_parts(v, t):
    w = prox(v, t, True)
    assert np.all(w >= 0)
    assert_array_equal(w[v <= 0], 0.0)
    # the negative entries do not count towards the group norm
    assert_allclose(w, prox(np.maximum(v, 0.0), t, False), rtol=1e-15, atol=0)


@given(x=finite, t=thresholds, positive=positives)
def test_prox_of_one_coordinate_is_the_soft_threshold(x, t, positive):
    expected = np.sign(x) * max(abs(x) - t, 0.0)
    if positive:
        expected = max(expected, 0.0)
    assert_allclose(prox(np.array([x]), t, positive), [expected], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("positive", [False, True])
def test_prox_zero_threshold_is_identity_or_projection(positive):
    v = np.array([1.5, -2.0, 0.0, 3.0])
    expected = np.maximum(v, 0.0) if positive else v
    assert_array_equal(prox(v, 0.0, positive), expected)


def test_prox_does_not_modify_its_input():
    v = np.array([3.0, -4.0])
    w = prox(v, 1.0, True)
    assert_array_equal(v, [3.0, -4.0])
    assert_allclose(w, [2.0, 0.0])


@given(V=arrays(np.float32, st.tuples(st.integers(0, 5), st.integers(1, 6)),
                elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))
def test_group_norms_of_single_units_are_their_magnitudes(V):
    # group_size=1 takes a shortcut (|v|, no squares); it must equal the general formula
    # sqrt(sum v^2) in float64 -- also where squaring in float32 would overflow
    from sklearn_structlearn._groups import group_norms

    norms = group_norms(V, 1)
    assert norms.dtype == np.float64 and norms.shape == V.shape
    assert_allclose(norms, np.sqrt(V.astype(np.float64) ** 2), rtol=1e-15)
    assert np.isfinite(norms).all()
