"""torch (and skorch), the optional dependencies: imported on demand, with a message saying
how to get them."""


def import_torch(what="This feature", *, with_skorch=False):
    """Import and return ``torch``, or raise an ImportError saying how to install it.

    Parameters
    ----------
    what : str
        What needs torch, for the message (e.g. "Exporting to PyTorch").
    with_skorch : bool, default=False
        Import skorch too (the classifier trains with it); the message then names both.
    """
    needed = "torch and skorch" if with_skorch else "torch"
    try:
        import torch

        if with_skorch:
            import skorch  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{what} needs {needed}, optional dependencies of sklearn-structlearn. Install "
            f"them with `pip install sklearn-structlearn[torch]` (or `pip install {needed}`)."
        ) from exc
    return torch
