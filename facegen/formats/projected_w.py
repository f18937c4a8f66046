"""NVIDIA's `projected_w.npz`, as stylegan2-ada-pytorch's projector.py writes it and gen_images.py --projected-w
reads it: one array under key `w`, float32 [1, num_ws, w_dim] (the final w repeated for every layer in W, one w
per layer in W+)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from facegen.errors import CorruptFileError, FacegenError

LATENT_KEY = "w"


def projected_w_bytes(ws: np.ndarray) -> bytes:
    """ws [1, num_ws, w_dim] as the bytes of a projected_w.npz."""
    ws = np.asarray(ws, np.float32)
    if ws.ndim != 3 or len(ws) != 1:
        raise ValueError(f"projected_w.npz holds ws [1, num_ws, w_dim], not {list(ws.shape)}")
    buffer = io.BytesIO()
    np.savez(buffer, **{LATENT_KEY: ws})
    return buffer.getvalue()


def read_projected_w(path: str | Path) -> np.ndarray:
    """The ws [1, num_ws, w_dim] float32 of a projected_w.npz (ours or NVIDIA's), checked."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FacegenError(f"{path} does not exist. Give a projected_w.npz written by a projection.")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if LATENT_KEY not in arrays:
                raise CorruptFileError(
                    f"{path} has no array {LATENT_KEY!r} (it has {', '.join(arrays.keys()) or 'none'}): it is not a "
                    "projected_w.npz. Give the file a projection wrote."
                )
            ws = arrays[LATENT_KEY]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise CorruptFileError(
            f"{path} is not a readable .npz file. Give the projected_w.npz a projection wrote."
        ) from None
    if ws.ndim != 3 or len(ws) != 1 or not np.issubdtype(ws.dtype, np.floating):
        raise CorruptFileError(
            f"{path}: w is {ws.dtype} {list(ws.shape)}; a projected_w.npz holds float [1, num_ws, w_dim]."
        )
    if not np.isfinite(ws).all():
        raise CorruptFileError(f"{path}: w holds NaN or infinite values.")
    return ws.astype(np.float32, copy=False)
