"""
Depth: entropy, accuracy and where the depth rule stops
=======================================================

:class:`~sklearn_structlearn.DeepStructureLearner` keeps stacking layers while
the newest layer improves its outputs enough: by default (``depth_criterion=
"redundancy"``) the redundancy of the outputs
(:func:`~sklearn_structlearn.entropy.output_redundancy`) must drop by at least
``depth_tol=0.02``; with ``depth_criterion="entropy"`` the output entropy must grow
by ``depth_tol`` (relative). This example forces ``max_depth`` layers
(``depth_tol=-inf``) to see the whole curve, computes the depth both rules would
have chosen, and compares it with the test accuracy of a
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
REDUNDANCY_TOL = 0.02  # the learner's default depth_tol (redundancy criterion)
ENTROPY_TOL = 0.05  # a relative entropy gain of 5% for the entropy criterion
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

    # Each rule keeps layer l >= 2 only while its score is >= its tolerance; the
    # scores of the forced stack give the depth each rule would have chosen.
    gains = learner.entropy_gains_  # gains[l - 1]: layer l over layer l - 1
    redundancies = learner.redundancies_  # redundancies[l]: at depth l (0 = input)
    scores = {"redundancy": [redundancies[d - 1] - redundancies[d]
                             for d in range(1, len(redundancies))],
              "entropy": list(gains)}
    tols = {"redundancy": REDUNDANCY_TOL, "entropy": ENTROPY_TOL}
    rule_depths = {}
    for criterion, score in scores.items():
        rejected = next((d for d in range(2, len(score) + 1) if score[d - 1] < tols[criterion]),
                        None)
        rule_depths[criterion] = learner.n_layers_ if rejected is None else rejected - 1
    rule_depth = rule_depths["redundancy"]

    print(f"{name}: {X_train.shape[0]} training images, {MAX_DEPTH} layers forced")
    print("| depth | outputs | entropy (bits) | relative gain | redundancy | LR test accuracy |")
    print("|---|---|---|---|---|---|")
    widths = [X.shape[1]] + [layer.n_groups_ for layer in learner.layers_]
    for depth, (entropy, accuracy) in enumerate(zip(learner.entropies_, accuracies)):
        gain = "-" if depth == 0 else f"{gains[depth - 1]:+.1%}"
        print(f"| {depth} | {widths[depth]} | {entropy:.1f} | {gain} | "
              f"{redundancies[depth]:.3f} | {accuracy:.3f} |")
    best = int(np.argmax(accuracies[1:])) + 1
    print(f"    depth rule: redundancy (default, depth_tol={REDUNDANCY_TOL}) stops at depth "
          f"{rule_depths['redundancy']}, entropy (depth_tol={ENTROPY_TOL}) at depth "
          f"{rule_depths['entropy']}; best LR accuracy of a learned layer at depth {best}")

    # Depths beyond the default rule's choice are drawn hollow ("not kept").
    fig = plot_entropy_curve(
        learner.entropies_, n_layers=rule_depth, accuracies=accuracies,
        accuracy_label="LogisticRegression test accuracy",
        title=f"{name}: entropy and accuracy vs depth")
    fig.savefig(OUT / f"depth_tradeoff_{name}.png", dpi=100)
