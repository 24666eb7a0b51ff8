"""The report's convolutional VAE (TensorFlow CVAE tutorial): shared encoder, two decoders."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from arena.variants import FAMILIES, INTERPOLATED, SHUFFLED, TRANSPOSED, operator_of
from training.families.backends import backend, compile_step, label_and_noise, to_numpy
from training.families.interface import JobBase
from training.families.layers import DepthToSpace, icnr_, label_maps
from training.loop.data import vae_images

LOG_2PI = math.log(2.0 * math.pi)


def build_encoder(latent_dim: int, classes: int = 0) -> keras.Sequential:
    """Two strided 3×3 convolutions to mean and log-variance (concatenated). With `classes`, the label enters as
    that many extra input channels."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1 + classes), name="image_and_label" if classes else "image"),
            layers.Conv2D(32, 3, strides=2, activation="relu"),
            layers.Conv2D(64, 3, strides=2, activation="relu"),
            layers.Flatten(),
            layers.Dense(2 * latent_dim),
        ],
        name="cvae_encoder" if classes else "vae_encoder",
    )


def build_decoder(
    upsampling: str, latent_dim: int, kernel: int | None = None, layout: str = "report", classes: int = 0
) -> keras.Sequential:
    """`transpose`: the tutorial's decoder (two stride-2 transposed 3×3 stages, or kernel `kernel`, and a stride-1
    one); `resize`/`bilinear`: the report's UpSampling2D + Conv2D version with nearest or bilinear resizing;
    `subpixel`: each stage a 3×3 convolution to 4× channels and a sub-pixel shuffle, ICNR-initialised. Outputs
    logits. With `classes`, conditional: the input is z followed by the label's one-hot code."""
    if layout != "report":
        raise ValueError(f"layout {layout!r}: the VAE decoders have only the report's layout")
    k = kernel or 3
    stem = [
        keras.Input((latent_dim + classes,), name="z_and_label" if classes else "z"),
        layers.Dense(7 * 7 * 32, activation="relu"),
        layers.Reshape((7, 7, 32)),
    ]
    op = operator_of(upsampling)
    if op.stage == TRANSPOSED:
        head = [
            layers.Conv2DTranspose(64, k, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(32, k, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(1, 3, strides=1, padding="same"),
        ]
    elif op.stage == INTERPOLATED:
        head = [
            layers.UpSampling2D(2, interpolation=op.interpolation),
            layers.Conv2D(64, k, padding="same", activation="relu"),
            layers.UpSampling2D(2, interpolation=op.interpolation),
            layers.Conv2D(32, k, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same", use_bias=False),
        ]
    else:  # SHUFFLED; ReLU is elementwise, so applying it before the shuffle equals applying it after.
        head = [
            layers.Conv2D(4 * 64, k, padding="same", activation="relu", name="subpixel_conv_64"),
            DepthToSpace(2),
            layers.Conv2D(4 * 32, k, padding="same", activation="relu", name="subpixel_conv_32"),
            DepthToSpace(2),
            layers.Conv2D(1, 3, padding="same", use_bias=False),
        ]
    prefix = "cvae" if classes else "vae"
    model = keras.Sequential(stem + head, name=f"{prefix}_decoder_{upsampling}" + (f"_k{kernel}" if kernel else ""))
    if op.stage == SHUFFLED:
        for layer in model.layers:
            if layer.name.startswith("subpixel_conv"):
                icnr_(layer)
    return model


def log_normal_pdf(sample, mean, logvar):
    return ops.sum(-0.5 * ((sample - mean) ** 2.0 * ops.exp(-logvar) + logvar + LOG_2PI), axis=1)


def sigmoid_cross_entropy(logits, labels):
    """max(x, 0) − x·z + log(1 + e^−|x|): TensorFlow's `sigmoid_cross_entropy_with_logits`, in Keras ops."""
    return ops.maximum(logits, 0.0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))


def elbo(encode, decode, x, eps):
    """Per-example ELBO, log p(x|z) + log p(z) − log q(z|x), with z = mean + eps·σ (the tutorial's estimator)."""
    mean, logvar = ops.split(encode(x), 2, axis=1)
    z = eps * ops.exp(logvar * 0.5) + mean
    logpx_z = -ops.sum(sigmoid_cross_entropy(decode(z), x), axis=[1, 2, 3])
    return logpx_z + log_normal_pdf(z, 0.0, 0.0) - log_normal_pdf(z, mean, logvar)


class VaeJob(JobBase):
    """Owns encoder, decoder, Adam and the tutorial's single-sample Monte-Carlo ELBO."""

    family = "vae"
    images = staticmethod(vae_images)
    output = FAMILIES["vae"].output

    def __init__(
        self,
        upsampling: str,
        latent_dim: int,
        learning_rate: float,
        batch_size: int,
        kernel: int | None = None,
        layout: str = "report",
        classes: int = 0,
    ):
        self.latent_dim, self.classes = latent_dim, classes
        self.encoder = build_encoder(latent_dim, classes)
        self.decoder = build_decoder(upsampling, latent_dim, kernel, layout, classes)
        self.generator = self.decoder
        self.opt = keras.optimizers.Adam(learning_rate)
        self._trainable = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.opt.build(self._trainable)
        if self.encoder.non_trainable_variables or self.decoder.non_trainable_variables:
            raise ValueError(
                "the VAE step assumes networks without non-trainable state (no BatchNormalization, no Dropout)"
            )
        self.groups = [self._trainable, self.opt.variables]
        self._step, self.sync = compile_step(self._tf_step, self._jax_step, self.groups)

    def stateful(self) -> dict[str, list]:
        return {"encoder": self.encoder.variables, "decoder": self.decoder.variables, "opt": self.opt.variables}

    def step_inputs(self, batch: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        eps = rng.standard_normal((batch[0].shape[0], self.latent_dim), dtype=np.float32)
        return (*batch, eps)

    def _coders(self, encode, decode, onehot):
        """The ELBO's encode(x) and decode(z); with labels, each also sees the label (channels / one-hot code)."""
        if onehot is None:
            return encode, decode
        return (
            lambda x: encode(label_maps(x, onehot)),
            lambda z: decode(ops.concatenate([z, onehot], axis=1)),
        )

    @staticmethod
    def losses(outputs) -> dict:
        return {"loss": outputs}

    def _tf_step(self, x, *rest):
        import tensorflow as tf

        onehot, eps = label_and_noise(rest)
        encode, decode = self._coders(self.encoder, self.decoder, onehot)
        with tf.GradientTape() as tape:
            loss = -ops.mean(elbo(encode, decode, x, eps))
        grads = tape.gradient(loss, self._trainable)
        self.opt.apply_gradients(zip(grads, self._trainable))
        return loss

    def _jax_step(self, values, x, *rest):
        import jax

        trainable, opt_values = values
        n_enc = len(self.encoder.trainable_variables)
        onehot, eps = label_and_noise(rest)

        def loss_fn(trainable):
            encode = lambda v: self.encoder.stateless_call(trainable[:n_enc], [], v)[0]  # noqa: E731
            decode = lambda z: self.decoder.stateless_call(trainable[n_enc:], [], z)[0]  # noqa: E731
            return -ops.mean(elbo(*self._coders(encode, decode, onehot), x, eps))

        loss, grads = jax.value_and_grad(loss_fn)(trainable)
        trainable, opt_values = self.opt.stateless_apply(opt_values, grads, trainable)
        return (trainable, opt_values), loss

    def test_elbo(self, test: tuple[np.ndarray, ...], rng: np.random.Generator, batch: int = 500) -> float:
        """Mean single-sample ELBO over the test set (nats per image)."""
        total, n = 0.0, len(test[0])
        for i in range(0, n, batch):
            part = tuple(a[i : i + batch] for a in test)
            eps = rng.standard_normal((len(part[0]), self.latent_dim), dtype=np.float32)
            total += float(np.sum(to_numpy(self._elbo_batch(*part, eps))))
        return total / n

    def _elbo_batch(self, x: np.ndarray, *rest):
        if self._elbo_compiled is None:

            def fn(x, *rest):
                onehot, eps = label_and_noise(rest)
                return elbo(*self._coders(self.encoder, self.decoder, onehot), x, eps)

            if backend() == "tensorflow":
                import tensorflow as tf

                fn = tf.function(fn)
            self._elbo_compiled = fn
        return self._elbo_compiled(x, *rest)

    _elbo_compiled = None

    def end_of_epoch(self, test: tuple[np.ndarray, ...], rng: np.random.Generator) -> dict[str, float]:
        return {"test_elbo": self.test_elbo(test, rng)}

    def encode_mean(self, images: np.ndarray, onehot: np.ndarray | None = None) -> np.ndarray:
        """The encoder's mean; with labels, returned as the decoder's conditional input (mean followed by the code)."""
        if onehot is None:
            return np.split(to_numpy(self.encoder(images, training=False)), 2, axis=1)[0]
        mean = np.split(to_numpy(self.encoder(label_maps(images, onehot), training=False)), 2, axis=1)[0]
        return np.concatenate([mean, onehot], axis=1)

    def extra_models(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder}
