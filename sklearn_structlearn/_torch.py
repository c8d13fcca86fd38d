"""torch, the optional dependency: imported on demand, with a message saying how to get it."""


def import_torch(what="This feature"):
    """Import and return ``torch``, or raise an ImportError saying how to install it.

    Parameters
    ----------
    what : str
        What needs torch, for the message (e.g. "Exporting to PyTorch").
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"{what} needs torch, an optional dependency of sklearn-structlearn. Install it "
            "with `pip install sklearn-structlearn[torch]` (or `pip install torch`)."
        ) from exc
    return torch
