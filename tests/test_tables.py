"""The tables in docs/evaluation.md are the shipped store's, cell for cell; the About page shows the same rows."""

from __future__ import annotations

import json
from pathlib import Path

from arena.ablation import ablation_rows
from arena.variants import VARIANTS
from deconv_arena.generated_docs import (
    BEGIN,
    END,
    REP_BEGIN,
    REP_END,
    ablation_markdown,
    replicates_markdown,
    update_readme,
)
from tests.conftest import manifest_record

ROOT = Path(__file__).resolve().parents[1]


def test_doc_tables_are_the_shipped_ones():
    text = (ROOT / "docs" / "evaluation.md").read_text()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == ablation_markdown(ROOT / "models_store"), "run `deconv-arena tables` after evaluating"
    block = text.split(REP_BEGIN, 1)[1].split(REP_END, 1)[0].strip()
    assert block == replicates_markdown(ROOT / "models_store"), "run `deconv-arena tables` after replicates"


def test_replicates_table_shows_intervals_seeds_and_no_verdicts(tmp_path):
    from arena.replicates import INDEX

    iv = lambda m, lo, hi, n: {"mean": m, "low": lo, "high": hi, "n": n}  # noqa: E731
    stats = {
        "models": {
            "vae_transpose": {
                "paper": {
                    "epochs": 10,
                    "seeds": [1, 2, 3],
                    "failed": {"4": {"stage": "training"}},
                    "metrics": {"frechet": iv(200.0, 190.0, 210.0, 3)},
                    "trained_on": {
                        "1": "CPU, tensorflow, float32",
                        "2": "CPU, tensorflow, float32",
                        "3": "NVIDIA H200, jax, jax precision highest",
                    },
                }
            },
            "vae_upsample": {
                "paper": {"epochs": 10, "seeds": [1], "failed": {}, "metrics": {"frechet": iv(180.0, None, None, 1)}}
            },
        },
        "comparisons": [
            {
                "a": "vae_upsample",
                "b": "vae_transpose",
                "profile": "paper",
                "trained_on": "CPU, tensorflow, float32",
                "seeds": [1, 2, 3],
                "metrics": {
                    "frechet": {
                        "difference": iv(-20.0, -30.0, -10.0, 3),
                        "score_difference": iv(-20.0, -30.0, -10.0, 3),
                        "role": "primary",
                        "p": 0.004,
                        "p_adjusted": 0.02,
                        "verdict": "vae_upsample better",
                    },
                    "kid": {
                        "difference": iv(-1.0, -3.0, 1.0, 3),
                        "score_difference": iv(-1.0, -3.0, 1.0, 3),
                        "role": "secondary",
                        "p": 0.2,
                        "p_adjusted": 0.6,
                        "verdict": "inconclusive with 3 seeds",
                        "seeds_for_difference_80": 12,
                        "delta": 0.5,
                    },
                },
            }
        ],
    }
    (tmp_path / INDEX).write_text(json.dumps(stats))
    table = replicates_markdown(tmp_path)
    assert (
        "| `vae_transpose` | paper, 10 epochs | 1, 2, 3 (1 failed) | 1, 2: CPU, "
        "tensorflow, float32; 3: NVIDIA H200, jax, jax precision highest | 200 [190, 210] |" in table
    )
    assert "| `vae_upsample` | paper, 10 epochs | 1 | not recorded | 180 (one seed) |" in table
    assert (
        "| `vae_upsample` vs `vae_transpose` | paper | CPU, tensorflow, float32 | 1, 2, 3 | Fréchet "
        "distance (classifier features) | primary | −20 [−30, −10] | – |" in table
    )
    assert (
        "| KID (classifier features) | secondary | −1.0 [−3.0, +1.0] | 12 / – seeds (difference of 0.5 / equivalence) |"
        in (table)
    )
    assert "better" not in table and "Holm" not in table  # exploratory: no verdict, no adjusted p
    assert table.index("| primary |") < table.index("| secondary |")
    assert replicates_markdown(tmp_path / "empty") == "No replicate runs yet."


def test_rows_cover_the_table_and_say_what_is_missing(tmp_path):
    store = tmp_path / "store"
    (store / "vae_upsample").mkdir(parents=True)
    (store / "vae_upsample" / "manifest.json").write_text(
        json.dumps(
            manifest_record(
                {"params": {"total": 41952}, "epochs_done": 10, "paper_epochs": 10, "seconds_per_epoch_mean": 50.0}
            )
        )
    )
    (store / "summary.json").write_text(
        json.dumps(
            {
                "models": {
                    "vae_upsample": {
                        "frechet": 177.8,
                        "kid": 8.4,
                        "legibility": 0.785,
                        "recall": 0.003,
                        "checkerboard_ratio": 0.07,
                    }
                }
            }
        )
    )
    rows = {r["variant"]: r for r in ablation_rows(store)}
    assert list(rows) == list(VARIANTS)
    assert (
        rows["vae_upsample"]["frechet"] == 177.8
        and rows["vae_upsample"]["epochs"] == "10 of 10"
        and rows["vae_upsample"]["checkerboard_init"] is None
    )
    table = ablation_markdown(store)
    assert "| `vae_upsample` | `vae_transpose` | 177.8 | 8.40 | 0.785 | 0.003 | 0.07 | – |" in table
    assert table.count("not trained yet") == len(VARIANTS) - 1
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\nrest\n")
    assert update_readme(readme, store) and not update_readme(readme, store)
    assert (
        readme.read_text().startswith("intro\n")
        and readme.read_text().endswith(f"{END}\nrest\n")
        and "old" not in readme.read_text()
    )


def test_about_page_has_the_ablation_table(client):
    r = client.get("/about")
    assert r.status_code == 200 and "Ablation" in r.text
    for name, v in VARIANTS.items():  # a control names its reference beneath its own name
        assert f"<td>{name}{'<br>' if v.reference else '</td>'}" in r.text
        if v.reference:
            assert f'<td>{name}<br><span class="note">vs {v.reference}</span></td>' in r.text


def test_curves_figure_needs_curves(tmp_path):
    from training.evaluation.curves_figure import plot_curves

    store = tmp_path / "store"
    (store / "vae_bilinear").mkdir(parents=True)
    (store / "vae_bilinear" / "manifest.json").write_text(
        json.dumps(manifest_record({"config": {"profile": "paper"}, "history": [{"epoch": 1}]}, "vae_bilinear"))
    )
    assert plot_curves(store) is None and not (store / "curves.png").exists()
    history = [{"epoch": e, "curve_checkerboard_ratio": 0.1 * e} for e in (1, 2, 3)]
    (store / "vae_bilinear" / "manifest.json").write_text(
        json.dumps(manifest_record({"config": {"profile": "paper"}, "history": history}, "vae_bilinear"))
    )
    assert plot_curves(store) == store / "curves.png" and (store / "curves.png").stat().st_size > 1000


def test_the_readme_findings_are_one_short_table_after_the_commands():
    from deconv_arena.generated_docs import STUDY_BEGIN, STUDY_END, STUDY_ROWS_MAX

    text = (ROOT / "README.md").read_text()
    block = text.split(STUDY_BEGIN, 1)[1].split(STUDY_END, 1)[0]
    rows = [ln for ln in block.splitlines() if ln.startswith("| ") and not ln.startswith("| question")]
    assert 0 < len(rows) <= STUDY_ROWS_MAX and len(block) <= 4000
    assert text.index("make run") < text.index(STUDY_BEGIN)
    assert "findings-begin" not in text  # the long sentences live in docs/evaluation.md


def test_an_estimate_and_its_interval_are_written_one_way_with_digits_its_interval_supports():
    """arena.stats.estimate_text, which every page, table and the README use: known answers, then over random
    intervals (distances 1e-5 to 1e4 on each side, as asymmetric as a bounded measure's) the estimate prints strictly
    between its printed ends, and no hyphen stands for a minus."""
    import numpy as np

    from arena.stats import estimate_text

    assert estimate_text(-8.98, -9.97, -7.9957) == "−8.98 [−9.97, −8.00]"  # not "−8": one precision for all three
    assert estimate_text(-17.3, -22.1, -12.5) == "−17.3 [−22.1, −12.5]"
    assert estimate_text(0.0191, 1.52e-05, 0.636, signed=False) == "0.019 [1.5e−05, 0.636]"  # a tiny end is not 0
    assert estimate_text(-0.01, -3, 3) == "0.0 [−3.0, +3.0]"  # no signed zero
    assert estimate_text(3.21) == "+3.21" and estimate_text(180, signed=False) == "180"
    assert estimate_text(0.0, 0.0, 0.0) == "0 (every seed the same: no interval)"  # never "[0, 0]"
    rng = np.random.default_rng(5)
    for _ in range(2000):
        mean = rng.normal(0, 10 ** rng.uniform(-3, 3))
        below, above = 10 ** rng.uniform(-5, 4, size=2)
        text = estimate_text(mean, mean - below, mean + above)
        assert "-" not in text, text
        shown = [float(x) for x in text.replace("−", "-").replace("[", " ").replace("]", " ").split(",")[0].split()]
        shown.append(float(text.replace("−", "-").split(",")[1].strip(" ]")))
        m, lo, hi = shown
        assert lo < m < hi, (mean, below, above, text)  # the estimate never prints on an end of its interval
