"""The torch and skorch pieces of :class:`~sklearn_structlearn.StructuredNetClassifier`.

Imported lazily by :mod:`sklearn_structlearn.classifier` (inside ``fit`` / ``predict``),
so that the package imports without torch; the classes live at module level so that a
fitted classifier pickles.
"""

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from torch import nn

__all__ = ["InputStage", "FiniteTrainLoss", "BatchDataset", "whole_batch", "OPTIMIZERS",
           "check_device"]

# optimizer="..." of the classifier -> (torch optimizer class, fixed keyword arguments)
OPTIMIZERS = {
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
}


class InputStage(nn.Module):
    """The fixed first stage of the network, computed in float64.

    ``x -> preprocessing(x * scale)`` in float64, then cast to ``out_dtype``: ``scale`` is
    the power of two that brings the training data to unit size (exact: no rounding)
    and ``preprocessing`` the structure learner's affine map (ZCA, standardisation...)
    exported in float64. Keeping this stage in float64 is what lets data at 1e40 or
    1e-50 train: cast to float32 first, they would overflow to inf or flush to zero.

    Parameters
    ----------
    scale : float
        Factor applied to the raw inputs.
    preprocessing : torch.nn.Module or None
        Float64 module applied after the scaling (``None``: identity).
    out_dtype : torch.dtype, default=torch.float32
        dtype of the output (that of the trained layers).
    """

    def __init__(self, scale, preprocessing=None, out_dtype=torch.float32):
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))
        self.preprocessing = preprocessing if preprocessing is not None else nn.Identity()
        self.out_dtype = out_dtype

    def forward(self, x):
        return self.preprocessing(x.to(torch.float64) * self.scale).to(self.out_dtype)

    def extra_repr(self):
        return f"scale={float(self.scale):g}, out_dtype={self.out_dtype}"


class BatchDataset(Dataset):
    """skorch's Dataset for float32 features and int64 labels, indexed a batch at a time.

    The DataLoader asks ``__getitems__`` for a whole mini-batch, one NumPy fancy index,
    instead of ``__getitem__`` for every row and a collate of the rows: a large share
    of an epoch's time on small networks. Use with ``collate_fn=whole_batch``.
    """

    def __getitems__(self, indices):
        rows = np.asarray(indices)
        X = torch.from_numpy(self.X[rows])
        y = (torch.zeros(len(rows)) if self.y is None
             else torch.from_numpy(np.asarray(self.y)[rows]))
        return X, y


def whole_batch(batch):
    """The DataLoader's collate function for :class:`BatchDataset`: the batch as it is."""
    return batch


class FiniteTrainLoss(Callback):
    """Stop with a clear error as soon as the training loss is not finite."""

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not torch.isfinite(torch.tensor(loss)):
            raise FloatingPointError(
                f"StructuredNetClassifier: the training loss became {loss} at epoch "
                f"{len(net.history)}; lower learning_rate."
            )


def check_device(device):
    """The torch device for ``device`` (str, torch.device or None), or a clear ValueError.

    ``None`` is skorch's "leave the module where it is" (on the CPU here).
    """
    if device is None:
        return None
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = ("a CPU-only build" if torch.version.cuda is None
                     else f"built for CUDA {torch.version.cuda}, but no GPU or driver is usable")
            raise ValueError(
                f"device={device!r} asks for a CUDA GPU, but torch.cuda.is_available() is "
                f"False on this machine (torch {torch.__version__} is {build}); use "
                "device='cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA "
                "device(s)."
            )
        return parsed
    try:
        torch.empty(1, device=parsed)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device={device!r} is not usable on this machine: {exc}") from None
    return parsed
