"""The README's and docs/evaluation.md's generated blocks (ablation, initialisation, conditional and replicate
tables, the study table, the findings), rendered from what the store ships and rewritten by `deconv-arena tables`;
the tests check them against the store, so they cannot drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.views.about_tables import COLUMNS, COND_COLUMNS, column_label, conditional_rows
from app.views.findings import (
    comparison_findings,
    factorial_findings,
    reading_order,
    study_effect_note,
    study_progress,
    study_provenance,
)
from arena.ablation import ablation_rows, read_json
from arena.records import read_metrics
from arena.stats import METRIC, estimate_text, p_text
from arena.variants import VARIANTS

BEGIN, END = "<!-- ablation-table-begin -->", "<!-- ablation-table-end -->"


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
    lines = ["| " + " | ".join(column_label(g, label) for _, g, label in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in rows:
        cells = [_cell(k, r[k]) for k, _, _ in COLUMNS]
        if not r["trained"]:
            cells[2] = "not trained yet"
        elif not r["evaluated"]:
            cells[2] = "not evaluated yet"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


REP_BEGIN, REP_END = "<!-- replicates-table-begin -->", "<!-- replicates-table-end -->"
FINDINGS_BEGIN, FINDINGS_END = "<!-- findings-begin -->", "<!-- findings-end -->"
STUDY_BEGIN, STUDY_END = "<!-- study-begin -->", "<!-- study-end -->"
STUDY_DOCS_BEGIN, STUDY_DOCS_END = "<!-- study-docs-begin -->", "<!-- study-docs-end -->"
STUDY_ROWS_MAX = 12
INIT_BEGIN, INIT_END = "<!-- init-table-begin -->", "<!-- init-table-end -->"


def init_markdown(store: Path) -> str:
    """Checkerboard index and polyphase CV at initialisation per variant, from init_stats.json."""
    models = read_json(Path(store) / "init_stats.json").get("models") or {}
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


def conditional_markdown(store: Path) -> str:
    lines = ["| " + " | ".join(COND_COLUMNS) + " |", "|" + " --- |" * len(COND_COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in conditional_rows(store)])


REP_METRICS = ("frechet", "kid", "legibility", "checkerboard_ratio", "recall", "frechet_last5", "checkerboard_last5")
ARROW = {"lower": "↓", "higher": "↑", "real": "→ 1×"}


def _iv(iv: dict[str, Any] | None, signed: bool = False) -> str:
    if not iv:
        return "–"
    text = estimate_text(iv["mean"], iv.get("low"), iv.get("high"), signed=signed)
    return text if iv.get("low") is not None else f"{text} (one seed)"


def replicates_markdown(store: Path) -> str:
    """Mean over seeds with its 95 % t-interval per variant and budget, then each comparison's paired difference of
    scores with its interval (exploratory: no verdict), from replicates.json."""
    stats = read_json(Path(store) / "replicates.json")
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
            "Score differences A − B (ratios to real digits scored as |ln ratio|) with 95 % t-intervals over paired "
            "seeds. Exploratory: no plan fixed these questions before their runs, so no p-value is adjusted and no "
            "verdict is given; the last column says what a plan at this spread would need (80 % power).",
            "",
            "| comparison (A vs B) | budget | trained on | paired seeds | metric | role | A − B [95 %] "
            "| a plan would need |",
            "|" + " --- |" * 8,
        ]
        for c in comps:
            if c.get("not_estimable"):
                lines.append(
                    f"| `{c['a']}` vs `{c['b']}` | {c['profile']} | different machines | none | "
                    f"{METRIC[c['primary']].score_label} | primary | not estimable: {c['not_estimable']} | – |"
                )
            for k in sorted(
                c["metrics"],
                key=lambda k: (c["metrics"][k]["role"] != "primary", REP_METRICS.index(k) if k in REP_METRICS else 99),
            ):
                if k not in REP_METRICS:
                    continue
                t = c["metrics"][k]
                asked = [t.get("seeds_for_difference_80"), t.get("seeds_for_equivalence_80")]
                need = (
                    f"{' / '.join(str(n) if n else '–' for n in asked)} seeds (difference of {t['delta']:g} / "
                    "equivalence)"
                    if any(asked)
                    else "–"
                )
                lines.append(
                    f"| `{c['a']}` vs `{c['b']}` | {c['profile']} | "
                    f"{c['trained_on']} | {', '.join(map(str, c['seeds']))} | {METRIC[k].score_label} | {t['role']} | "
                    f"{_iv(t['score_difference'], signed=True)} | {need} |"
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
        (STUDY_DOCS_BEGIN, STUDY_DOCS_END, study_docs_block),
        (INIT_BEGIN, INIT_END, init_markdown),
        (COND_BEGIN, COND_END, conditional_markdown),
    ):
        if begin in new:
            new = _replace_block(new, begin, end, render(store))
    if new != text:
        Path(readme).write_text(new)
    return new != text


def study_docs_block(store: Path) -> str:
    """The same study tables in docs/evaluation.md, its links one folder up."""
    return study_markdown(read_json(Path(store) / "replicates.json"), root="../")


def study_block(store: Path) -> str:
    line = feature_space_line(store)
    return study_markdown(read_json(Path(store) / "replicates.json")) + (f"\n\n{line}" if line else "")


def feature_space_line(store: Path, family: str = "gan") -> str | None:
    """Whether the served models of a family rank alike by Fréchet distance in the project's classifier's features
    and in the independent classifier's (one run each, 10,000 samples): the reading may depend on the extractor."""
    rows = []
    for name, v in VARIANTS.items():
        if v.family != family:
            continue
        m = read_metrics(Path(store) / name, missing_ok=True)
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


def study_markdown(stats: dict[str, Any], root: str = "") -> str:
    """One table per plan, one row per question and effect on its primary metric, from replicates.json's `studies`:
    the plan's verdicts from its own runs once all are in; before that the earlier runs of the same cells, marked
    exploratory, as estimates with intervals and no verdict."""
    lines = []
    for st in reading_order(stats.get("studies", [])):
        own = bool(st["study"])
        answers = st["study"] if own else st["exploratory"]
        if lines:
            lines.append("")
        if own:
            lines += [
                f"**{st['title']}** — plan [{st['plan']}]({root}{st['file']}) (SHA-256 `{st['sha256'][:12]}`; "
                f"{st['standing']}; {st['study_runs']} of {st['study_runs_planned']} planned runs). Rows: this "
                "study's runs, judged "
                "by the plan's metric, δ, Holm family and n.",
                "",
                "| question | effect | seeds | estimate [95 % interval] | Holm p | verdict |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
        else:
            lines += [
                f"**{st['title']}** — plan [{st['plan']}]({root}{st['file']}) (SHA-256 `{st['sha256'][:12]}`; "
                f"{st['standing']}; {st['study_runs']} of {st['study_runs_planned']} planned runs). Rows: "
                "exploratory, from runs made "
                "before the plan and never pooled with it: estimates with intervals, no verdict.",
                "",
                "| question | effect | seeds | estimate [95 % interval] |",
                "| --- | --- | --- | --- |",
            ]
        rows, notes = 0, []
        for q in answers:
            if not q["effects"]:
                tail = " — | — |" if own else ""
                lines.append(f"| {q['text']} | — | — | cannot be estimated: {q['unavailable']} |{tail}")
                rows += 1
                continue
            for e in q["effects"]:
                label = e.get("contrast") or e["effect"]
                cells = f"| {q['text']} (δ {q['delta']:g}) | {label} | {e['seeds']} | "
                cells += f"{estimate_text(e['estimate'], *e['interval'])} |"
                if own:
                    cells += f" {p_text(e['p_holm'])} | {e['verdict']} |"
                    notes.append(f"{label} ({q['id']}): {study_effect_note(e)}")
                lines.append(cells)
                rows += 1
        if rows > STUDY_ROWS_MAX:
            raise ValueError(f"{st['plan']}: {rows} rows; the findings table holds at most {STUDY_ROWS_MAX}")
        said = " ".join(filter(None, [study_progress(st), study_provenance(st)]))
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else []) + [said]
    return "\n".join(lines) if lines else "No analysis plan under studies/ yet."


def findings_block(store: Path) -> str:
    return findings_markdown(read_json(Path(store) / "replicates.json"))


def findings_markdown(stats: dict[str, Any]) -> str:
    """The generated "what it says" block of the README and docs/evaluation.md."""
    if not stats.get("comparisons"):
        return "No replicate runs yet: nothing can be concluded."
    lines = [f"- **{f['a']} vs {f['b']}** — {f['question']}: {f['sentence']}" for f in comparison_findings(stats)]
    lines += [
        f"- **Operator × {f['factor']} "
        f"({f['short']}{', ' + f['profile'] + ' budget' if f['profile'] else ''})**: {f['sentence']}"
        for f in factorial_findings(stats)
    ]
    return "\n".join(lines)
