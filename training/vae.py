"""The report's convolutional VAE (TensorFlow CVAE tutorial): shared encoder, two decoders."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

LOG_2PI = math.log(2.0 * math.pi)


def build_encoder(latent_dim: int) -> keras.Sequential:
    """Two strided 3×3 convolutions to mean and log-variance (concatenated)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(32, 3, strides=2, activation="relu"),
            layers.Conv2D(64, 3, strides=2, activation="relu"),
            layers.Flatten(),
            layers.Dense(2 * latent_dim),
        ],
        name="vae_encoder",
    )


def build_decoder(upsampling: str, latent_dim: int) -> keras.Sequential:
    """`transpose`: the tutorial's decoder; `resize`: the report's UpSampling2D + Conv2D version. Outputs logits."""
    stem = [keras.Input((latent_dim,), name="z"), layers.Dense(7 * 7 * 32, activation="relu"), layers.Reshape((7, 7, 32))]
    if upsampling == "transpose":
        head = [
            layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(1, 3, strides=1, padding="same"),
        ]
    elif upsampling == "resize":
        head = [
            layers.UpSampling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.UpSampling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same", use_bias=False),
        ]
    else:
        raise ValueError(f"upsampling {upsampling!r} is not 'transpose' or 'resize'")
    return keras.Sequential(stem + head, name=f"vae_decoder_{upsampling}")


def log_normal_pdf(sample: tf.Tensor, mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(-0.5 * ((sample - mean) ** 2.0 * tf.exp(-logvar) + logvar + LOG_2PI), axis=1)


class VaeJob:
    """Owns encoder, decoder, Adam and the tutorial's single-sample Monte-Carlo ELBO."""

    family = "vae"
    output = "logits"

    def __init__(self, upsampling: str, latent_dim: int, learning_rate: float, batch_size: int):
        self.latent_dim = latent_dim
        self.encoder = build_encoder(latent_dim)
        self.decoder = build_decoder(upsampling, latent_dim)
        self.generator = self.decoder
        self.opt = keras.optimizers.Adam(learning_rate)
        self._trainable = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.opt.build(self._trainable)

    def stateful(self) -> dict[str, list]:
        return {"encoder": self.encoder.variables, "decoder": self.decoder.variables, "opt": self.opt.variables}

    def preprocess(self, x_uint8: np.ndarray) -> np.ndarray:
        from training.data import vae_images

        return vae_images(x_uint8)

    def elbo(self, x: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        """Per-example ELBO, log p(x|z) + log p(z) − log q(z|x), with z = mean + eps·σ."""
        mean, logvar = tf.split(self.encoder(x), 2, axis=1)
        z = eps * tf.exp(logvar * 0.5) + mean
        logits = self.decoder(z)
        logpx_z = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=x), axis=[1, 2, 3])
        return logpx_z + log_normal_pdf(z, 0.0, 0.0) - log_normal_pdf(z, mean, logvar)

    def train_batch(self, images: np.ndarray, rng: np.random.Generator) -> dict[str, tf.Tensor]:
        eps = rng.standard_normal((images.shape[0], self.latent_dim), dtype=np.float32)
        return {"loss": self._step(tf.constant(images), tf.constant(eps))}

    @tf.function
    def _step(self, x: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(self.elbo(x, eps))
        grads = tape.gradient(loss, self._trainable)
        self.opt.apply_gradients(zip(grads, self._trainable))
        return loss

    @tf.function
    def _elbo_batch(self, x: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        return self.elbo(x, eps)

    def test_elbo(self, x_test: np.ndarray, rng: np.random.Generator, batch: int = 500) -> float:
        """Mean single-sample ELBO over the test set (nats per image)."""
        total = 0.0
        for i in range(0, len(x_test), batch):
            x = x_test[i : i + batch]
            eps = rng.standard_normal((len(x), self.latent_dim), dtype=np.float32)
            total += float(tf.reduce_sum(self._elbo_batch(tf.constant(x), tf.constant(eps))))
        return total / len(x_test)

    def end_of_epoch(self, x_test: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
        return {"test_elbo": self.test_elbo(x_test, rng)}

    def sample(self, latents: np.ndarray) -> np.ndarray:
        return self.decoder(latents, training=False).numpy()

    def encode_mean(self, images: np.ndarray) -> np.ndarray:
        mean, _ = tf.split(self.encoder(images, training=False), 2, axis=1)
        return mean.numpy()

    def extra_models(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder}
