"""Map generator outputs to pixels and lay them out as one grid image (Pillow)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

TILE = 28


def to_unit(outputs: np.ndarray, output_kind: str) -> np.ndarray:
    """Generator output → images in [0, 1], shape (n, 28, 28). `tanh` for GANs, `logits` for VAEs."""
    x = np.asarray(outputs, dtype=np.float32).reshape(-1, TILE, TILE)
    if output_kind == "tanh":
        return np.clip((x + 1.0) / 2.0, 0.0, 1.0)
    if output_kind == "logits":
        return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)
    raise ValueError(f"output kind {output_kind!r} is not one of 'tanh', 'logits'")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 with round-half-up, identical on every machine."""
    return np.floor(np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def grid_shape(n: int, nrow: int | None) -> tuple[int, int]:
    """(rows, columns): `nrow` images per row, default ⌈√n⌉."""
    per_row = nrow or math.ceil(math.sqrt(n))
    return math.ceil(n / per_row), per_row


def render_grid(images: np.ndarray, nrow: int | None = None, scale: int = 1, padding: int = 2) -> Image.Image:
    """Tiles (n, 28, 28) in [0, 1] as a grayscale image, each tile enlarged by nearest neighbour."""
    pixels = to_uint8(images)
    n = pixels.shape[0]
    rows, cols = grid_shape(n, nrow)
    tile = TILE * scale
    canvas = np.zeros((rows * tile + (rows + 1) * padding, cols * tile + (cols + 1) * padding), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        big = pixels[i].repeat(scale, axis=0).repeat(scale, axis=1)
        top, left = padding + r * (tile + padding), padding + c * (tile + padding)
        canvas[top : top + tile, left : left + tile] = big
    return Image.fromarray(canvas, mode="L")


def png_bytes(image: Image.Image) -> bytes:
    """Encode deterministically (no timestamps or text chunks)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def save_gif(frames: list[Image.Image], path: str, ms_per_frame: int = 300) -> None:
    """An animated GIF of training progress, as the tutorials made."""
    first, *rest = frames
    first.save(path, save_all=True, append_images=rest, duration=ms_per_frame, loop=0)
