"""Layers of the shipped generators that Keras does not have; imported wherever a generator is loaded.

A saved generator names DepthToSpace by its registered name, "deconv_arena>DepthToSpace" (the `package` below and the
class name), not by this module's path: importing this module before `keras.saving.load_model` is all a file needs,
whichever module it was saved from. Keep the package and the class name as they are."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="deconv_arena")
class DepthToSpace(keras.layers.Layer):
    """Sub-pixel shuffle (Shi et al. 2016): (H, W, r·r·C) → (r·H, r·W, C), channel (dy·r + dx)·C + c to
    sub-position (dy, dx), the order of TensorFlow's `depth_to_space`; written with reshape/transpose so that
    every Keras backend computes it the same way."""

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, x):
        r = self.block_size
        _, h, w, c = x.shape
        c //= r * r
        x = ops.reshape(x, (-1, h, w, r, r, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h * r, w * r, c))

    def compute_output_shape(self, shape):
        r = self.block_size
        b, h, w, c = shape
        return (b, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


def icnr_(conv: keras.layers.Conv2D, block_size: int = 2) -> None:
    """ICNR (Aitken et al. 2017): give the r² sub-pixel outputs of every channel the same kernel, so that conv +
    DepthToSpace starts as nearest-neighbour upsampling of a convolution — free of checkerboard at initialisation.
    Keeps the kernel's random draw for the first of the r² copies."""
    r2 = block_size * block_size
    kernel = np.asarray(conv.kernel.numpy())
    base = kernel[..., : kernel.shape[-1] // r2]
    conv.kernel.assign(np.tile(base, (1, 1, 1, r2)))
    if conv.use_bias:
        bias = np.asarray(conv.bias.numpy())
        conv.bias.assign(np.tile(bias[: len(bias) // r2], r2))


def label_maps(images, onehot):
    """Images with their labels' one-hot codes as extra channels (a discriminator's or encoder's conditional input)."""
    maps = ops.broadcast_to(onehot[:, None, None, :], (*ops.shape(images)[:3], onehot.shape[-1]))
    return ops.concatenate([images, maps], axis=-1)
