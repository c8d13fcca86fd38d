"""
Pooling groups and invariance to small shifts
=============================================

Group sparse coding makes the units of a group switch on together; pooling a
group (the L2 norm of its codes) should then give outputs that change less when
the image moves by a pixel than the individual codes do -- the invariance a
CNN gets from its pooling layers.

:func:`~sklearn_structlearn.structure.pooling_invariance` shifts every image by
one pixel (up, down, left, right; wrapped around) and measures the relative
change ``||f(shift X) - f(X)|| / ||f(X)||`` of the pooled outputs and of the
unpooled codes of the same layer; its ``score`` is
``1 - pooled_change / codes_change`` (0: pooling brings nothing).

Pooling *any* set of units averages out some of the change, so the learned
groups are compared with a control: the same units pooled in random groups of
the same size. The learned groups beat pooling itself only if they beat the
control.

Data: natural image patches and Fashion-MNIST when installed (digits otherwise).

Set ``STRUCTLEARN_EXAMPLE_SMALL=1`` for a quick run on tiny subsets and
``STRUCTLEARN_EXAMPLE_OUT`` to the directory where the figures are saved.
"""

# %%
# Settings and data
# -----------------
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import DeepStructureLearner
from sklearn_structlearn.datasets import (
    extract_image_patches,
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
)
from sklearn_structlearn.structure import pooling_invariance

SMALL = os.environ.get("STRUCTLEARN_EXAMPLE_SMALL", "0") not in ("", "0")
OUT = Path(os.environ.get("STRUCTLEARN_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)
# A capped number of iterations is part of the budget here, not a problem to report.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

MAX_ITER = 2 if SMALL else 20
GROUP_SIZE = 4
N_TEST = 100 if SMALL else 500  # images shifted to measure the invariance
datasets = {"patches": (extract_image_patches((12, 12), n_patches=200 if SMALL else 8000,
                                              random_state=0), (12, 12), 32 if SMALL else 128)}
if fashion_mnist_available():
    X_fashion, _ = load_fashion_mnist(n_samples=200 if SMALL else 2000, random_state=0)
    datasets["fashion-mnist"] = (X_fashion, (28, 28), 16 if SMALL else 128)
else:
    print("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): "
          "digits instead.")
    datasets["digits"] = (load_digits_images()[0], (8, 8), 64)


def l2_pool(codes, group_size, order=None):
    """L2 norm of each group of (reordered) units."""
    if order is not None:
        codes = codes[:, order]
    n_samples, n_units = codes.shape
    return np.sqrt((codes.reshape(n_samples, n_units // group_size, group_size) ** 2)
                   .sum(axis=2))


# %%
# Learned groups against random groups
# ------------------------------------
# The layer's codes are computed on the preprocessed images
# (``preprocess_mean_`` and ``preprocess_matrix_`` are the learner's fixed affine
# map); shifts act on the raw images.
results = {}
for name, (X, shape, n_components) in datasets.items():
    learner = DeepStructureLearner(max_depth=1, n_components=n_components,
                                   group_size=GROUP_SIZE, max_iter=MAX_ITER,
                                   random_state=0).fit(X[N_TEST:])
    layer = learner.layers_[0]

    def codes(X_raw):
        return layer.encode((X_raw - learner.preprocess_mean_) @ learner.preprocess_matrix_)

    random_order = np.random.RandomState(0).permutation(n_components)
    X_test = X[:N_TEST]  # held out from the fit
    learned = pooling_invariance(lambda X_: l2_pool(codes(X_), GROUP_SIZE), codes,
                                 X_test, shape)
    control = pooling_invariance(lambda X_: l2_pool(codes(X_), GROUP_SIZE, random_order),
                                 codes, X_test, shape)
    results[name] = (learned, control)
    print(f"{name}: relative change under 1-pixel shifts ({N_TEST} held-out images)")
    print(f"    unpooled codes        : {learned['codes_change']:.3f}")
    print(f"    pooled, learned groups: {learned['pooled_change']:.3f}  "
          f"(score {learned['score']:+.3f})")
    print(f"    pooled, random groups : {control['pooled_change']:.3f}  "
          f"(score {control['score']:+.3f})")

# %%
# Picture
# -------
fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8),
                         squeeze=False, layout="constrained")
shift_names = ["right", "down", "left", "up"]
for ax, (name, (learned, control)) in zip(axes[0], results.items()):
    x = np.arange(len(shift_names))
    ax.bar(x - 0.27, learned["codes_change_per_shift"], 0.27, label="unpooled codes")
    ax.bar(x, control["pooled_change_per_shift"], 0.27, label="pooled, random groups")
    ax.bar(x + 0.27, learned["pooled_change_per_shift"], 0.27, label="pooled, learned groups")
    ax.set_xticks(x, [f"1 px {s}" for s in shift_names])
    ax.set_ylabel("relative change of the outputs")
    ax.set_title(f"{name}: score {learned['score']:+.2f} (random groups "
                 f"{control['score']:+.2f})")
axes[0, 0].legend(fontsize=8)
fig.savefig(OUT / "invariance.png", dpi=100)

# %%
# Summary
# -------
print("| data | codes change | pooled change (learned groups) | pooled change (random groups) "
      "| score learned | score random |")
print("|---|---|---|---|---|---|")
for name, (learned, control) in results.items():
    print(f"| {name} | {learned['codes_change']:.3f} | {learned['pooled_change']:.3f} | "
          f"{control['pooled_change']:.3f} | {learned['score']:+.3f} | {control['score']:+.3f} |")
