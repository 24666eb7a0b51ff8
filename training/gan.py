"""The report's DCGAN (TensorFlow DCGAN tutorial): two generators and the shared discriminator."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

NOISE_DIM = 100


def build_generator(upsampling: str, latent_dim: int = NOISE_DIM) -> keras.Sequential:
    """`transpose`: the tutorial's generator; `resize`: the report's UpSampling2D + Conv2D version."""
    stem = [
        keras.Input((latent_dim,), name="noise"),
        layers.Dense(7 * 7 * 256, use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
    ]
    if upsampling == "transpose":
        head = [
            layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),
        ]
    elif upsampling == "resize":
        head = [
            layers.UpSampling2D(2),
            layers.Conv2D(64, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.UpSampling2D(2),
            layers.Conv2D(1, 3, padding="same", use_bias=False, activation="tanh"),
        ]
    else:
        raise ValueError(f"upsampling {upsampling!r} is not 'transpose' or 'resize'")
    return keras.Sequential(stem + head, name=f"gan_generator_{upsampling}")


def build_discriminator() -> keras.Sequential:
    """Shared by both GANs: two strided 5×5 convolutions and a logit."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(64, 5, strides=2, padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Conv2D(128, 5, strides=2, padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(1),
        ],
        name="gan_discriminator",
    )


class GanJob:
    """Owns the networks, both Adam optimisers and the tutorial's train step."""

    family = "gan"
    output = "tanh"

    def __init__(self, upsampling: str, latent_dim: int, learning_rate: float, batch_size: int):
        self.latent_dim, self.batch_size = latent_dim, batch_size
        self.generator = build_generator(upsampling, latent_dim)
        self.discriminator = build_discriminator()
        self.g_opt = keras.optimizers.Adam(learning_rate)
        self.d_opt = keras.optimizers.Adam(learning_rate)
        self.g_opt.build(self.generator.trainable_variables)
        self.d_opt.build(self.discriminator.trainable_variables)
        self._bce = keras.losses.BinaryCrossentropy(from_logits=True)

    def stateful(self) -> dict[str, list]:
        """Everything a checkpoint must hold to resume bit-for-bit."""
        return {
            "generator": self.generator.variables,
            "discriminator": self.discriminator.variables,
            "g_opt": self.g_opt.variables,
            "d_opt": self.d_opt.variables,
        }

    def preprocess(self, x_uint8: np.ndarray) -> np.ndarray:
        from training.data import gan_images

        return gan_images(x_uint8)

    def train_batch(self, images: np.ndarray, rng: np.random.Generator) -> dict[str, tf.Tensor]:
        # The tutorial draws BATCH_SIZE noise vectors even for the short last batch; so do we.
        noise = rng.standard_normal((self.batch_size, self.latent_dim), dtype=np.float32)
        g_loss, d_loss = self._step(tf.constant(images), tf.constant(noise))
        return {"gen_loss": g_loss, "disc_loss": d_loss}

    @tf.function
    def _step(self, images: tf.Tensor, noise: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(noise, training=True)
            real_out = self.discriminator(images, training=True)
            fake_out = self.discriminator(fake, training=True)
            g_loss = self._bce(tf.ones_like(fake_out), fake_out)
            d_loss = self._bce(tf.ones_like(real_out), real_out) + self._bce(tf.zeros_like(fake_out), fake_out)
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        return g_loss, d_loss

    def end_of_epoch(self, x_test: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
        return {}

    def sample(self, latents: np.ndarray) -> np.ndarray:
        return self.generator(latents, training=False).numpy()

    def extra_models(self) -> dict[str, keras.Model]:
        return {"discriminator": self.discriminator}
