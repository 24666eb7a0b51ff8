"""The exploratory statistics, each against a known answer: metric directions (distance from real), symmetry, failed
seeds, backends never pooled, the factorial's effects, δ's basis, the generated sentences; and the rule that keeps
verdict words to plan-backed results (verdicts themselves, Holm and TOST: tests/test_study.py)."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from app.views.findings import comparison_findings, factorial_findings
from arena import replicates
from arena.replicates import _adjust, _compare, _factorial, epoch_jitter, statistics
from arena.stats import ALPHA, METRIC, explore, holm, p_value, seeds_for_difference, seeds_for_equivalence
from arena.variants import VARIANTS, Factorial, Variant
from deconv_arena.generated_docs import findings_markdown
from tests.conftest import manifest_record

ROOT = Path(__file__).resolve().parents[1]
CPU = "CPU, tensorflow, float32"


def _slot(values: dict[int, dict[str, float]], place: str | dict[int, str] = CPU, epochs: int = 10) -> dict:
    places = place if isinstance(place, dict) else {s: place for s in values}
    where = {s: tuple(p.rsplit(", ", 2)) for s, p in places.items()}  # (machine, backend, precision), as collect()
    return {"epochs": epochs, "seeds": values, "failed": {}, "trained_on": places, "place": where}


def _decided(data, a: Variant, b: Variant) -> list[dict]:
    rows = _compare(data, a, b)
    _adjust(rows, [])
    return rows


def test_a_ratio_far_below_real_never_beats_one_near_real():
    """Checkerboard is scored by |ln ratio|: a blurry generator at 0.07× real loses to one at 0.9× real, although
    its raw ratio is lower."""
    rng = np.random.default_rng(0)
    data = {
        "blurry": {
            "paper": _slot({s: {"checkerboard_ratio": 0.07 * math.exp(rng.normal(0, 0.05))} for s in range(1, 6)})
        },
        "sharp": {
            "paper": _slot({s: {"checkerboard_ratio": 0.9 * math.exp(rng.normal(0, 0.05))} for s in range(1, 6)})
        },
    }
    a, b = (
        Variant("blurry", "vae", "resize", "sharp", primary="checkerboard_ratio"),
        Variant("sharp", "vae", "transpose"),
    )
    t = _decided(data, a, b)[0]["metrics"]["checkerboard_ratio"]
    assert t["kind"] == "exploratory" and t["verdict"] is None  # no plan fixed this question: no verdict
    assert t["difference"]["mean"] < 0 < t["score_difference"]["low"]  # lower raw ratio, farther from real
    assert METRIC["checkerboard_ratio"].direction.startswith("closer to real")


def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005·4 = 0.02; 0.01·3 = 0.03; 0.03·2 = 0.06; 0.04·1 = 0.04 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, None, 0.01]) == pytest.approx([0.2, None, 0.02])  # untestable entries are outside the family
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # 0.6·2 capped at 1; 0.7·1 kept monotone at 1


def test_paired_t_p_value_matches_scipy():
    from scipy import stats

    d = [1.2, 0.4, 2.2, 1.1, -0.3]
    assert p_value(d) == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert p_value([1.0]) is None


def test_an_exploratory_result_is_an_estimate_and_what_a_plan_would_need_never_a_verdict():
    """However clear the difference, a result no plan fixed carries no verdict, no adjusted p and no equivalence
    test; it says what a plan of one test at its spread would need (80 % power at α), only when more than it used."""
    rng = np.random.default_rng(1)
    metric, delta = METRIC["frechet"], METRIC["frechet"].delta["gan"]
    clear = [-10.0, -12.0, -9.0, -11.0, -10.5]
    t = explore(clear, metric, "gan")
    assert t["verdict"] is None and t["kind"] == "exploratory" and "p_adjusted" not in t and "p_tost" not in t
    few = list(rng.normal(0, 3.0, 3) - rng.normal(0, 3.0, 3))
    t = explore(few, metric, "gan")
    sd = float(np.std(few, ddof=1))
    assert t["seeds_for_difference_80"] == seeds_for_difference(sd, delta, ALPHA) > 3
    assert t["seeds_for_equivalence_80"] == seeds_for_equivalence(sd, delta, ALPHA) > 3


def test_no_seeds_asked_for_are_at_or_below_the_seeds_used():
    """A spread so small that δ needs fewer seeds than were used: no power figure is shown rather than one at or
    below the seeds at hand (replicates.json once said 3 of 3)."""
    metric, delta = METRIC["frechet"], METRIC["frechet"].delta["gan"]
    tight = [-17.3, -16.9, -17.6]  # an sd of 0.35 against δ 5.2: 2 seeds give 80 % power
    t = explore(tight, metric, "gan")
    assert t["seeds_for_difference_80"] is None
    assert seeds_for_difference(float(np.std(tight, ddof=1)), delta, ALPHA) <= 3
    for row in json.loads((ROOT / "models_store" / "replicates.json").read_text())["comparisons"]:
        for t in row["metrics"].values():
            for key in ("seeds_for_difference_80", "seeds_for_equivalence_80"):
                assert t.get(key) is None or t[key] > t["n"], (row["a"], row["b"], key)
            assert "seeds_needed" not in t


def test_swapping_a_and_b_flips_every_estimate_and_its_interval():
    rng = np.random.default_rng(2)
    keys = ("frechet", "kid", "legibility", "checkerboard_ratio", "recall")
    base = {k: rng.uniform(0.5, 2.0) for k in keys}
    x = {s: {k: base[k] * (1 + rng.normal(0, 0.02)) for k in keys} for s in range(1, 7)}
    y = {
        s: {
            k: (base[k] * 1.4 if k != "checkerboard_ratio" else base[k] * 0.6) * (1 + rng.normal(0, 0.02)) for k in keys
        }
        for s in range(1, 7)
    }
    data = {"x": {"paper": _slot(x)}, "y": {"paper": _slot(y)}}
    forward = _decided(data, Variant("x", "gan", "resize", "y"), Variant("y", "gan", "transpose"))[0]["metrics"]
    backward = _decided(data, Variant("y", "gan", "transpose", "x"), Variant("x", "gan", "resize"))[0]["metrics"]
    for k in keys:
        f, b = forward[k], backward[k]
        assert f["kind"] == b["kind"] == "exploratory" and f["verdict"] is None
        assert f["score_difference"]["mean"] == pytest.approx(-b["score_difference"]["mean"])
        assert f["score_difference"]["low"] == pytest.approx(-b["score_difference"]["high"])


def test_seeds_from_different_backends_are_listed_not_pooled():
    places = {1: "NVIDIA H200, jax, jax precision highest", 2: CPU, 3: CPU, 4: CPU}
    data = {
        "a": {"paper": _slot({s: {"frechet": 10.0 + s} for s in places}, places)},
        "b": {"paper": _slot({s: {"frechet": 20.0 + s} for s in places}, {**places, 1: CPU})},
    }
    rows = _decided(data, Variant("a", "vae", "resize", "b"), Variant("b", "vae", "transpose"))
    assert [(r["trained_on"], r["seeds"]) for r in rows] == [(CPU, [2, 3, 4])]
    assert list(rows[0]["not_paired"]) == ["1"] and "H200" in rows[0]["not_paired"]["1"]


def test_only_runs_on_one_machine_are_paired_and_an_aliased_comparison_has_no_number():
    """An H100 and an H200 are two machines: seeds whose two runs trained on different ones are listed, never
    paired; where no seed is left the comparison is shown as not estimable, with its reason and no estimate."""
    h100, h200 = "NVIDIA H100 80GB HBM3, jax, TF32 (jax default)", "NVIDIA H200, jax, TF32 (jax default)"
    highest = "NVIDIA H200, jax, jax precision highest"
    a_places, b_places = {1: h100, 2: h100, 3: h100, 4: h100}, {1: h200, 2: h200, 3: h100, 4: highest}
    data = {
        "a": {"paper": _slot({s: {"frechet": 10.0 + s} for s in a_places}, a_places)},
        "b": {"paper": _slot({s: {"frechet": 20.0 + s} for s in b_places}, b_places)},
    }
    rows = _decided(data, Variant("a", "gan", "resize", "b"), Variant("b", "gan", "transpose"))
    assert [(r["trained_on"], r["seeds"]) for r in rows] == [(h100, [3])]
    assert sorted(rows[0]["not_paired"]) == ["1", "2", "4"]
    aliased = {1: h200, 2: h200, 3: h200, 4: h200}
    data["b"] = {"paper": _slot({s: {"frechet": 20.0 + s} for s in aliased}, aliased)}
    (row,) = _decided(data, Variant("a", "gan", "resize", "b"), Variant("b", "gan", "transpose"))
    assert row["metrics"] == {} and "different machines" in row["not_estimable"]
    (finding,) = comparison_findings({"comparisons": [row]})
    assert finding["kind"] == "not estimable" and finding["estimate"] is None and "No number" in finding["sentence"]


def test_the_conditioning_factorial_recovers_known_effects_with_its_own_words():
    cells = {
        ("transpose", "unconditional"): "t",
        ("resize", "unconditional"): "u",
        ("transpose", "conditional"): "ct",
        ("resize", "conditional"): "cu",
    }
    value = {"t": 60.0, "u": 50.0, "ct": 40.0, "cu": 20.0}  # operator -15, conditioning -25, interaction -10
    rng = np.random.default_rng(4)
    noise = {s: rng.normal(0, 5) for s in range(1, 6)}
    data = {
        name: {"paper": _slot({s: {"frechet": value[name] + noise[s]} for s in noise}, epochs=50)}
        for name in cells.values()
    }
    row = _factorial(data, Factorial("cgan", cells, "conditioning"))[0]
    _adjust([], [row])
    effects = row["effects"]["frechet"]
    assert set(effects) == {"operator", "conditioning", "interaction"}
    assert effects["operator"]["score_difference"]["mean"] == pytest.approx(-15.0)
    assert effects["conditioning"]["score_difference"]["mean"] == pytest.approx(-25.0)
    assert effects["interaction"]["score_difference"]["mean"] == pytest.approx(-10.0)
    assert effects["interaction"]["verdict"] is None and effects["interaction"]["kind"] == "exploratory"
    assert effects["operator"]["delta"] == METRIC["frechet"].delta["gan"]  # the cGAN borrows the GAN's margin
    found = [f for f in factorial_findings({"factorials": [row], "models": {}}) if f["profile"]]
    assert [(f["family"], f["factor"], f["short"]) for f in found] == [("cgan", "conditioning", "cGAN")]
    assert "asked for a digit minus that without a label" in found[0]["sentence"]
    assert "Conditioning adds the one-hot label" in found[0]["sentence"]


def test_the_factorial_recovers_known_effects():
    """Cells built with an operator effect of −6, a network effect of +2 and an interaction of +4 (plus seed noise
    that is the same in every cell of a seed, so the paired contrasts are exact)."""
    cells = {
        ("transpose", "tutorial"): "t",
        ("resize", "tutorial"): "u_m",
        ("transpose", "shallow"): "t_s",
        ("resize", "shallow"): "u",
    }
    value = {
        ("transpose", "tutorial"): 50.0,
        ("resize", "tutorial"): 42.0,
        ("transpose", "shallow"): 50.0,
        ("resize", "shallow"): 46.0,
    }
    # operator = ((42-50) + (46-50))/2 = -6; network = ((50-50) + (46-42))/2 = +2; interaction = (46-50) - (42-50) = +4
    rng = np.random.default_rng(3)
    noise = {s: rng.normal(0, 5) for s in range(1, 6)}
    data = {
        name: {
            "paper": _slot({s: {"frechet": value[c] + noise[s], "checkerboard_ratio": 1.0} for s in noise}, epochs=50)
        }
        for c, name in cells.items()
    }
    row = _factorial(data, Factorial("gan", cells))[0]
    _adjust([], [row])
    effects = row["effects"]["frechet"]
    assert effects["operator"]["score_difference"]["mean"] == pytest.approx(-6.0)
    assert effects["network"]["score_difference"]["mean"] == pytest.approx(2.0)
    assert effects["interaction"]["score_difference"]["mean"] == pytest.approx(4.0)
    assert effects["operator"]["verdict"] is None and "family_of_tests" not in effects["operator"]
    assert "bundles depth and kernel size" in factorial_findings({"factorials": [row], "models": {}})[0]["sentence"]


def _metrics_json(frechet: float) -> dict:
    return {
        "frechet": {"distance": frechet},
        "kid": {"mean": 1.0},
        "legibility": {"mean_top_probability": 0.9, "share_confident": 0.9},
        "checkerboard": {"nyquist_ratio": 1.0, "period4_ratio": 1.0},
        "prdc": {"precision": 0.5, "recall": 0.5, "density": 1.0, "coverage": 0.5},
        "cost": {"params": 1, "ms_per_image_batch64": 1.0, "seconds_per_epoch": 1.0, "epochs_done": 10},
        "model": "vae_upsample",
        "generator_sha256": "x",
        "samples": 10,
    }


def test_a_nan_metric_marks_its_seed_failed_instead_of_aborting(tmp_path):
    for seed, fd in ((1, 10.0), (2, float("nan")), (3, 12.0)):
        run = tmp_path / "_replicates" / f"paper-seed{seed}" / "vae_upsample"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(_metrics_json(fd)))
        (run / "manifest.json").write_text(json.dumps(manifest_record({})))
    entry = statistics(tmp_path)["models"]["vae_upsample"]["paper"]
    assert entry["seeds"] == [1, 3] and "non-finite frechet" in entry["failed"]["2"]
    assert entry["metrics"]["frechet"]["mean"] == pytest.approx(11.0)


def test_a_run_trained_under_a_plan_never_enters_the_exploratory_statistics(tmp_path):
    """Seeds 1-3 trained outside any plan, seed 201 under one: the exploratory mean rests on 1-3 only, and the
    plan's analysis still finds its run."""
    from arena.replicates import collect

    for seed, fd, study in ((1, 10.0, None), (2, 11.0, None), (3, 12.0, None), (201, 500.0, {"sha256": "abc"})):
        run = tmp_path / "_replicates" / f"paper-seed{seed}" / "vae_upsample"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(_metrics_json(fd)))
        (run / "manifest.json").write_text(json.dumps(manifest_record({"study": study})))
    entry = statistics(tmp_path)["models"]["vae_upsample"]["paper"]
    assert entry["seeds"] == [1, 2, 3] and entry["metrics"]["frechet"]["mean"] == pytest.approx(11.0)
    assert sorted(collect(tmp_path, studies=True)["vae_upsample"]["paper"]["seeds"]) == [1, 2, 3, 201]


@pytest.fixture()
def plan_commit_times(monkeypatch):
    """A plan's commit time comes from git history. Where this checkout has it, it must be what the shipped
    statistics recorded; where it has not (a shallow or exported checkout), the shipped record stands in for it, so
    the rest of the recomputation is still checked."""
    import datetime as dt

    from arena import plans

    shipped = json.loads((ROOT / "models_store" / "replicates.json").read_text())
    recorded = {st["file"].split("/")[-1]: st["committed_at"] for st in shipped.get("studies", [])}
    seen = {name: plans.committed_at(ROOT / "studies" / name) for name in recorded}
    if all(seen.values()):
        assert {n: t.isoformat() for n, t in seen.items()} == recorded
        return
    real = plans.committed_at
    monkeypatch.setattr(
        plans,
        "committed_at",
        lambda path: (
            real(path) or (dt.datetime.fromisoformat(recorded[path.name]) if recorded.get(path.name) else None)
        ),
    )


def test_shipped_replicates_json_recomputes_from_the_per_run_files(plan_commit_times):
    shipped = json.loads((ROOT / "models_store" / "replicates.json").read_text())
    from arena.study import with_studies

    assert json.loads(json.dumps(with_studies(ROOT / "models_store"))) == shipped, (
        "run `deconv-arena evaluate --replicates` or training.evaluation.evaluate.write_statistics"
    )


def _verdict_words() -> re.Pattern:
    """The words of a verdict: a model or an operator "better", "equivalent within", "inconclusive", "not settled"."""
    from arena.study import EFFECT_WORDS

    sides = [*VARIANTS, *(w for pair in EFFECT_WORDS.values() for w in pair if w)]
    names = "|".join(re.escape(n) for n in sorted(sides, key=len, reverse=True))
    return re.compile(rf"(?:{names})`? (?:is )?better|equivalent within|inconclusive|not settled", re.IGNORECASE)


def verdicts_outside_plans(stats: dict, texts: dict[str, str]) -> list[str]:
    """Verdict words anywhere but a plan's own answer: replicates.json outside `studies[*].study`, and the generated
    text given (a study's own section — from its heading that says 'Rows: this study's runs' to its closing line,
    'the rows above are the plan's answer', its table and notes between — is allowed)."""
    words, found = _verdict_words(), []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if path.endswith("studies[]") and k == "study":
                    continue  # the plan's own answer
                if k == "verdict" and v is not None:
                    found.append(f"replicates.json {path}.verdict = {v!r}")
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for v in node:
                walk(v, f"{path}[]")
        elif isinstance(node, str) and words.search(node):
            found.append(f"replicates.json {path}: {node[:120]!r}")

    walk(stats, "")
    for name, text in texts.items():
        own = False
        for para in re.split(r"\n\s*\n", text):
            if "Rows: this study's runs" in para:
                own = True
            elif "— plan [" in para:  # another plan's heading: its rows are exploratory
                own = False
            if own:
                own = "the rows above are the plan's answer" not in para
                continue
            found += [
                f"{name}: {m.group(0)!r} in {para[max(0, m.start() - 80) : m.end() + 40]!r}"
                for m in words.finditer(para)
            ]
    return found


def _generated(doc: str) -> str:
    """The generated blocks of a README or docs page (the prose around them describes rules, it states no result)."""
    text = (ROOT / doc).read_text()
    return "\n\n".join(re.findall(r"<!-- [\w-]+-begin -->(.*?)<!-- [\w-]+-end -->", text, re.S))


def test_no_verdict_word_outside_a_plans_own_runs(plan_commit_times):
    """Exploratory results (everything no committed plan fixed before its runs) carry estimates, never verdicts:
    in replicates.json as shipped and as recomputed now, in the README's and docs' generated blocks, and in the
    findings they are rendered into."""
    from arena.study import with_studies

    shipped = json.loads((ROOT / "models_store" / "replicates.json").read_text())
    fresh = json.loads(json.dumps(with_studies(ROOT / "models_store")))
    texts = {doc: _generated(doc) for doc in ("README.md", "docs/evaluation.md")}
    texts["findings, as rendered now"] = findings_markdown(fresh)
    assert verdicts_outside_plans(shipped, {}) == []
    assert verdicts_outside_plans(fresh, texts) == []


def test_the_verdict_scan_finds_a_verdict_planted_outside_a_plan():
    stats = {"comparisons": [{"metrics": {"frechet": {"verdict": None, "note": "gan_upsample better"}}}]}
    assert verdicts_outside_plans(stats, {})
    assert verdicts_outside_plans({}, {"README": "| x | vae_upsample better |"})
    assert verdicts_outside_plans({}, {"README": "resize-convolution better"})
    own = "Rows: this study's runs, judged by the plan.\n| q | vae_upsample better |"
    assert verdicts_outside_plans({"studies": [{"study": [{"verdict": "vae_upsample better"}]}]}, {"README": own}) == []


def test_generated_sentences_change_when_the_data_change():
    shipped = json.loads((ROOT / "models_store" / "replicates.json").read_text())
    before = findings_markdown(shipped)
    changed = json.loads(json.dumps(shipped))
    row = changed["comparisons"][0]
    t = row["metrics"][row["primary"]]
    t.update({"seeds_for_difference_80": 99, "seeds_for_equivalence_80": None})
    after = findings_markdown(changed)
    assert before != after and "would need about 99 seeds to find a difference" in after
    assert findings_markdown({}) == "No replicate runs yet: nothing can be concluded."
    first = comparison_findings(shipped)[0]
    assert first["sentence"].startswith("Exploratory: ") and first["kind"] == "exploratory"


@pytest.mark.parametrize(
    ("key", "family", "curve", "last", "log_scale"),
    [
        ("frechet", "gan", "curve_frechet", 10, False),
        ("frechet", "vae", "curve_frechet", 5, False),
        ("checkerboard_ratio", "gan", "curve_checkerboard_ratio", 10, True),
        ("checkerboard_ratio", "vae", "curve_checkerboard_ratio", 5, True),
    ],
)
def test_each_declared_delta_rests_on_the_shipped_curves(key, family, curve, last, log_scale):
    """δ was declared from the late-training epoch-to-epoch changes of the shipped curves; new runs may move the median
    a little, not far (within 30 %), or the declaration must be revisited."""
    jitter, pairs = epoch_jitter(ROOT / "models_store", family, curve, last, log_scale)
    assert pairs >= 50
    assert METRIC[key].delta[family] == pytest.approx(jitter, rel=0.3)


def test_results_rank_within_each_family_only():
    from app.ratings.ranking import Comparison, components

    comps = [Comparison("gan_a", "gan_b", 1.0), Comparison("vae_a", "vae_b", 0.5), Comparison("vae_b", "vae_c", 0.0)]
    assert components(comps, ["gan_a", "gan_b", "vae_a", "vae_b", "vae_c", "lonely"]) == [
        ["gan_a", "gan_b"],
        ["vae_a", "vae_b", "vae_c"],
        ["lonely"],
    ]


def test_replicates_module_keeps_its_run_layout():
    assert replicates.RUN_DIR.match("paper-seed12")["seed"] == "12"


def test_the_factorial_study_is_planned_from_the_table(monkeypatch, tiny_npz, tmp_path):
    """`train --factorial gan --seeds 1-10`: the four cells at the report's protocol, ten seeds each, no name typed."""
    import training.sweeps.train_plans as training_replicates
    from deconv_arena.cli import main

    calls = []
    monkeypatch.setattr(
        training_replicates,
        "train_replicates",
        lambda v, config, seeds, *a, **k: calls.append((v.name, config.profile, config.epochs, tuple(seeds))) or [],
    )
    assert (
        main(["train", "--factorial", "gan", "--seeds", "1-10", "--data", str(tiny_npz), "--store", str(tmp_path)]) == 0
    )
    assert sorted(c[0] for c in calls) == [
        "gan_transpose",
        "gan_transpose_shallow",
        "gan_upsample",
        "gan_upsample_matched",
    ]
    assert {c[1:] for c in calls} == {("paper", 50, tuple(range(1, 11)))}


@pytest.mark.parametrize("doc", ["README.md", "docs/evaluation.md"])
def test_every_generated_block_is_what_the_store_says(doc, tmp_path, plan_commit_times):
    """The study, findings, ablation, replicate and initialisation blocks: rewriting them from models_store changes
    nothing (the README holds the study's table, docs/evaluation.md the exploratory sentences)."""
    from deconv_arena.generated_docs import FINDINGS_BEGIN, STUDY_BEGIN, update_readme

    copy = tmp_path / "doc.md"
    copy.write_text((ROOT / doc).read_text())
    assert not update_readme(copy, ROOT / "models_store"), f"run `deconv-arena tables` to rewrite {doc}"
    assert (STUDY_BEGIN if doc == "README.md" else FINDINGS_BEGIN) in copy.read_text()


class _TextOutsidePlans(HTMLParser):
    """A page's text outside its plan-backed regions (elements marked `data-plan-answer`), scripts and styles."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []  # per open element: does it hide its contents?
        self.parts: list[str] = []
        self.answers: list[str] = []  # the text inside plan-backed regions

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag in ("script", "style") or any(k == "data-plan-answer" for k, _ in attrs))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        (self.answers if any(self.stack) else self.parts).append(data)


def _pages_outside_plans(stats: dict, tmp_path: Path) -> tuple[str, str]:
    """The comparison page, /about and /results of a service whose store holds `stats` as its replicates.json: their
    text outside plan-backed regions, and inside them."""
    from tests.conftest import make_client

    store = tmp_path / "store"
    store.mkdir()
    (store / "replicates.json").write_text(json.dumps(stats))
    outside, inside = [], []
    with make_client(store, tmp_path, shared=False) as client:
        for path in ("/", "/about", "/results"):
            response = client.get(path)
            assert response.status_code == 200, path
            parser = _TextOutsidePlans()
            parser.feed(response.text)
            outside.append(re.sub(r"\s+", " ", " ".join(parser.parts)))
            inside.append(re.sub(r"\s+", " ", " ".join(parser.answers)))
    return "\n".join(outside), "\n".join(inside)


def _completed_vae_study(monkeypatch) -> dict:
    """The shipped statistics with the VAE study answered from 80 simulated runs under its plan's hash (a known
    difference of −9 on its primary): what the pages and README show on the day its last run is in."""
    from arena import plans, study
    from tests.test_study import VAE_PLAN, _pair_runs

    plan = plans.load_plan(VAE_PLAN)
    runs = _pair_runs(plan, lambda s: plan.sha256)
    for r in runs.values():
        r["created_at"] = "2027-01-01T00:00:00+00:00"
    monkeypatch.setattr(study, "_runs_of", lambda store, p, cells: runs)
    full = study.analyse(plan, ROOT / "models_store")
    assert full["study"], "80 of 80 runs must give the plan's answer"
    shipped = json.loads((ROOT / "models_store" / "replicates.json").read_text())
    shipped["studies"] = [full if s["plan"] == full["plan"] else s for s in shipped["studies"]]
    return json.loads(json.dumps(shipped))


def _plans_verdicts(stats: dict) -> set[str]:
    """The verdicts the answered plans in `stats` decided, primary and secondary, lower-cased."""
    return {
        v.lower()
        for s in stats["studies"]
        for question in s.get("study") or []
        for effect in question["effects"]
        for v in (effect.get("verdict"), *(sec.get("verdict") for sec in (effect.get("secondaries") or {}).values()))
        if v
    }


def test_the_rendered_pages_show_no_verdict_outside_a_plan(tmp_path):
    """The comparison page, /about and /results, rendered from the shipped replicates.json, read as HTML text: no
    verdict word outside an element marked as a plan's answer, and inside those only what an answered plan decided
    (each of its verdicts shown; none while every study still runs)."""
    stats = json.loads((ROOT / "models_store" / "replicates.json").read_text())
    outside, inside = _pages_outside_plans(stats, tmp_path)
    assert "vae-operator v1" in outside
    assert not _verdict_words().search(outside), _verdict_words().search(outside)
    decided = _plans_verdicts(stats)
    assert {m.group(0).lower() for m in _verdict_words().finditer(inside)} == decided


def test_a_completed_study_shows_its_verdict_hash_and_secondaries_only_in_its_own_sections(tmp_path, monkeypatch):
    """The day the VAE study's 80th run is in: the pages and the README's generated study block show the plan's
    verdict with its SHA-256, its seeds, its sensitivity and its secondary measures — each inside the plan's own
    section — and still no verdict word outside one."""
    from deconv_arena.generated_docs import study_markdown

    stats = _completed_vae_study(monkeypatch)
    sha = next(s["sha256"] for s in stats["studies"] if s["plan"] == "vae-operator v1")[:12]
    outside, inside = _pages_outside_plans(stats, tmp_path)
    assert not _verdict_words().search(outside), _verdict_words().search(outside)
    assert "vae_upsample better (plan vae-operator v1, 40 seeds)" in inside  # the strip's row
    assert "−9" in inside and "Holm p" in inside and "The same verdict at 0.5δ and 2δ" in inside
    assert f"SHA-256 {sha}" in outside  # the study's heading names the version it judged
    readme = study_markdown(stats) + "\n\n" + findings_markdown(stats)
    assert verdicts_outside_plans(stats, {"README": readme}) == []
    assert f"SHA-256 `{sha}`" in readme and "| 40 | −" in readme and "| vae_upsample better |" in readme
    assert "Secondary measures, Holm over 2: KID" in readme
