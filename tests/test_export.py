"""Tests of the PyTorch export (sklearn_structlearn.export).

The float64 ground truth of ``mode="exact"`` is the NumPy run of the same unrolled
FISTA (``reference_forward``); independently, the codes are checked against the KKT
conditions of the group-lasso code problem.
"""

import copy
import io
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

from sklearn_structlearn.export import (
    LayerSpec,
    PreprocessingSpec,
    build_torch_module,
    fista_codes,
    layer_spec_from_estimator,
    layer_specs_from_estimator,
    preprocessing_spec_from_transformer,
    reference_forward,
)
from sklearn_structlearn.export._reference import group_soft_threshold, lipschitz_step, pool

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def make_spec(rng, n_components, n_features, group_size=1, positive=False, pooling="l2",
              alpha=0.2, density=0.6):
    """A random sparse dictionary with unit-norm atoms, like a fitted layer's."""
    D = rng.normal(size=(n_components, n_features))
    D *= rng.random((n_components, n_features)) < density
    D[:, 0] += 0.1 * (D[:, 0] == 0)  # no empty atom
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return LayerSpec(D, alpha=alpha, group_size=group_size, positive=positive, pooling=pooling)


def make_stack(rng, n_features=10):
    """Three stacked layers exercising every group size, sign constraint and pooling."""
    s1 = make_spec(rng, 12, n_features, group_size=2, positive=False, pooling="l2")
    s2 = make_spec(rng, 8, s1.n_outputs, group_size=4, positive=True, pooling="max", alpha=0.1)
    s3 = make_spec(rng, 5, s2.n_outputs, group_size=1, positive=False, pooling=None, alpha=0.05)
    return [s1, s2, s3]


def kkt_violation(X, D, A, alpha, group_size, positive):
    """Largest violation of the optimality conditions of the group-lasso code problem.

    With residual correlations ``r = (x - D^T a) D^T``: an active group needs
    ``r_g = alpha a_g / ||a_g||`` on its support (and ``r_j <= 0`` off it when positive),
    an inactive group needs ``||r_g|| <= alpha`` (``||max(r_g, 0)|| <= alpha`` when positive).
    """
    R = (X - A @ D) @ D.T
    n, K = A.shape
    worst = 0.0
    for i in range(n):
        for g in range(K // group_size):
            sl = slice(g * group_size, (g + 1) * group_size)
            a, r = A[i, sl], R[i, sl]
            norm = np.linalg.norm(a)
            if norm > 0:
                support = a != 0 if positive else np.ones_like(a, dtype=bool)
                worst = max(worst, np.abs(r[support] - alpha * a[support] / norm).max())
                if positive and (~support).any():
                    worst = max(worst, np.maximum(r[~support], 0).max())
            else:
                rr = np.maximum(r, 0) if positive else r
                worst = max(worst, np.linalg.norm(rr) - alpha)
    return worst


def rel_err(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    # The tensors here are tiny: intra-op threads only add synchronisation cost, which on a
    # loaded machine dominates (each 17x8 matmul waiting for a busy thread).
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # the inputs drawn with torch.randn must not depend on which tests ran before in this
    # worker: a row alone and the same row in a batch take different float32 matmul paths,
    # 1-2 ulp apart (~1% of random inputs exceed the 1e-7 bounds below by that much)
    torch.manual_seed(0)
    yield torch
    torch.set_num_threads(n_threads)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------------------
# NumPy side: specs, reference, builders' validation (no torch needed)
# --------------------------------------------------------------------------------------


def test_layer_spec_applies_mask_and_validates():
    D = np.arange(1.0, 7.0).reshape(2, 3)
    mask = np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)
    spec = LayerSpec(D, mask=mask, alpha=0.5, group_size=2, pooling="max")
    assert np.array_equal(spec.components, D * mask)
    assert (spec.n_components, spec.n_features, spec.n_groups, spec.n_outputs) == (2, 3, 1, 1)
    assert LayerSpec(D, pooling=None).n_outputs == 2
    assert LayerSpec(np.diag([1.0, 0.0])).mask.tolist() == [[True, False], [False, False]]

    with pytest.raises(ValueError, match="does not divide"):
        LayerSpec(D, group_size=3)
    with pytest.raises(ValueError, match="pooling"):
        LayerSpec(D, pooling="mean")
    with pytest.raises(ValueError, match="alpha"):
        LayerSpec(D, alpha=-1.0)
    with pytest.raises(ValueError, match="mask"):
        LayerSpec(D, mask=np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="2D"):
        LayerSpec(np.ones(3))


def test_reference_prox_and_pooling():
    V = np.array([[3.0, 4.0, 0.3, -0.4], [-3.0, 4.0, 0.0, 0.0]])
    out = group_soft_threshold(V, 1.0, 2)
    assert np.allclose(out, [[2.4, 3.2, 0, 0], [-2.4, 3.2, 0, 0]])
    out = group_soft_threshold(V, 1.0, 2, positive=True)
    assert np.allclose(out, [[2.4, 3.2, 0, 0], [0, 3.0, 0, 0]])
    assert np.allclose(group_soft_threshold(V, 0.5, 1), np.sign(V) * np.maximum(np.abs(V) - 0.5, 0))
    assert np.allclose(pool(V, 2, "l2"), [[5, 0.5], [5, 0]])
    assert np.allclose(pool(V, 2, "max"), [[4, 0.4], [4, 0]])
    assert pool(V, 2, None) is V


@pytest.mark.parametrize("group_size", [1, 2, 4])
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("restart", [True, False])
def test_reference_converges_to_kkt_point(rng, group_size, positive, restart):
    # alpha grows like sqrt(group_size) so that some groups are zero, others not.
    alpha = 0.6 * np.sqrt(group_size)
    spec = make_spec(rng, 8, 12, group_size=group_size, positive=positive, alpha=alpha)
    X = rng.normal(size=(6, 12))
    A = fista_codes(X, spec.components, spec.alpha, group_size, positive, n_iter=3000,
                    restart=restart)
    assert kkt_violation(X, spec.components, A, spec.alpha, group_size, positive) < 1e-8
    assert np.any(A == 0) and np.any(A != 0)  # the test exercises both kinds of groups


def test_reference_lasso_matches_sklearn(rng):
    # group_size=1 is exactly sklearn's lasso sparse coding (same alpha convention).
    from sklearn.decomposition import sparse_encode

    spec = make_spec(rng, 6, 10, alpha=0.2)
    X = rng.normal(size=(5, 10))
    ours = fista_codes(X, spec.components, spec.alpha, n_iter=5000)
    theirs = sparse_encode(X, spec.components, algorithm="lasso_cd", alpha=0.2, max_iter=10000)
    assert np.allclose(ours, theirs, atol=1e-5)


def test_preprocessing_specs_match_sklearn_transformers(rng):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X = rng.normal(size=(40, 6)) * np.arange(1, 7) + 3.0
    for tr in [
        StandardScaler(),
        StandardScaler(with_mean=False),
        PCA(n_components=4, random_state=0),
        PCA(n_components=4, whiten=True, random_state=0),
        make_pipeline(StandardScaler(), PCA(n_components=3, whiten=True, random_state=0)),
        make_pipeline(FunctionTransformer(), StandardScaler(), "passthrough"),
    ]:
        tr.fit(X)
        spec = preprocessing_spec_from_transformer(tr)
        assert np.allclose(spec.apply(X), tr.transform(X), atol=1e-10), tr
    assert preprocessing_spec_from_transformer(None) is None
    assert preprocessing_spec_from_transformer("passthrough") is None
    with pytest.raises(TypeError, match="affine"):
        from sklearn.preprocessing import QuantileTransformer

        preprocessing_spec_from_transformer(QuantileTransformer(n_quantiles=10).fit(X))


def test_preprocessing_spec_validation_and_composition(rng):
    a = PreprocessingSpec(mean=rng.normal(size=4), W=rng.normal(size=(4, 3)), bias=np.ones(3))
    b = PreprocessingSpec(mean=rng.normal(size=3), W=rng.normal(size=(3, 2)))
    X = rng.normal(size=(5, 4))
    assert np.allclose(a.then(b).apply(X), b.apply(a.apply(X)))
    with pytest.raises(ValueError, match="compose"):
        b.then(a)
    with pytest.raises(ValueError, match="mean"):
        PreprocessingSpec(mean=np.ones(3), W=np.ones((4, 2)))
    with pytest.raises(ValueError, match="needs"):
        PreprocessingSpec()


def test_layer_spec_from_estimator_duck_typed(rng):
    from sklearn.exceptions import NotFittedError

    D = rng.normal(size=(6, 5))
    D[D < 0] = 0
    est = SimpleNamespace(components_=D, connectivity_=D != 0, alpha_=0.3, alpha="auto",
                          group_size=3, positive_code=True, pooling="max")
    spec = layer_spec_from_estimator(est)
    assert (spec.alpha, spec.group_size, spec.positive, spec.pooling) == (0.3, 3, True, "max")
    assert np.array_equal(spec.mask, D != 0)
    deep = SimpleNamespace(layers_=[est, est])
    specs, pre = layer_specs_from_estimator(deep)
    assert len(specs) == 2 and pre is None
    with pytest.raises(NotFittedError):
        layer_spec_from_estimator(SimpleNamespace(alpha=1.0))
    with pytest.raises(ValueError, match="alpha_"):
        layer_spec_from_estimator(SimpleNamespace(components_=D, alpha="auto"))


def test_build_errors(rng):
    s1 = make_spec(rng, 4, 6, group_size=2)
    s_bad = make_spec(rng, 4, 3)
    with pytest.raises(ValueError, match="mode"):
        build_torch_module([s1], mode="fast")
    with pytest.raises(ValueError, match="n_iter"):
        build_torch_module([s1], n_iter=0)
    with pytest.raises(ValueError, match="n_classes"):
        build_torch_module([s1], n_classes=0)
    with pytest.raises(ValueError, match="empty"):
        build_torch_module([])
    with pytest.raises(ValueError, match="outputs 2 features but layer 1 expects 3"):
        build_torch_module([s1, s_bad])
    with pytest.raises(ValueError, match="preprocessing outputs"):
        build_torch_module([s1], preprocessing=PreprocessingSpec(W=np.ones((3, 5))))
    with pytest.raises(TypeError, match="LayerSpec"):
        build_torch_module([s1.components])


def test_package_imports_without_torch():
    # Block torch: the package and the export specs import, building explains the fix.
    code = textwrap.dedent(
        """
        import sys

        class BlockTorch:  # a finder, not sys.modules["torch"] = None: scipy probes sys.modules
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("No module named 'torch' (blocked by the test)")

        sys.meta_path.insert(0, BlockTorch())
        import numpy as np
        import sklearn_structlearn
        from sklearn_structlearn.export import LayerSpec, build_torch_module, reference_forward
        spec = LayerSpec(np.eye(2))
        reference_forward(np.ones((1, 2)), spec, n_iter=3)
        try:
            build_torch_module([spec])
        except ImportError as exc:
            assert "pip install sklearn-structlearn[torch]" in str(exc), exc
        else:
            raise AssertionError("no ImportError")
        try:
            from sklearn_structlearn.export import MaskedLinear
        except ImportError as exc:
            assert "sklearn-structlearn[torch]" in str(exc), exc
        else:
            raise AssertionError("no ImportError")
        assert "torch" not in sys.modules
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------------------
# mode="exact": equivalence with the NumPy reference
# --------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("n_samples", [1, 17])
@pytest.mark.parametrize(
    "group_size, positive, pooling",
    [(1, False, "l2"), (2, True, "l2"), (4, False, "max"), (2, False, None), (1, True, "max")],
)
@pytest.mark.parametrize("restart", [True, False])
def test_exact_single_layer_matches_reference(torch, rng, n_samples, group_size, positive, pooling,
                                              restart):
    spec = make_spec(rng, 8, 10, group_size=group_size, positive=positive, pooling=pooling)
    X = rng.normal(size=(n_samples, 10))
    ref = reference_forward(X, spec, n_iter=60, restart=restart)

    net64 = build_torch_module([spec], n_iter=60, dtype=torch.float64, restart=restart)
    out64 = net64(torch.from_numpy(X)).detach().numpy()
    assert out64.shape == (n_samples, spec.n_outputs)
    assert rel_err(out64, ref) < 1e-10

    net32 = build_torch_module([spec], mode="exact", n_iter=60, restart=restart)
    out32 = net32(torch.from_numpy(X).float())
    assert out32.dtype == torch.float32
    assert rel_err(out32.detach().double().numpy(), ref) < 1e-4


@pytest.mark.torch
@pytest.mark.parametrize("n_samples", [1, 9])
@pytest.mark.parametrize("restart", [True, False])
def test_exact_stacked_layers_with_preprocessing_match_reference(torch, rng, n_samples, restart):
    specs = make_stack(rng, n_features=10)
    pre = PreprocessingSpec(mean=rng.normal(size=7), W=rng.normal(size=(7, 10)) / 3)
    X = rng.normal(size=(n_samples, 7))
    ref = reference_forward(X, specs, preprocessing=pre, n_iter=80, restart=restart)
    assert np.abs(ref).max() > 0

    kw = dict(mode="exact", preprocessing=pre, n_iter=80, restart=restart)
    net64 = build_torch_module(specs, dtype=torch.float64, **kw)
    assert len(net64.layers) == 3 and net64.n_features_in == 7 and net64.n_features_out == 5
    assert rel_err(net64(torch.from_numpy(X)).detach().numpy(), ref) < 1e-10

    net32 = build_torch_module(specs, **kw)
    assert rel_err(net32(torch.from_numpy(X).float()).detach().double().numpy(), ref) < 1e-4


@pytest.mark.torch
@pytest.mark.parametrize("restart", [True, False])
@pytest.mark.parametrize("group_size, positive", [(1, False), (2, True), (4, False)])
def test_exact_codes_satisfy_kkt_with_enough_iterations(torch, rng, group_size, positive, restart):
    alpha = 0.6 * np.sqrt(group_size)
    spec = make_spec(rng, 8, 12, group_size, positive, pooling=None, alpha=alpha)
    X = rng.normal(size=(5, 12))
    net = build_torch_module([spec], n_iter=1500, dtype=torch.float64, restart=restart)
    with torch.no_grad():
        A = net(torch.from_numpy(X)).numpy()
    assert kkt_violation(X, spec.components, A, spec.alpha, group_size, positive) < 1e-4


@pytest.mark.torch
def test_exact_layer_buffers_and_refresh_step(torch, rng):
    spec = make_spec(rng, 6, 5, group_size=3)
    net = build_torch_module([spec], mode="exact", n_iter=5)
    layer = net.layers[0]
    assert set(dict(layer.named_parameters())) == {"weight"}
    assert {"mask", "groups", "alpha", "step"} <= set(dict(layer.named_buffers()))
    assert layer.mask.dtype == torch.bool
    assert layer.groups.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.isclose(layer.step.item(), lipschitz_step(spec.components), rtol=1e-6)
    with torch.no_grad():
        layer.weight.mul_(2.0)
    layer.refresh_step_()
    assert np.isclose(layer.step.item(), lipschitz_step(2 * spec.components), rtol=1e-5)


# --------------------------------------------------------------------------------------
# Training: masks survive, gradients finite
# --------------------------------------------------------------------------------------


def _train(torch, net, X, y, n_steps=5):
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(n_steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(X), y)
        loss.backward()
        for p in net.parameters():
            assert torch.isfinite(p.grad).all()
        opt.step()
    return loss


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["feedforward", "exact"])
def test_masks_survive_training_and_gradients_are_finite(torch, rng, mode):
    torch.manual_seed(0)
    specs = make_stack(rng)
    specs[-1] = make_spec(rng, 6, specs[1].n_outputs, group_size=2, pooling="l2", alpha=0.05)
    net = build_torch_module(specs, mode=mode, n_classes=3, n_iter=10)
    X = torch.from_numpy(rng.normal(size=(16, 10))).float()
    X[0] = 0.0  # all codes zero for this row: the pooling/threshold gradients must stay finite
    y = torch.from_numpy(rng.integers(0, 3, size=16))
    assert net(X).shape == (16, 3)

    before = [p.detach().clone() for p in net.parameters()]
    _train(torch, net, X, y)
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))

    for layer, spec in zip(net.layers, specs):
        weight = layer.linear.weight if mode == "feedforward" else layer.weight
        mask = torch.from_numpy(spec.mask)
        assert torch.equal(layer.mask, mask)
        assert (weight.detach()[~mask] == 0).all()  # pruned connections stay exactly zero
        assert (weight.detach()[mask] != 0).any()
        if mode == "feedforward":
            assert (layer.threshold > 0).all()


@pytest.mark.torch
def test_feedforward_structure_and_initialisation(torch, rng):
    specs = make_stack(rng)
    net = build_torch_module(specs, mode="feedforward", n_classes=4, dtype=torch.float64)
    sd = net.state_dict()
    for i, spec in enumerate(specs):
        assert f"layers.{i}.mask" in sd and f"layers.{i}.linear.mask" in sd
        assert f"layers.{i}.groups" in sd
        assert f"layers.{i}.linear.weight" in dict(net.named_parameters())
        assert f"layers.{i}.mask" not in dict(net.named_parameters())
        layer = net.layers[i]
        expected = torch.full((spec.n_groups,), spec.alpha, dtype=torch.float64)
        assert torch.allclose(layer.threshold, expected)
    assert net.head.out_features == 4 and net.head.in_features == specs[-1].n_outputs

    # At initialisation each layer is one unit-step proximal-gradient step from zero.
    X = rng.normal(size=(6, 10))
    Z = X
    for spec in specs:
        Z = pool(group_soft_threshold(Z @ spec.components.T, spec.alpha, spec.group_size,
                                      spec.positive), spec.group_size, spec.pooling)
    assert np.allclose(net.features(torch.from_numpy(X)).detach().numpy(), Z, atol=1e-12)


# --------------------------------------------------------------------------------------
# Portability: state_dict, dtype/device moves, torch.export, ONNX
# --------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
def test_state_dict_round_trip(torch, rng, mode):
    torch.manual_seed(0)
    specs = make_stack(rng)
    net = build_torch_module(specs, mode=mode, n_classes=2, n_iter=8)
    X = torch.from_numpy(rng.normal(size=(8, 10))).float()
    _train(torch, net, X, torch.from_numpy(rng.integers(0, 2, size=8)), n_steps=2)

    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    fresh = build_torch_module(specs, mode=mode, n_classes=2, n_iter=8)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh(X), net(X))


@pytest.mark.torch
def test_to_float64_moves_parameters_and_buffers(torch, rng):
    specs = make_stack(rng)
    X = rng.normal(size=(4, 10))
    pre = PreprocessingSpec(mean=np.zeros(10))
    net = build_torch_module(specs, mode="exact", preprocessing=pre, n_iter=30)
    out32 = net(torch.from_numpy(X).float()).detach().double().numpy()
    net = net.to(torch.float64)
    for name, t in list(net.named_parameters()) + list(net.named_buffers()):
        if name.endswith("mask"):
            assert t.dtype == torch.bool
        elif name.endswith("groups"):
            assert t.dtype == torch.int64
        else:
            assert t.dtype == torch.float64, name
    out64 = net(torch.from_numpy(X))
    assert out64.dtype == torch.float64
    assert rel_err(out64.detach().numpy(), out32) < 1e-4


def _small_net(rng, mode):
    s1 = make_spec(rng, 8, 6, group_size=2, pooling="l2")
    s2 = make_spec(rng, 4, 4, group_size=2, positive=True, pooling="max")
    pre = PreprocessingSpec(mean=rng.normal(size=6))
    return build_torch_module([s1, s2], mode=mode, preprocessing=pre, n_classes=3, n_iter=3).eval()


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
def test_torch_export_dynamic_batch(torch, rng, mode):
    net = _small_net(rng, mode)
    batch = torch.export.Dim("batch")
    ep = torch.export.export(net, (torch.randn(3, 6),), dynamic_shapes={"x": {0: batch}})
    for n in (1, 7):
        x = torch.randn(n, 6)
        assert torch.allclose(ep.module()(x), net(x), rtol=1e-6, atol=1e-7)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::FutureWarning")  # raised inside torch.onnx's exporter
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
def test_onnx_export_runs_in_onnxruntime(torch, rng, tmp_path, mode):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")  # torch.onnx's exporter needs it
    ort = pytest.importorskip("onnxruntime")
    net = _small_net(rng, mode)
    path = tmp_path / f"{mode}.onnx"
    torch.onnx.export(
        net, (torch.randn(3, 6),), str(path), input_names=["x"], output_names=["y"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 7):
        x = torch.randn(n, 6)
        (got,) = session.run(None, {"x": x.numpy()})
        assert got.shape == (n, 3)
        np.testing.assert_allclose(got, net(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    # bad input behaves as in eager mode (see the tests below)
    x = _bad_rows(torch, 6)
    (got,) = session.run(None, {"x": x.numpy()})
    _check_bad_rows(got, net(x[[0, 2, 5]]).detach())
    # regression: an empty batch crashed ("cannot reshape tensor of 0 elements")
    (empty,) = session.run(None, {"x": x[:0].numpy()})
    assert empty.shape == (0, 3)
    big = (x[[0, 2, 5]] * 1e30).numpy()
    np.testing.assert_allclose(session.run(None, {"x": big})[0],
                               net(torch.from_numpy(big)).detach(), rtol=1e-4)


# --------------------------------------------------------------------------------------
# Bad input is never hidden: the same behaviour in eager mode, torch.export and ONNX (no
# check depends on the data, so an exported graph drops none)
# --------------------------------------------------------------------------------------


def _bad_rows(torch, n_features):
    """A batch with good rows 0, 2 and 5, a NaN row, a +inf row and a -inf row."""
    x = torch.randn(6, n_features)
    x[1, 2] = float("nan")
    x[3, 0] = float("inf")
    x[4, n_features - 1] = -float("inf")
    return x


def _check_bad_rows(out, reference):
    # regression: a NaN or inf row gave an all-zero feature row (with a head: a confident
    # prediction); it now gives NaN everywhere, and the other rows are untouched
    out = np.asarray(out)
    assert np.all(np.isnan(out[[1, 3, 4]]))
    # float32 products over a batch of 6 and of 3 rows may sum in a different order (BLAS
    # blocking), and the exact mode's 30 iterations amplify that rounding: 1e-4, not 1e-5
    np.testing.assert_allclose(out[[0, 2, 5]], reference, rtol=1e-4, atol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
@pytest.mark.parametrize("head", [None, 3])
def test_non_finite_rows_give_nan_rows(torch, rng, mode, head):
    specs = make_stack(rng)
    pre = PreprocessingSpec(mean=rng.normal(size=10))
    net = build_torch_module(specs, mode=mode, preprocessing=pre, n_classes=head, n_iter=30)
    x = _bad_rows(torch, 10)
    with torch.no_grad():
        _check_bad_rows(net(x), net(x[[0, 2, 5]]))
        if mode == "exact":
            codes = net.layers[0].codes(net.preprocessing(x))
            assert np.all(np.isnan(codes[[1, 3, 4]].numpy()))


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
def test_bad_input_behaves_alike_under_torch_export(torch, rng, mode):
    net = _small_net(rng, mode)
    ep = torch.export.export(net, (torch.randn(3, 6),),
                             dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    x = _bad_rows(torch, 6)
    _check_bad_rows(ep.module()(x).detach(), net(x[[0, 2, 5]]).detach())
    assert tuple(ep.module()(x[:0]).shape) == (0, 3)
    big = x[[0, 2, 5]] * 1e30
    np.testing.assert_allclose(ep.module()(big).detach(), net(big).detach(), rtol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
@pytest.mark.parametrize("scale", [1e-35, 1e-30, 1e-20, 1e20, 1e30, 1e35])
def test_float32_rows_far_from_unit_scale(torch, rng, mode, scale):
    # regression: finite float32 rows above ~1e19 gave zeros (squares overflowed). Coding is
    # homogeneous: with every penalty scaled like the data, the outputs scale alike.
    specs = make_stack(rng)
    scaled = [LayerSpec(s.components, alpha=s.alpha * scale, group_size=s.group_size,
                        positive=s.positive, pooling=s.pooling) for s in specs]
    x = torch.randn(7, 10)
    unit = build_torch_module(specs, mode=mode, n_iter=50)
    net = build_torch_module(scaled, mode=mode, n_iter=50)
    if mode == "feedforward":  # same learnable thresholds, scaled
        for a, b in zip(net.layers, unit.layers):
            with torch.no_grad():  # the inverse of softplus, written to stay finite
                v = b.threshold.double() * scale
                a.threshold_param.copy_(v + torch.log(-torch.expm1(-v)))
    with torch.no_grad():
        expected = unit(x).double().numpy()
        out = net(x * scale).double().numpy() / scale
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, atol=1e-4 * np.abs(expected).max())
    if mode == "exact" and 1e-30 <= scale <= 1e30:  # against the float64 NumPy reference
        ref = reference_forward(x.double().numpy() * scale, scaled, n_iter=50) / scale
        np.testing.assert_allclose(out, ref, atol=1e-4 * np.abs(ref).max())


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["exact", "feedforward"])
def test_input_dtype_and_shape(torch, rng, mode):
    net = _small_net(rng, mode)
    x = torch.randn(4, 6)
    with torch.no_grad():
        out = net(x)
        # regression: float16 gave all zeros; other dtypes are cast to the network's too
        np.testing.assert_allclose(net(x.half()), net(x.half().float()), rtol=1e-6)
        np.testing.assert_array_equal(net(x.double()), out)
        np.testing.assert_array_equal(net(torch.arange(12).reshape(2, 6)),
                                      net(torch.arange(12.0).reshape(2, 6)))
        # regression: a 3-d input gave a wrongly shaped result in exact mode; leading
        # dimensions are batch dimensions, as in nn.Linear
        np.testing.assert_allclose(net(x.reshape(2, 2, 6)), out.reshape(2, 2, 3),
                                   rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(net(x[0]), out[0], rtol=1e-6, atol=1e-7)
        # regression: an empty batch crashed
        assert tuple(net(x[:0]).shape) == (0, 3)
        assert tuple(net(x[:0].reshape(0, 5, 6)).shape) == (0, 5, 3)
        assert net(x).dtype == torch.float32


# --------------------------------------------------------------------------------------
# Equivalence with the estimator (once the core layer is available)
# --------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.slow
def test_exact_module_matches_layer_transform_on_digits(torch):
    # The documented contract: a default-fitted layer exported with n_iter=1000 reproduces
    # transform to 1e-3 relative in float32 (measured: 7e-5). Since the "auto" penalty
    # targets 90% explained variance (issue 12), the default n_iter=300 is not enough for
    # it (measured 5e-2: the less penalised codes of coherent, uncentred atoms converge
    # slower under FISTA).
    sl = pytest.importorskip("sklearn_structlearn")
    if not hasattr(sl, "GroupSparseCodingLayer"):
        pytest.skip("GroupSparseCodingLayer not available yet")
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    est = sl.GroupSparseCodingLayer(random_state=0).fit(X[:300])
    net = build_torch_module([layer_spec_from_estimator(est)], mode="exact", n_iter=1000)
    assert net.layers[0].n_iter == 1000
    X_test = torch.from_numpy(X[300:400]).float()
    with torch.no_grad():
        pooled = net(X_test).double().numpy()
        codes = net.layers[0].codes(X_test).double().numpy()
    assert rel_err(pooled, est.transform(X[300:400])) < 1e-3
    assert rel_err(codes, est.encode(X[300:400])) < 1e-3


@pytest.fixture(scope="module")
def digits_learners():
    """DeepStructureLearners with one and two layers, fitted on 300 digits (~3 s each)."""
    from sklearn_structlearn import DeepStructureLearner
    from sklearn_structlearn.datasets import load_digits_images

    X, _ = load_digits_images()
    learners = {}
    for depth in (1, 2):
        # depth_tol=-inf keeps the second layer whatever its entropy gain.
        learners[depth] = DeepStructureLearner(
            max_depth=depth, n_components=32, group_size=4, depth_tol=-np.inf, max_iter=5,
            random_state=0, n_jobs=1,
        ).fit(X[:300])
    return learners, X[300:400]


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("n_samples", [1, 40])
def test_exact_deep_learner_matches_transform(torch, digits_learners, depth, dtype_name,
                                              n_samples):
    # The issue-4 contract: to_torch(mode="exact") reproduces DeepStructureLearner.transform
    # (preprocessing included) for one and several layers, both dtypes, any batch size.
    learners, X_test = digits_learners
    learner = learners[depth]
    assert learner.n_layers_ == depth
    X = X_test[:n_samples].astype(dtype_name)
    # transform is solved to a relative duality gap of transform_tol=1e-6, which bounds the
    # objective, not the codes: on the second layer (32 atoms in 8 dimensions, singular
    # Gram matrix) codes at that gap differ from the optimum by up to ~1e-4. The export is
    # compared with a transform solved to 1e-10 (a copy: the fixture is shared).
    reference = copy.deepcopy(learner)
    for layer in reference.layers_:
        layer.transform_tol = 1e-10
        layer.transform_max_iter = 100_000
    expected = reference.transform(X)
    assert np.count_nonzero(expected) > 0
    net = learner.to_torch(mode="exact", dtype=getattr(torch, dtype_name))
    assert len(net.layers) == depth
    with torch.no_grad():
        got = net(torch.from_numpy(X))
    assert got.dtype == getattr(torch, dtype_name)
    assert rel_err(got.numpy().astype(np.float64), expected) < (1e-5 if dtype_name == "float64"
                                                                else 1e-4)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_deep_learner_preprocessing_read_in_one_place(torch, digits_learners):
    # to_torch and layer_specs_from_estimator share one reading of the preprocessing.
    from sklearn.base import clone

    learners, X_test = digits_learners
    learner = learners[1]
    specs, pre = layer_specs_from_estimator(learner)
    assert np.allclose(pre.apply(X_test), learner._preprocess(X_test.astype(np.float64)))
    net = learner.to_torch(mode="feedforward", dtype=torch.float64)
    assert np.array_equal(net.preprocessing.W.numpy(), pre.W)
    # preprocessing=None exports no preprocessing stage at all (not an identity matrix)
    bare = clone(learner).set_params(preprocessing=None).fit(X_test)
    assert layer_specs_from_estimator(bare)[1] is None
    assert isinstance(bare.to_torch(mode="feedforward").preprocessing, torch.nn.Identity)
