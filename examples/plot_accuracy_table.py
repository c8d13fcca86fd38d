"""
Accuracy, fit time and size against standard models
===================================================

The end-to-end claim of the method: a network whose structure (connectivity,
pooling groups, depth) is learned from unlabeled data classifies about as well
as an expert-designed CNN and clearly better than an unstructured network. This
example puts numbers on it, on the same training and test images for every
model:

- ``DeepStructureLearner + LR``: the learned representation, frozen, with a
  logistic regression on top;
- ``StructuredNetClassifier``: the learned structure exported to PyTorch and
  trained end to end with the labels (needs torch);
- ``raw + LR``, ``PCA + LR``, ``BernoulliRBM + LR``,
  ``MiniBatchDictionaryLearning + LR``: unsupervised baselines of the same
  number of units (128) feeding the same classifier;
- ``MLPClassifier``: one fully connected ReLU layer of 256 units;
- ``small CNN``: two 3x3 convolution + max-pooling layers (32 and 64 channels)
  and a linear head, trained with Adam (needs torch).

Parameters count every learned weight of the model (for the learner, the
layers' dictionaries, non-zero ones in brackets; the fixed ZCA whitening
matrix, ``n_features**2`` numbers, is not counted). Times are wall-clock on the
machine that ran the example.

Data: Fashion-MNIST when installed, digits otherwise.

Set ``STRUCTLEARN_EXAMPLE_SMALL=1`` for a quick run on tiny subsets and
``STRUCTLEARN_EXAMPLE_OUT`` to the directory where the figures are saved.
"""

# %%
# Settings and data
# -----------------
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA, MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM, MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_structlearn import DeepStructureLearner, StructuredNetClassifier
from sklearn_structlearn.datasets import (
    fashion_mnist_available,
    load_digits_images,
    load_fashion_mnist,
)

SMALL = os.environ.get("STRUCTLEARN_EXAMPLE_SMALL", "0") not in ("", "0")
OUT = Path(os.environ.get("STRUCTLEARN_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)
# Capped iterations are part of the budget here, not a problem to report.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

try:
    import torch
except ImportError:  # torch is optional: the torch models are skipped
    torch = None
    print("torch not installed (pip install sklearn-structlearn[torch]): "
          "StructuredNetClassifier and the CNN are skipped.")

N_UNITS = 32 if SMALL else 128
MAX_ITER = 2 if SMALL else 15
EPOCHS = 2 if SMALL else 20
if fashion_mnist_available():
    data_name, shape = "Fashion-MNIST", (28, 28)
    X_train, y_train = load_fashion_mnist(subset="train", n_samples=300 if SMALL else 5000,
                                          random_state=0)
    X_test, y_test = load_fashion_mnist(subset="test", n_samples=200 if SMALL else 2000,
                                        random_state=0)
else:
    print("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): digits.")
    data_name, shape = "digits", (8, 8)
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)


def lr():
    return LogisticRegression(max_iter=2000)


def n_params(*arrays):
    return int(sum(np.asarray(a).size for a in arrays))


def lr_params(pipeline):
    return n_params(pipeline[-1].coef_, pipeline[-1].intercept_)


# %%
# The models
# ----------
# Each entry builds a model and counts its parameters once fitted.
def learner_lr():
    model = make_pipeline(
        DeepStructureLearner(n_components=N_UNITS, group_size=4, max_iter=MAX_ITER,
                             image_shape=shape, random_state=0),
        StandardScaler(), lr())

    def count(m):
        learner = m[0]
        total = n_params(*[layer.components_ for layer in learner.layers_])
        nonzero = sum(int(layer.connectivity_.sum()) for layer in learner.layers_)
        return total + lr_params(m), nonzero + lr_params(m)
    return model, count


def structured_net():
    model = StructuredNetClassifier(
        DeepStructureLearner(max_depth=1, n_components=N_UNITS, group_size=4,
                             image_shape=shape, max_iter=MAX_ITER),
        max_epochs=EPOCHS, random_state=0)

    def count(m):
        return m.n_parameters(), m.n_parameters(nonzero=True)
    return model, count


def baseline(transformer, *, scale_after=True):
    steps = [transformer] + ([StandardScaler()] if scale_after else []) + [lr()]
    model = make_pipeline(*steps)

    def count(m):
        t = m[0]
        arrays = [getattr(t, name) for name in ("components_", "intercept_hidden_",
                                                 "intercept_visible_") if hasattr(t, name)]
        total = n_params(*arrays) + lr_params(m)
        return total, total
    return model, count


def raw_lr():
    model = make_pipeline(StandardScaler(), lr())
    return model, lambda m: (lr_params(m), lr_params(m))


def mlp():
    model = MLPClassifier(hidden_layer_sizes=(256,), early_stopping=True,
                          max_iter=EPOCHS * 3, random_state=0)

    def count(m):
        total = sum(w.size for w in m.coefs_) + sum(b.size for b in m.intercepts_)
        return total, total
    return model, count


class SmallCNN:
    """Two conv + max-pool layers and a linear head, trained with Adam (fixed epochs)."""

    def __init__(self, image_shape, epochs, seed=0):
        self.image_shape, self.epochs, self.seed = image_shape, epochs, seed

    def fit(self, X, y):
        torch.manual_seed(self.seed)
        h, w = self.image_shape
        nn = torch.nn
        self.classes_ = np.unique(y)
        self.net_ = nn.Sequential(
            nn.Unflatten(1, (1, h, w)),
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), len(self.classes_)))
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=1e-3)
        X_t = torch.as_tensor(X, dtype=torch.float32)
        y_t = torch.as_tensor(np.searchsorted(self.classes_, y))
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs):
            self.net_.train()
            for batch in torch.randperm(len(X_t), generator=generator).split(128):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.net_(X_t[batch]), y_t[batch])
                loss.backward()
                optimizer.step()
        return self

    def score(self, X, y):
        self.net_.eval()
        with torch.no_grad():
            logits = self.net_(torch.as_tensor(X, dtype=torch.float32))
        return float(np.mean(self.classes_[logits.argmax(1).numpy()] == y))


def cnn():
    model = SmallCNN(shape, EPOCHS)

    def count(m):
        total = sum(p.numel() for p in m.net_.parameters())
        return total, total
    return model, count


models = {
    "DeepStructureLearner + LR": learner_lr,
    "StructuredNetClassifier": structured_net if torch is not None else None,
    "raw + LR": raw_lr,
    "PCA + LR": lambda: baseline(PCA(N_UNITS, random_state=0)),
    "BernoulliRBM + LR": lambda: baseline(BernoulliRBM(N_UNITS, learning_rate=0.05,
                                                       n_iter=MAX_ITER, random_state=0)),
    "MiniBatchDictionaryLearning + LR": lambda: baseline(MiniBatchDictionaryLearning(
        N_UNITS, alpha=0.1, max_iter=MAX_ITER, transform_algorithm="lasso_lars",
        transform_alpha=0.1, random_state=0)),
    "MLPClassifier": mlp,
    "small CNN": cnn if torch is not None else None,
}

# %%
# Fit and score
# -------------
rows = []
for name, make in models.items():
    if make is None:
        continue
    model, count = make()
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    accuracy = model.score(X_test, y_test)
    total, nonzero = count(model)
    rows.append((name, accuracy, fit_time, total, nonzero))
    print(f"{name:34s} accuracy {accuracy:.4f}  fit {fit_time:7.1f} s  parameters {total:,}"
          + (f" ({nonzero:,} non-zero)" if nonzero != total else ""))

print(f"\n{data_name}: {X_train.shape[0]} training images, {X_test.shape[0]} test images\n")
print("| model | test accuracy | fit time (s) | parameters (non-zero) |")
print("|---|---|---|---|")
for name, accuracy, fit_time, total, nonzero in rows:
    size = f"{total:,}" + (f" ({nonzero:,})" if nonzero != total else "")
    print(f"| {name} | {100 * accuracy:.2f}% | {fit_time:.1f} | {size} |")

# %%
# Picture
# -------
fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
names = [r[0] for r in rows]
ax.barh(names, [100 * r[1] for r in rows], color=["C3" if "Structure" in n else "C0"
                                                   for n in names])
for i, r in enumerate(rows):
    ax.text(100 * r[1], i, f" {100 * r[1]:.1f}%  ({r[2]:.0f} s)", va="center", fontsize=8)
ax.set_xlabel("test accuracy (%)")
ax.set_xlim(left=max(0, 100 * min(r[1] for r in rows) - 10), right=100)
ax.invert_yaxis()
ax.set_title(f"{data_name}: {X_train.shape[0]} training images")
fig.savefig(OUT / "accuracy_table.png", dpi=100)
