"""Torch shared-weight layers on a recovered topology (export._shared)."""

import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

from sklearn_structlearn.export import _shared  # noqa: E402
from sklearn_structlearn.export._shared import (  # noqa: E402
    LatticeConv,
    LatticePool,
    SharedWeightNet,
    build_shared_weight_net,
)
from sklearn_structlearn.sharing import SharedWeightLearner  # noqa: E402

pytestmark = pytest.mark.torch


def test_docstring_examples():
    failures, _ = doctest.testmod(_shared, optionflags=doctest.ELLIPSIS
                                  | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


def _random_sites(n_sites, n_inputs, seed):
    """A lattice holding ``n_inputs`` inputs in random sites, the rest empty."""
    rng = np.random.default_rng(seed)
    sites = np.full(n_sites, -1)
    sites[rng.choice(n_sites, n_inputs, replace=False)] = rng.permutation(n_inputs)
    return sites


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_conv_equals_its_gather_definition(kernel_size):
    # forward (gather onto the lattice, conv2d) == the index-table definition, with
    # shuffled inputs, empty sites and a mask.
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 2, kernel_size, kernel_size, generator=g, dtype=torch.float64)
    mask = torch.rand(weight.shape, generator=g) > 0.3
    sites = _random_sites(20, 17, 0)
    conv = LatticeConv(weight, torch.randn(4, dtype=torch.float64), (4, 5), site_inputs=sites,
                       mask=mask)
    x = torch.randn(3, 2, 17, generator=g, dtype=torch.float64)
    assert_allclose(conv(x).detach(), conv.gather_forward(x).detach(), atol=1e-12)


def test_conv_on_a_true_grid_is_conv2d():
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(3, dtype=torch.float64)
    conv = LatticeConv(weight, bias, (5, 6))
    x = torch.randn(2, 2, 30, generator=g, dtype=torch.float64)
    reference = torch.nn.functional.conv2d(x.reshape(2, 2, 5, 6), weight, bias, padding=1)
    assert_allclose(conv.gather_forward(x).detach(), reference.reshape(2, 3, 30).detach(),
                    atol=1e-12)


def test_shuffled_inputs_through_site_inputs_give_the_grid_convolution():
    # Inputs shuffled by a permutation, site_inputs = where each site's pixel went:
    # the layer computes the grid convolution of the unshuffled image.
    g = torch.Generator().manual_seed(2)
    weight = torch.randn(2, 1, 3, 3, generator=g, dtype=torch.float64)
    perm = np.random.default_rng(3).permutation(24)          # X_shuffled = X[:, perm]
    conv = LatticeConv(weight, None, (4, 6), site_inputs=np.argsort(perm))
    x = torch.randn(5, 1, 24, generator=g, dtype=torch.float64)
    grid = LatticeConv(weight, None, (4, 6))
    assert_allclose(conv(x[:, :, perm]).detach(), grid(x).detach(), atol=1e-12)


def test_masked_weights_get_no_gradient():
    weight = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    mask = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    mask[:, :, 1, 1] = True
    conv = LatticeConv(weight, None, (3, 3), mask=mask)
    conv(torch.randn(4, 1, 9, dtype=torch.float64)).sum().backward()
    assert (conv.weight.grad[~mask] == 0).all()
    assert (conv.weight.grad[mask] != 0).all()


@pytest.mark.parametrize("pooling", ["max", "l2"])
@pytest.mark.parametrize("grid", [(4, 6), (5, 3), (1, 4)])
def test_pool_equals_its_gather_definition(pooling, grid):
    pool = LatticePool(grid, 2, pooling)
    x = torch.randn(3, 2, grid[0] * grid[1], dtype=torch.float64, requires_grad=True)
    y = pool(x)
    assert_allclose(y.detach(), pool.gather_forward(x).detach(), atol=1e-12)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("pooling", ["max", "l2"])
def test_group_pool_equals_its_gather_definition(pooling):
    pool = LatticePool((4, 6), 2, pooling, n_families=3)
    x = torch.randn(3, 6, 24, dtype=torch.float64, requires_grad=True)
    y = pool(x)
    assert y.shape == (3, 2, 6)
    assert_allclose(y.detach(), pool.gather_forward(x).detach(), atol=1e-12)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_l2_pool_gradient_is_finite_at_zero():
    pool = LatticePool((2, 2), 2, "l2")
    x = torch.zeros(1, 1, 4, dtype=torch.float64, requires_grad=True)
    pool(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_exported_net_reproduces_transform_and_trains():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(64)
    learner = SharedWeightLearner(n_kernels=[6, 8], kernel_size=3, n_patches=3000,
                                  max_iter=5, random_state=0).fit(X[:, perm])
    net = learner.to_torch(n_classes=10, dtype=torch.float64)
    assert isinstance(net, SharedWeightNet)
    features = net.features(torch.as_tensor(X[:, perm])).detach().numpy()
    assert_allclose(features, learner.transform(X[:, perm]), atol=1e-10)
    # A few steps of training lower the loss and keep pruned weights at zero.
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(X[:200, perm]), torch.as_tensor(y[:200])  # a few steps: a subset
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    for conv in net.layers:
        assert (conv.masked_weight()[~conv.mask] == 0).all()
    assert build_shared_weight_net(learner).head.__class__.__name__ == "Identity"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("pooling", ["max", "l2"])
def test_exported_group_pooling_net_reproduces_transform(pooling):
    from sklearn.datasets import load_digits

    X = load_digits().data
    perm = np.random.default_rng(0).permutation(64)
    learner = SharedWeightLearner(n_kernels=[6, 8], kernel_size=3, group_size=2,
                                  group_pooling=True, pooling=pooling, n_patches=3000,
                                  max_iter=5, random_state=0).fit(X[:, perm])
    net = learner.to_torch(n_classes=10, dtype=torch.float64)
    assert net.head.in_features == 4 * 2 * 2
    features = net.features(torch.as_tensor(X[:, perm])).detach().numpy()
    assert_allclose(features, learner.transform(X[:, perm]), atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_export_modes_and_their_errors():
    from sklearn.datasets import load_digits

    X = load_digits().data
    learner = SharedWeightLearner(n_kernels=[4], kernel_size=3, n_patches=2000, max_iter=3,
                                  random_state=0).fit(X)
    x = torch.as_tensor(X[:10])
    # the layers are feedforward already: both modes are the same network, = transform
    exact = learner.to_torch(mode="exact", dtype=torch.float64)
    feedforward = learner.to_torch("feedforward", dtype=torch.float64)
    assert_allclose(exact(x).detach(), feedforward(x).detach(), rtol=0, atol=0)
    assert_allclose(feedforward(x).detach(), learner.transform(X[:10]), atol=1e-10)
    # the classifier's contract: a fixed stage, trainable layers, a head
    net = learner.to_torch(n_classes=3)
    assert isinstance(net.preprocessing, _shared.InputStandardisation)
    assert [n for n, _ in net.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "head.weight", "head.bias"]
    with pytest.raises(ValueError, match="mode"):
        learner.to_torch(mode="unrolled")
    with pytest.raises(ValueError, match="n_classes"):
        learner.to_torch(n_classes=0)
