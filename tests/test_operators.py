"""One operator registry (arena/variants.py OPERATORS): an operator is one entry saying how its stages are built, and
no other product file names an operator by its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arena.variants import INTERPOLATED, OPERATORS, SHUFFLED, TRANSPOSED, operator_of

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("app", "arena", "training", "deconv_arena", "templates")
LITERAL = re.compile(r"""["'](%s)["']""" % "|".join(map(re.escape, OPERATORS)))


def test_no_operator_key_is_written_out_outside_the_registry():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}"
        for folder in PRODUCT
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".py", ".html", ".js") and path != ROOT / "arena" / "variants.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if LITERAL.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_grep_catches_a_written_out_operator():
    assert LITERAL.search('if upsampling == "resize":') and LITERAL.search("{% for o in ('transpose',) %}")
    assert not LITERAL.search('name="subpixel_conv_64"') and not LITERAL.search("interpolation=op.interpolation")


def test_every_operator_says_how_its_stages_are_built():
    for key, op in OPERATORS.items():
        assert op.stage in (TRANSPOSED, INTERPOLATED, SHUFFLED), key
        assert (op.interpolation is not None) == (op.stage == INTERPOLATED), key
        assert op.words and op.short
    with pytest.raises(ValueError, match="'bicubic' is not one of transpose, resize, bilinear, subpixel"):
        operator_of("bicubic")


@pytest.mark.slow  # builds Keras models
def test_a_new_operator_is_one_entry(monkeypatch):
    """A bicubic resize-convolution, declared by its entry alone, builds GAN and VAE generators with bicubic
    UpSampling2D layers where the nearest-neighbour ones have nearest."""
    from arena import variants
    from training.families import gan, vae

    monkeypatch.setitem(
        variants.OPERATORS, "bicubic", variants.Operator("bicubic resize", "bicubic", INTERPOLATED, "bicubic")
    )
    for build in (gan.build_generator, lambda op: vae.build_decoder(op, 2)):
        model = build("bicubic")
        modes = [layer.interpolation for layer in model.layers if type(layer).__name__ == "UpSampling2D"]
        assert modes and set(modes) == {"bicubic"}, model.name
        assert model.output_shape[1:3] == (28, 28)


def test_the_variant_table_holds_together():
    """Each row names a known family, operator and layout; a reference exists in the same family; a factorial's cells
    are complete; a conditional row's unconditional counterpart exists in the matching family."""
    from arena.variants import FAMILIES, LAYOUTS, VARIANTS, factorials

    for name, v in VARIANTS.items():
        assert v.family in FAMILIES and v.upsampling in OPERATORS and v.layout in LAYOUTS, name
        if v.reference:
            assert VARIANTS[v.reference].family == v.family and v.reference != name, name
        if v.unconditional:
            u = VARIANTS[v.unconditional]
            assert v.classes and not u.classes and u.facts.kind == v.facts.kind, name
    assert factorials() and all(f.complete for f in factorials())
