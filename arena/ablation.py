"""The ablation table's facts (issue 12 §7), read only from what the store ships: summary.json (evaluation),
init_stats.json (`deconv-arena init-stats`), each model's manifest and metrics. The About page shows them and
`deconv-arena tables` writes them into docs/evaluation.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arena.records import read_manifest, read_metrics
from arena.replicates import place, trained_on
from arena.variants import VARIANTS


def read_json(path: Path) -> dict[str, Any]:
    """One of the store's summary files (summary.json, init_stats.json, replicates.json), or {} when it is missing or
    unreadable (not computed yet); a model's own records are read through arena/records.py."""
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
    summary = read_json(store / "summary.json").get("models", {})
    init = read_json(store / "init_stats.json").get("models", {})
    rows = []
    for name, v in VARIANTS.items():
        s, i = summary.get(name, {}), init.get(name, {})
        manifest, metrics = read_manifest(store / name, missing_ok=True), read_metrics(store / name, missing_ok=True)
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
                "machine": place(store / name)[0] if manifest else None,
                "epochs": f"{manifest['epochs_done']} of {manifest.get('paper_epochs')}"
                if manifest.get("epochs_done") is not None
                else None,
            }
        )
    return rows
