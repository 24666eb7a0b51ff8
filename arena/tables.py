"""The ablation table (issue 12 §7), built only from what the store ships: summary.json (evaluation), init_stats.json
(`deconv-arena init-stats`), each model's manifest and metrics. The copy in docs/evaluation.md is rewritten by
`python -m arena.tables` and checked against the store by the tests, so it cannot drift."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from arena.figures import log_floor
from arena.findings import findings_markdown
from arena.replicates import trained_on
from arena.stats import METRIC, wilson_interval
from arena.variants import VARIANTS

BEGIN, END = "<!-- ablation-table-begin -->", "<!-- ablation-table-end -->"
COLUMNS = (
    ("variant", "variant"),
    ("reference", "compared with"),
    ("frechet", "Fréchet ↓"),
    ("kid", "KID ↓"),
    ("legibility", "legibility ↑"),
    ("recall", "recall ↑"),
    ("checkerboard_ratio", "checkerboard trained (× real)"),
    ("checkerboard_init", "checkerboard at init (× real)"),
    ("cv_trained", "polyphase CV trained"),
    ("cv_init", "polyphase CV at init"),
    ("params", "params"),
    ("seconds_per_epoch", "s/epoch"),
    ("trained_on", "trained on"),
    ("epochs", "epochs"),
)


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _cv_trained(metrics: dict[str, Any]) -> float | None:
    kernels = (metrics.get("checkerboard") or {}).get("transposed_kernels") or []
    values = [k["cv_flat_input_median"] for k in kernels if k.get("cv_flat_input_median") is not None]
    return sum(values) / len(values) if values else None


def ablation_rows(store: Path) -> list[dict[str, Any]]:
    """One row per variant of the table, in table order; figures a model does not have yet are None."""
    store = Path(store)
    summary = _load(store / "summary.json").get("models", {})
    init = _load(store / "init_stats.json").get("models", {})
    rows = []
    for name, v in VARIANTS.items():
        s, i = summary.get(name, {}), init.get(name, {})
        manifest, metrics = _load(store / name / "manifest.json"), _load(store / name / "metrics.json")
        rows.append(
            {
                "variant": name,
                "family": v.family,
                "reference": v.reference,
                "report": v.report,
                "trained": bool(manifest),
                "evaluated": bool(s),
                "frechet": s.get("frechet"),
                "kid": s.get("kid"),
                "legibility": s.get("legibility"),
                "recall": s.get("recall"),
                "checkerboard_ratio": s.get("checkerboard_ratio"),
                "checkerboard_init": (i.get("checkerboard_ratio") or {}).get("mean"),
                "cv_trained": _cv_trained(metrics) if s else None,
                "cv_init": (i.get("polyphase_cv") or {}).get("mean"),
                "params": (manifest.get("params") or {}).get("total"),
                "seconds_per_epoch": manifest.get("seconds_per_epoch_mean"),
                "trained_on": trained_on(store / name) if manifest else None,
                "epochs": f"{manifest['epochs_done']} of {manifest.get('paper_epochs')}"
                if manifest.get("epochs_done") is not None
                else None,
            }
        )
    return rows


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key in ("variant", "reference"):
        return f"`{value}`"
    if key == "params":
        return f"{value:,}"
    if key in ("frechet", "seconds_per_epoch"):
        return f"{value:.1f}"
    if key in ("kid", "checkerboard_ratio", "checkerboard_init", "cv_trained", "cv_init"):
        return f"{value:.2f}"
    if key in ("legibility", "recall"):
        return f"{value:.3f}"
    return str(value)


def ablation_markdown(store: Path) -> str:
    rows = ablation_rows(store)
    lines = ["| " + " | ".join(label for _, label in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in rows:
        cells = [_cell(k, r[k]) for k, _ in COLUMNS]
        if not r["trained"]:
            cells[2] = "not trained yet"
        elif not r["evaluated"]:
            cells[2] = "not evaluated yet"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


REP_BEGIN, REP_END = "<!-- replicates-table-begin -->", "<!-- replicates-table-end -->"
FINDINGS_BEGIN, FINDINGS_END = "<!-- findings-begin -->", "<!-- findings-end -->"
STUDY_BEGIN, STUDY_END = "<!-- study-begin -->", "<!-- study-end -->"
STUDY_ROWS_MAX = 12
INIT_BEGIN, INIT_END = "<!-- init-table-begin -->", "<!-- init-table-end -->"


def init_markdown(store: Path) -> str:
    """Checkerboard index and polyphase CV at initialisation per variant, from init_stats.json."""
    models = _load(Path(store) / "init_stats.json").get("models") or {}
    lines = [
        "| variant | checkerboard index at init (× real digits) | polyphase CV of the stride-2 transposed kernels |",
        "| --- | --- | --- |",
    ]
    for name in [n for n in VARIANTS if n in models]:
        r = models[name]
        cb, cv = r["checkerboard_ratio"], r.get("polyphase_cv")
        cv_text = f"{cv['mean']:.2f} [{cv['low']:.2f}, {cv['high']:.2f}]" if cv else "– (none)"
        lines.append(f"| {name} | {cb['mean']:.2f} [{cb['low']:.2f}, {cb['high']:.2f}] | {cv_text} |")
    return "\n".join(lines)


COND_BEGIN, COND_END = "<!-- conditional-table-begin -->", "<!-- conditional-table-end -->"
SHOWN_DIGIT = 7  # the digit the README quotes on its own (the issue's `label=7`)


def _share(p: float, n: int) -> str:
    lo, hi = wilson_interval(round(p * n), n)
    return f"{p:.1%} [{lo:.1%}, {hi:.1%}]"


COND_COLUMNS = (
    "model",
    "trained",
    "read as the digit asked for",
    f"digit {SHOWN_DIGIT}",
    "weakest digit",
    "checkerboard per digit (× real, min – max)",
    "diversity within the digit (× real, min – max)",
)


def conditional_rows(store: Path) -> list[list[str]]:
    """Each served conditional model, from its metrics.json: how often the evaluator reads the digit asked for (all
    digits, digit 7, the weakest digit) with Wilson intervals over the samples, and the per-digit spread of the
    checkerboard index and of within-class diversity."""
    rows = []
    for name in [n for n, v in VARIANTS.items() if v.classes]:
        c = _load(Path(store) / name / "metrics.json").get("conditional")
        if not c:
            rows.append([name, "not trained or not evaluated yet"] + ["–"] * (len(COND_COLUMNS) - 2))
            continue
        per = c["per_class"]
        counts, acc = per["samples"], per["accuracy"]
        weakest = min(range(len(acc)), key=lambda d: acc[d])
        spread = [
            f"{min(v for v in per[k] if v is not None):.2f} – {max(v for v in per[k] if v is not None):.2f}"
            for k in ("checkerboard_ratio", "diversity_ratio")
        ]
        epochs = _load(Path(store) / name / "manifest.json").get("epochs_done")
        rows.append(
            [
                name,
                f"{epochs} epochs, {trained_on(Path(store) / name)}",
                f"{_share(c['accuracy'], c['samples'])} of {c['samples']:,}",
                f"{_share(acc[SHOWN_DIGIT], counts[SHOWN_DIGIT])} of {counts[SHOWN_DIGIT]:,}",
                f"{weakest}: {_share(acc[weakest], counts[weakest])}",
                *spread,
            ]
        )
    return rows


def conditional_markdown(store: Path) -> str:
    lines = ["| " + " | ".join(COND_COLUMNS) + " |", "|" + " --- |" * len(COND_COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in conditional_rows(store)])


REP_METRICS = ("frechet", "kid", "legibility", "checkerboard_ratio", "recall", "frechet_last5", "checkerboard_last5")
ARROW = {"lower": "↓", "higher": "↑", "real": "→ 1×"}


def _iv(iv: dict[str, Any] | None, digits: int = 3) -> str:
    if not iv:
        return "–"
    if iv.get("low") is None:
        return f"{iv['mean']:.{digits}g} (one seed)"
    return f"{iv['mean']:.{digits}g} [{iv['low']:.{digits}g}, {iv['high']:.{digits}g}]"


def _p(p: float | None) -> str:
    return "–" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def replicates_markdown(store: Path) -> str:
    """Mean over seeds with its 95 % t-interval per variant and budget, then each comparison's paired difference of
    scores with its raw and Holm-adjusted p and four-way verdict, from replicates.json."""
    stats = _load(Path(store) / "replicates.json")
    models, comps = stats.get("models") or {}, stats.get("comparisons") or []
    if not models:
        return "No replicate runs yet."
    labels = [f"{METRIC[k].label} {ARROW[METRIC[k].better]}" for k in REP_METRICS]
    lines = [
        "| variant | budget | seeds (failed) | trained on | " + " | ".join(labels) + " |",
        "|" + " --- |" * (4 + len(REP_METRICS)),
    ]
    for name in [n for n in VARIANTS if n in models] + sorted(set(models) - set(VARIANTS)):
        for profile, e in sorted(models[name].items()):
            failed = f" ({len(e['failed'])} failed)" if e.get("failed") else ""
            budget = f"{profile}, {e['epochs']} epochs" if e.get("epochs") else profile
            lines.append(
                f"| `{name}` | {budget} | {', '.join(map(str, e['seeds']))}{failed} | {_places(e)} | "
                + " | ".join(_iv(e["metrics"].get(k)) for k in REP_METRICS)
                + " |"
            )
    if comps:
        lines += [
            "",
            "Score differences A − B (ratios to real digits scored as |ln ratio|); p: paired "
            "t-test, adjusted: Holm over the family named in each row's test (primary: "
            "every comparison's primary metric at that budget and the factorial's effects).",
            "",
            "| comparison (A vs B) | budget | trained on | paired seeds "
            "| metric | role | A − B [95 %] | p | Holm p | verdict |",
            "|" + " --- |" * 10,
        ]
        for c in comps:
            for k in sorted(
                c["metrics"],
                key=lambda k: (c["metrics"][k]["role"] != "primary", REP_METRICS.index(k) if k in REP_METRICS else 99),
            ):
                if k not in REP_METRICS:
                    continue
                t = c["metrics"][k]
                need = f" (≈ {t['seeds_needed']} seeds for ±{t['delta']:g})" if t.get("seeds_needed") else ""
                lines.append(
                    f"| `{c['a']}` vs `{c['b']}` | {c['profile']} | "
                    f"{c['trained_on']} | {', '.join(map(str, c['seeds']))} | {METRIC[k].score_label} | {t['role']} | "
                    f"{_iv(t['score_difference'])} | {_p(t['p'])} | {_p(t.get('p_adjusted'))} | {t['verdict']}{need} |"
                )
    return "\n".join(lines)


def _places(entry: dict) -> str:
    """Seeds grouped by where they trained ('1, 2: NVIDIA H200, jax, …; 3: CPU, tensorflow, float32'); one place alone
    is named without seeds."""
    by_place: dict[str, list[str]] = {}
    for seed, place in (entry.get("trained_on") or {}).items():
        by_place.setdefault(place, []).append(seed)
    if len(by_place) <= 1:
        return next(iter(by_place), "not recorded")
    return "; ".join(f"{', '.join(seeds)}: {place}" for place, seeds in by_place.items())


def _replace_block(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def update_readme(readme: Path, store: Path) -> bool:
    """Rewrite every generated block the file has (ablation table, replicate tables, findings); True when it changed."""
    text = Path(readme).read_text()
    new = text
    for begin, end, render in (
        (BEGIN, END, ablation_markdown),
        (REP_BEGIN, REP_END, replicates_markdown),
        (FINDINGS_BEGIN, FINDINGS_END, findings_block),
        (STUDY_BEGIN, STUDY_END, study_block),
        (INIT_BEGIN, INIT_END, init_markdown),
        (COND_BEGIN, COND_END, conditional_markdown),
    ):
        if begin in new:
            new = _replace_block(new, begin, end, render(store))
    if new != text:
        Path(readme).write_text(new)
    return new != text


def study_block(store: Path) -> str:
    line = feature_space_line(store)
    return study_markdown(_load(Path(store) / "replicates.json")) + (f"\n\n{line}" if line else "")


def feature_space_line(store: Path, family: str = "gan") -> str | None:
    """Whether the served models of a family rank alike by Fréchet distance in the project's classifier's features
    and in the independent classifier's (one run each, 10,000 samples): the reading may depend on the extractor."""
    rows = []
    for name, v in VARIANTS.items():
        if v.family != family:
            continue
        m = _load(Path(store) / name / "metrics.json")
        if m.get("frechet") and m.get("frechet_independent"):
            rows.append((name, m["frechet"]["distance"], m["frechet_independent"]["distance"]))
    if len(rows) < 2:
        return None
    own = [r[0] for r in sorted(rows, key=lambda r: r[1])]
    other = [r[0] for r in sorted(rows, key=lambda r: r[2])]
    verdict = "the same order" if own == other else "**a different order**"
    return (
        f"Feature-space check (served runs, one each, {len(rows)} {family.upper()}s): by Fréchet distance, best first, "
        f"the project's classifier ranks {', '.join(f'`{n}`' for n in own)}; an independently trained classifier "
        f"(another architecture and seed) ranks {', '.join(f'`{n}`' for n in other)}: {verdict}."
    )


def _num(x: float) -> str:
    return f"{x:+.3g}" if abs(x) < 1000 else f"{x:+.0f}"


def study_markdown(stats: dict[str, Any]) -> str:
    """One table, one row per question and effect on its primary metric, from replicates.json's `studies` (the
    study's own runs where it has them, else the earlier runs of the same cells, marked exploratory)."""
    lines = []
    for st in stats.get("studies", []):
        own = bool(st["study"])
        answers = st["study"] if own else st["exploratory"]
        runs = "this study's runs" if own else "exploratory: runs from before the plan, never pooled with it"
        lines += [
            f"**{st['title']}** — plan [{st['plan']}]({st['file']}) ({st['standing']}; "
            f"{st['study_runs']} of {st['study_runs_planned']} planned runs). Rows: {runs}; δ and the Holm family "
            "(each question's own effects) as the plan fixed them.",
            "",
            "| question | effect | seeds | estimate [95 % interval] | Holm p | verdict |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        rows = 0
        for q in answers:
            if not q["effects"]:
                lines.append(f"| {q['text']} | — | — | — | — | cannot be estimated: {q['unavailable']} |")
                rows += 1
                continue
            for e in q["effects"]:
                label = e.get("contrast") or e["effect"]
                p = e["p_holm"]
                lines.append(
                    f"| {q['text']} (δ {q['delta']:g}) | {label} | {e['seeds']} | {_num(e['estimate'])} "
                    f"[{_num(e['interval'][0])}, {_num(e['interval'][1])}] | "
                    f"{'< 0.001' if p < 0.001 else f'{p:.3f}'} | {e['verdict']} |"
                )
                rows += 1
        if rows > STUDY_ROWS_MAX:
            raise ValueError(f"{st['plan']}: {rows} rows; the findings table holds at most {STUDY_ROWS_MAX}")
        if not own:
            lines += ["", f"The study itself has not run yet; it runs with `{st['command']}`."]
    return "\n".join(lines) if lines else "No analysis plan under studies/ yet."


def findings_block(store: Path) -> str:
    return findings_markdown(_load(Path(store) / "replicates.json"))


def plot_curves(store: Path, path: Path | None = None) -> Path | None:
    """models_store/curves.png: checkerboard index against epoch for every variant with training curves, one panel
    per family, the replicates' 95 % band shaded where they exist. None when no model has curves yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = Path(store)
    stats = _load(store / "replicates.json").get("models", {})
    families = sorted({v.family for v in VARIANTS.values()})
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 3.6), dpi=100, squeeze=False)
    drawn = False
    for ax, family in zip(axes[0], families):
        for i, (name, v) in enumerate((n, v) for n, v in VARIANTS.items() if v.family == family):
            manifest = _load(store / name / "manifest.json")
            points = [
                (h["epoch"], h["curve_checkerboard_ratio"])
                for h in manifest.get("history") or []
                if h.get("curve_checkerboard_ratio") is not None
            ]
            band = (
                ((stats.get(name) or {}).get((manifest.get("config") or {}).get("profile") or "paper") or {}).get(
                    "curves"
                )
                or {}
            ).get("curve_checkerboard_ratio") or []
            band = [b for b in band if b.get("low") is not None]
            colour = f"C{i}"
            if band:
                floor = log_floor([y for _, y in points] + [b["mean"] for b in band], default=1e-3)
                ax.fill_between(
                    [b["epoch"] for b in band],
                    [max(b["low"], floor) for b in band],
                    [b["high"] for b in band],
                    color=colour,
                    alpha=0.18,
                    lw=0,
                )
            if points:
                ax.plot(*zip(*points), marker="o", ms=3, color=colour, label=name)
            elif band:
                ax.plot(
                    [b["epoch"] for b in band],
                    [b["mean"] for b in band],
                    ls="--",
                    color=colour,
                    label=f"{name} (replicate mean)",
                )
            drawn = drawn or bool(points or band)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("checkerboard index (× real digits)")
        ax.axhline(1.0, ls=":", color="black", lw=0.8)
        ax.set_title(
            f"{family.upper()}: 2,000 samples per epoch; shaded: 95 % interval over seeds (cut at the floor)",
            fontsize=9,
        )
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:
            ax.text(
                0.5,
                0.5,
                "no training curves yet\n(trained before they were recorded)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
                color="grey",
            )
    if not drawn:
        plt.close(fig)
        return None
    fig.tight_layout()
    out = Path(path or store / "curves.png")
    fig.savefig(out)
    plt.close(fig)
    return out


if __name__ == "__main__":
    store = Path(sys.argv[1] if len(sys.argv) > 1 else "models_store")
    for target in (Path("README.md"), Path("docs/evaluation.md")):
        print(f"{target}: {'updated' if update_readme(target, store) else 'already up to date'}")
    print(f"curves figure: {plot_curves(store) or 'no model has training curves yet'}")
