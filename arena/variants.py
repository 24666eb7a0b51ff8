"""The one variant table, and the facts of each model family: every other module reads them from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """What every generator of a family shares: the report's protocol and what its output layer gives."""

    name: str
    paper_epochs: int  # the report's budget: GAN 50 epochs, VAE 10
    batch_size: int
    learning_rate: float
    latent_dim: int
    output: str  # "tanh" in [-1, 1] | "logits" (sigmoid of them in [0, 1])
    quick_epochs: int  # the `quick` profile's budget
    smoke_batch_size: int  # the `smoke` profile's batch (a few steps on a few hundred images)
    interpolation: str  # "slerp" between Gaussian latents of many dimensions, "lerp" in a 2-D latent plane
    kind: str = ""  # the networks, training step and equivalence margins (δ) it shares: "gan" or "vae" (default: name)
    title: str = ""  # in words, for pages
    short: str = ""  # a tag beside each model, e.g. "GAN"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", self.kind or self.name)


_GAN = dict(
    paper_epochs=50,
    batch_size=256,
    learning_rate=1e-4,
    latent_dim=100,
    output="tanh",
    quick_epochs=10,
    smoke_batch_size=64,
    interpolation="slerp",
)
_VAE = dict(
    paper_epochs=10,
    batch_size=32,
    learning_rate=1e-4,
    latent_dim=2,
    output="logits",
    quick_epochs=3,
    smoke_batch_size=32,
    interpolation="lerp",
)
# The conditional families (the report's next step) share their unconditional family's protocol, networks and δ;
# they are families of their own so that pages group them and rating pairs them only with each other.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("gan", **_GAN, title="DCGAN", short="GAN"),
        Family("vae", **_VAE, title="Convolutional VAE", short="VAE"),
        Family("cgan", **_GAN, kind="gan", title="Conditional DCGAN, asked for a digit", short="cGAN"),
        Family("cvae", **_VAE, kind="vae", title="Conditional VAE, asked for a digit", short="cVAE"),
    )
}

# How an operator builds each ×2 stage (training/families/gan.py and training/families/vae.py build from these, never
# from a key).
TRANSPOSED = "stride-2 transposed convolution"
INTERPOLATED = "resize, then a 'same' convolution"
SHUFFLED = "convolution to 4× channels, then a pixel shuffle (ICNR-initialised)"


@dataclass(frozen=True)
class Operator:
    """An upsampling operator: one entry here is all a new operator of a known kind of stage needs."""

    words: str  # its name in words, for pages and manifests
    short: str  # its name in the factorials' effects ("resize − transposed")
    stage: str  # TRANSPOSED, INTERPOLATED or SHUFFLED
    interpolation: str | None = None  # an INTERPOLATED stage's resize: Keras' "nearest" or "bilinear"
    report_gan_stages: str = "tutorial"  # the stages the report's own GAN has with it ("shallow": the resize GAN's)


OPERATORS = {
    "transpose": Operator("transposed convolution", "transposed", TRANSPOSED),
    "resize": Operator(
        "nearest-neighbour resize + convolution", "resize", INTERPOLATED, "nearest", report_gan_stages="shallow"
    ),
    "bilinear": Operator("bilinear resize + convolution", "bilinear", INTERPOLATED, "bilinear"),
    "subpixel": Operator("sub-pixel convolution (ICNR)", "sub-pixel", SHUFFLED),
}


def operator_of(key: str) -> Operator:
    """The operator named `key`; a ValueError naming the accepted keys otherwise."""
    try:
        return OPERATORS[key]
    except KeyError:
        raise ValueError(f"upsampling {key!r} is not one of {', '.join(OPERATORS)}") from None


LAYOUTS = {"report": [], "matched": ["the transposed network's stages"], "shallow": ["the resize network's 3×3 stages"]}


@dataclass(frozen=True)
class Variant:
    """One generator the project trains, serves, evaluates and rates: a row of the one variant table."""

    name: str
    family: str  # a key of FAMILIES
    upsampling: str  # a key of OPERATORS
    reference: str | None = None  # the variant it is compared with (paired by seed, rated against)
    question: str = ""  # what the comparison with its reference asks
    report: bool = False  # one of the report's own generators
    kernel: int | None = None  # kernel of the upsampling stages, where it differs from the report's network
    layout: str = "report"  # "matched": the transposed GAN's stages, "shallow": the resize GAN's, the operator swapped
    primary: str = (
        "frechet"  # the primary metric of the (exploratory) comparison with its reference, declared after its runs
    )
    network: str | None = None  # its cell of the operator × network factorial: "tutorial" or "shallow" stages
    classes: int = 0  # > 0: conditional on a label of that many classes (its one-hot code joins the latent)
    unconditional: str | None = None  # a conditional variant's counterpart without the label (× conditioning)

    @property
    def facts(self) -> Family:
        return FAMILIES[self.family]

    @property
    def operator(self) -> Operator:
        return OPERATORS[self.upsampling]

    def describe(self) -> str:
        """The upsampling in words, for pages and manifests."""
        extra = ([f"kernel {self.kernel}"] if self.kernel else []) + LAYOUTS[self.layout]
        return OPERATORS[self.upsampling].words + (f" ({', '.join(extra)})" if extra else "")


# The one list of model names. Order: by family, the report's pair first; a variant with a reference is compared
# with it (replicate verdicts, rating schedule), the report's pairs weighted up.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("gan_transpose", "gan", "transpose", report=True, network="tutorial"),
        Variant(
            "gan_upsample",
            "gan",
            "resize",
            "gan_transpose",
            "the report's GAN comparison: transposed vs resize-convolution "
            "(also differs in depth, kernel size and parameters)",
            True,
            network="shallow",
        ),
        Variant(
            "gan_upsample_matched",
            "gan",
            "resize",
            "gan_transpose",
            "only the operator differs: same stages, 5×5 kernels, channels and parameters",
            layout="matched",
            network="tutorial",
        ),
        Variant(
            "gan_transpose_shallow",
            "gan",
            "transpose",
            "gan_upsample",
            "only the operator differs in the report's shallow network: "
            "same 3×3 stages, channels and parameters as the resize GAN",
            layout="shallow",
            network="shallow",
        ),
        Variant(
            "gan_transpose_k4",
            "gan",
            "transpose",
            "gan_transpose",
            "kernel divisible by the stride (4×4, even overlap) vs the report's 5×5: fewer checkerboard artefacts?",
            kernel=4,
            primary="checkerboard_ratio",
        ),
        Variant("vae_transpose", "vae", "transpose", report=True),
        Variant(
            "vae_upsample",
            "vae",
            "resize",
            "vae_transpose",
            "the report's VAE comparison: transposed vs resize-convolution decoder",
            True,
        ),
        Variant(
            "vae_transpose_k4",
            "vae",
            "transpose",
            "vae_transpose",
            "kernel divisible by the stride (4×4, even overlap) vs the tutorial's "
            "3×3: fewer checkerboard artefacts? (also 70,625 vs 41,953 parameters)",
            kernel=4,
            primary="checkerboard_ratio",
        ),
        Variant(
            "vae_bilinear",
            "vae",
            "bilinear",
            "vae_upsample",
            "bilinear vs nearest-neighbour resizing before the convolution: fewer artefacts?",
            primary="checkerboard_ratio",
        ),
        Variant(
            "vae_subpixel",
            "vae",
            "subpixel",
            "vae_transpose",
            "sub-pixel convolution initialised with ICNR vs transposed convolution: fewer checkerboard artefacts?",
            primary="checkerboard_ratio",
        ),
        Variant("cgan_transpose", "cgan", "transpose", classes=10, unconditional="gan_transpose"),
        Variant(
            "cgan_upsample",
            "cgan",
            "resize",
            "cgan_transpose",
            "the report's GAN comparison asked for a digit: transposed vs resize-convolution, label at the "
            "generator's input and as discriminator channels (networks otherwise the report's)",
            classes=10,
            unconditional="gan_upsample",
        ),
        Variant("cvae_transpose", "cvae", "transpose", classes=10, unconditional="vae_transpose"),
        Variant(
            "cvae_upsample",
            "cvae",
            "resize",
            "cvae_transpose",
            "the report's VAE comparison asked for a digit: transposed vs resize-convolution decoder, label at the "
            "decoder's input and as encoder channels",
            classes=10,
            unconditional="vae_upsample",
        ),
    )
}


def comparisons() -> list[tuple[Variant, Variant]]:
    """(variant, its reference) for every variant that has one, in table order."""
    return [(v, VARIANTS[v.reference]) for v in VARIANTS.values() if v.reference]


@dataclass(frozen=True)
class Factor:
    """The second factor of a 2×2 design beside the operator: its two levels (reference first), their names in
    words, and what a reader must know about it."""

    levels: tuple[str, str]
    words: dict[str, str]
    note: str


FACTORS = {
    "network": Factor(
        ("tutorial", "shallow"),
        {"tutorial": "tutorial stages (5×5)", "shallow": "report's shallow stages (3×3)"},
        '"Network" bundles depth and kernel size.',
    ),
    "conditioning": Factor(
        ("unconditional", "conditional"),
        {"unconditional": "without a label", "conditional": "asked for a digit"},
        "Conditioning adds the one-hot label at the generator's input and as channels of the discriminator or "
        "encoder; the conditional and unconditional runs of a seed share its data order.",
    ),
}


@dataclass(frozen=True)
class Factorial:
    """Operator × a second factor, each effect paired by seed. "network": the variants of one family that name their
    `network` — it bundles depth and kernel size (the tutorial's stages with 5×5 kernels vs the report's shallower
    3×3 resize stages), so the factorial separates it from the operator, not depth from kernel size.
    "conditioning": a conditional family's pair and the unconditional pair it adds the label to."""

    family: str  # the family that declares it (its δ is its kind's)
    cells: dict[tuple[str, str], str]  # (operator, level) -> variant name
    factor: str = "network"

    OPERATORS = ("transpose", "resize")

    @property
    def levels(self) -> tuple[str, str]:
        return FACTORS[self.factor].levels

    @property
    def complete(self) -> bool:
        return all((o, n) in self.cells for o in self.OPERATORS for n in self.levels)


def factorials() -> list[Factorial]:
    """The complete 2×2 designs the table declares: operator × network where a family's variants name their
    network, operator × conditioning where a conditional family's variants name their unconditional one."""
    out = []
    for family in FAMILIES:
        cells = {(v.upsampling, v.network): v.name for v in VARIANTS.values() if v.family == family and v.network}
        conditioning: dict[tuple[str, str], str] = {}
        for v in VARIANTS.values():
            if v.family == family and v.unconditional:
                conditioning[(v.upsampling, "conditional")] = v.name
                base = VARIANTS[v.unconditional]
                conditioning[(base.upsampling, "unconditional")] = base.name
        for f in (Factorial(family, cells), Factorial(family, conditioning, "conditioning")):
            if f.complete:
                out.append(f)
    return out
