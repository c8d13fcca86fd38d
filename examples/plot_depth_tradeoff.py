"""
Depth: entropy, accuracy and where the depth rule stops
=======================================================

:class:`~sklearn_structlearn.DeepStructureLearner` keeps stacking layers while
the output entropy of the newest layer grows by at least ``depth_tol``
(relative). This example forces ``max_depth`` layers (``depth_tol=-inf``) to see
the whole curve, then marks the depth the default rule (``depth_tol=0.05``)
would have chosen, and compares it with the test accuracy of a
:class:`~sklearn.linear_model.LogisticRegression` on each layer's outputs: does
the rule stop where accuracy stops improving?

Data: digits and Fashion-MNIST when installed.

Set ``STRUCTLEARN_EXAMPLE_SMALL=1`` for a quick run on tiny subsets and
``STRUCTLEARN_EXAMPLE_OUT`` to the directory where the figures are saved.
"""

# %%
# Settings and data
# -----------------
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_structlearn import DeepStructureLearner
from sklearn_structlearn.datasets import (
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
)
from sklearn_structlearn.plotting import plot_entropy_curve

SMALL = os.environ.get("STRUCTLEARN_EXAMPLE_SMALL", "0") not in ("", "0")
OUT = Path(os.environ.get("STRUCTLEARN_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)
# A capped number of iterations is part of the budget here, not a problem to report.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

MAX_DEPTH = 2 if SMALL else 4
MAX_ITER = 2 if SMALL else 15
DEPTH_TOL = 0.05  # the learner's default
N_UNITS = 32 if SMALL else 128  # units per layer, in groups of 4

datasets = {"digits": load_digits_images()}
if fashion_mnist_available():
    datasets["fashion-mnist"] = load_fashion_mnist(subset="all",
                                                   n_samples=300 if SMALL else 3000,
                                                   random_state=0)
else:
    print("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): skipped.")

# %%
# All layers, entropy and accuracy per depth
# ------------------------------------------
# Each layer's outputs are the pooled groups of the layer below fed through the
# next layer: the forward pass below is what ``transform`` does for the top
# layer, stopped at every depth.
for name, (X, y) in datasets.items():
    if SMALL:
        X, y = X[:300], y[:300]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    learner = DeepStructureLearner(max_depth=MAX_DEPTH, n_components=N_UNITS, group_size=4,
                                   depth_tol=-np.inf, max_iter=MAX_ITER,
                                   image_shape=(8, 8) if name == "digits" else (28, 28),
                                   random_state=0).fit(X_train)

    def preprocess(X_raw):
        return (X_raw - learner.preprocess_mean_) @ learner.preprocess_matrix_

    Z_train, Z_test = preprocess(X_train), preprocess(X_test)
    accuracies = []
    for layer in [None] + learner.layers_:
        if layer is not None:
            Z_train, Z_test = layer.transform(Z_train), layer.transform(Z_test)
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        accuracies.append(clf.fit(Z_train, y_train).score(Z_test, y_test))

    # The default rule keeps layer l >= 2 only while its relative gain is >= DEPTH_TOL;
    # the gains of the forced stack give the depth it would have chosen.
    gains = learner.entropy_gains_
    rule_depth = next((d for d in range(2, len(gains) + 1) if gains[d - 1] < DEPTH_TOL),
                      None)
    rule_depth = learner.n_layers_ if rule_depth is None else rule_depth - 1

    print(f"{name}: {X_train.shape[0]} training images, {MAX_DEPTH} layers forced")
    print("| depth | outputs | entropy (bits) | relative gain | LR test accuracy |")
    print("|---|---|---|---|---|")
    widths = [X.shape[1]] + [layer.n_groups_ for layer in learner.layers_]
    for depth, (entropy, accuracy) in enumerate(zip(learner.entropies_, accuracies)):
        gain = "-" if depth == 0 else f"{gains[depth - 1]:+.1%}"
        print(f"| {depth} | {widths[depth]} | {entropy:.1f} | {gain} | {accuracy:.3f} |")
    best = int(np.argmax(accuracies[1:])) + 1
    print(f"    depth rule (depth_tol={DEPTH_TOL}) stops at depth {rule_depth}; "
          f"best LR accuracy at depth {best}")

    # Depths beyond the rule's choice are drawn hollow ("not kept" by the default rule).
    fig = plot_entropy_curve(
        learner.entropies_, n_layers=rule_depth, accuracies=accuracies,
        accuracy_label="LogisticRegression test accuracy",
        title=f"{name}: entropy and accuracy vs depth")
    fig.savefig(OUT / f"depth_tradeoff_{name}.png", dpi=100)
