"""The report's DCGAN (TensorFlow DCGAN tutorial): two generators and the shared discriminator."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from arena.variants import FAMILIES, INTERPOLATED, SHUFFLED, TRANSPOSED, operator_of
from training.families.backends import compile_step, label_and_noise
from training.families.interface import JobBase
from training.families.layers import DepthToSpace, icnr_, label_maps
from training.loop.data import gan_images

NOISE_DIM = 100


def _upsample_stage(upsampling: str, filters: int, kernel: int, activation: str | None = None) -> list:
    """One ×2 upsampling stage built as its operator says (arena/variants.py OPERATORS): a stride-2 transposed
    convolution, a resize (nearest or bilinear) followed by a 'same' convolution, or a convolution to 4× channels and
    a sub-pixel shuffle."""
    op = operator_of(upsampling)
    if op.stage == TRANSPOSED:
        return [
            layers.Conv2DTranspose(filters, kernel, strides=2, padding="same", use_bias=False, activation=activation)
        ]
    if op.stage == INTERPOLATED:
        return [
            layers.UpSampling2D(2, interpolation=op.interpolation),
            layers.Conv2D(filters, kernel, padding="same", use_bias=False, activation=activation),
        ]
    return [
        layers.Conv2D(
            4 * filters,
            kernel,
            padding="same",
            use_bias=False,
            activation=activation,
            name=f"subpixel_conv_{filters}",
        ),
        DepthToSpace(2),
    ]


def build_generator(
    upsampling: str,
    latent_dim: int = NOISE_DIM,
    kernel: int | None = None,
    layout: str = "report",
    classes: int = 0,
) -> keras.Sequential:
    """`transpose` (report layout): the tutorial's generator — a stride-1 5×5 transposed stage to 128 channels, then
    two stride-2 stages (kernel 5, or `kernel`). `resize` (report layout): the report's UpSampling2D + 3×3 Conv2D
    version (one stage fewer). `layout="matched"`: the tutorial's stages with each stride-2 transposed convolution
    replaced by the given operator (same depth, kernels, channels). `layout="shallow"`: the report's resize stages
    with each UpSampling2D + Conv2D replaced by the given operator (the factorial's fourth cell: a stride-2 3×3
    transposed convolution in the resize generator's place). With `classes`, conditional: the input is the latent
    followed by the label's one-hot code (`arena.latents.with_labels`), as in the Keras conditional-GAN example; the
    upsampling stages are unchanged."""
    stem = [
        keras.Input((latent_dim + classes,), name="noise_and_label" if classes else "noise"),
        layers.Dense(7 * 7 * 256, use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
    ]
    if layout == "shallow" or (layout == "report" and operator_of(upsampling).report_gan_stages == "shallow"):
        k = kernel or 3
        head = [
            *_upsample_stage(upsampling, 64, k),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            *_upsample_stage(upsampling, 1, k, "tanh"),
        ]
    elif layout in ("report", "matched"):
        k = kernel or 5
        head = [
            layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            *_upsample_stage(upsampling, 64, k),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            *_upsample_stage(upsampling, 1, k, "tanh"),
        ]
    else:
        raise ValueError(f"layout {layout!r} is not 'report', 'matched' or 'shallow'")
    model = keras.Sequential(
        stem + head,
        name=("cgan" if classes else "gan")
        + f"_generator_{upsampling}"
        + (f"_k{kernel}" if kernel else "")
        + (f"_{layout}" if layout != "report" else ""),
    )
    if operator_of(upsampling).stage == SHUFFLED:
        for layer in model.layers:
            if layer.name.startswith("subpixel_conv"):
                icnr_(layer)
    return model


def build_discriminator(classes: int = 0) -> keras.Sequential:
    """Shared by both GANs: two strided 5×5 convolutions and a logit. With `classes`, the label enters as that many
    extra input channels (its one-hot code broadcast over the image)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1 + classes), name="image_and_label" if classes else "image"),
            layers.Conv2D(64, 5, strides=2, padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Conv2D(128, 5, strides=2, padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(1),
        ],
        name="cgan_discriminator" if classes else "gan_discriminator",
    )


class GanJob(JobBase):
    """Owns the networks, both Adam optimisers and the tutorial's train step."""

    family = "gan"
    images = staticmethod(gan_images)
    output = FAMILIES["gan"].output

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
        self.latent_dim, self.batch_size, self.classes = latent_dim, batch_size, classes
        self.generator = build_generator(upsampling, latent_dim, kernel, layout, classes)
        self.discriminator = build_discriminator(classes)
        self.g_opt = keras.optimizers.Adam(learning_rate)
        self.d_opt = keras.optimizers.Adam(learning_rate)
        self.g_opt.build(self.generator.trainable_variables)
        self.d_opt.build(self.discriminator.trainable_variables)
        self._bce = keras.losses.BinaryCrossentropy(from_logits=True)
        g, d = self.generator, self.discriminator
        groups = [
            g.trainable_variables,
            g.non_trainable_variables,
            d.trainable_variables,
            d.non_trainable_variables,
            self.g_opt.variables,
            self.d_opt.variables,
        ]
        self.groups = (
            groups  # the values a JAX step carries, in its order (stacked per seed by training/loop/vmapped.py)
        )
        self._step, self.sync = compile_step(self._tf_step, self._jax_step, groups)

    def stateful(self) -> dict[str, list]:
        """Everything a checkpoint must hold to resume bit-for-bit."""
        return {
            "generator": self.generator.variables,
            "discriminator": self.discriminator.variables,
            "g_opt": self.g_opt.variables,
            "d_opt": self.d_opt.variables,
        }

    def step_inputs(self, batch: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        if self.classes:  # the fakes are asked for the real batch's labels (the Keras conditional-GAN example)
            images, onehot = batch
            return images, onehot, rng.standard_normal((len(images), self.latent_dim), dtype=np.float32)
        # The tutorial draws BATCH_SIZE noise vectors even for the short last batch; so do we.
        return batch[0], rng.standard_normal((self.batch_size, self.latent_dim), dtype=np.float32)

    @staticmethod
    def losses(outputs) -> dict:
        g_loss, d_loss = outputs
        return {"gen_loss": g_loss, "disc_loss": d_loss}

    def _losses(self, real_out, fake_out):
        # The last batch of an epoch can hold fewer real images than noise vectors: each target takes its own
        # output's shape, as in the tutorial.
        ones_fake, ones_real, zeros_fake = (
            keras.ops.ones_like(fake_out),
            keras.ops.ones_like(real_out),
            keras.ops.zeros_like(fake_out),
        )
        return self._bce(ones_fake, fake_out), self._bce(ones_real, real_out) + self._bce(zeros_fake, fake_out)

    def _conditioned(self, images, noise, onehot):
        """(generator input, discriminator inputs for the real and the fake images' maker)."""
        if onehot is None:
            return noise, (lambda x: x)
        return keras.ops.concatenate([noise, onehot], axis=1), (lambda x: label_maps(x, onehot))

    def _tf_step(self, images, *rest):
        import tensorflow as tf

        onehot, noise = label_and_noise(rest)
        g_in, d_in = self._conditioned(images, noise, onehot)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(g_in, training=True)
            real_out = self.discriminator(d_in(images), training=True)
            fake_out = self.discriminator(d_in(fake), training=True)
            g_loss, d_loss = self._losses(real_out, fake_out)
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        return g_loss, d_loss

    def _jax_step(self, values, images, *rest):
        """The same step as a pure function: one forward pass, each loss differentiated for its own network."""
        import jax

        g_tr, g_nt, d_tr, d_nt, g_ov, d_ov = values
        onehot, noise = label_and_noise(rest)
        g_in, d_in = self._conditioned(images, noise, onehot)

        def forward(g_tr, d_tr):
            fake, g_nt2 = self.generator.stateless_call(g_tr, g_nt, g_in, training=True)
            real_out, d_nt2 = self.discriminator.stateless_call(d_tr, d_nt, d_in(images), training=True)
            fake_out, d_nt2 = self.discriminator.stateless_call(d_tr, d_nt2, d_in(fake), training=True)
            return self._losses(real_out, fake_out), (g_nt2, d_nt2)

        (g_loss, d_loss), pullback, (g_nt, d_nt) = jax.vjp(forward, g_tr, d_tr, has_aux=True)
        one, zero = keras.ops.ones_like(g_loss), keras.ops.zeros_like(g_loss)
        g_grads, _ = pullback((one, zero))
        _, d_grads = pullback((zero, one))
        g_tr, g_ov = self.g_opt.stateless_apply(g_ov, g_grads, g_tr)
        d_tr, d_ov = self.d_opt.stateless_apply(d_ov, d_grads, d_tr)
        return (g_tr, g_nt, d_tr, d_nt, g_ov, d_ov), (g_loss, d_loss)

    def extra_models(self) -> dict[str, keras.Model]:
        return {"discriminator": self.discriminator}
