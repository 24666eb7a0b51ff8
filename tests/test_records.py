"""The model store's contract (arena/records.py): the one reader and writer of manifest.json and metrics.json, typed
and versioned. Records from before versioning read as version 0 and an edit never moves them to a newer version; a
wrong field is refused on read and before a write, with the file and the field named; nothing else in the product
parses either record."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from arena import records
from arena.records import (
    MANIFEST,
    MANIFEST_VERSION,
    METRICS_FILE,
    METRICS_VERSION,
    ManifestError,
    MetricsError,
    read_manifest,
    read_metrics,
    record_version,
    update_manifest,
    write_manifest,
    write_metrics,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models_store"


@pytest.fixture
def model(tmp_path) -> Path:
    """A copy of a shipped model's two records (both written before versioning)."""
    folder = tmp_path / "gan_upsample"
    folder.mkdir()
    for name in (MANIFEST, METRICS_FILE):
        shutil.copy(SHIPPED / "gan_upsample" / name, folder / name)
    return folder


def test_every_shipped_record_reads_and_those_before_versioning_read_as_version_0():
    manifests = sorted(SHIPPED.rglob(MANIFEST))
    metrics = sorted(SHIPPED.rglob(METRICS_FILE))
    assert len(manifests) > 20 and len(metrics) > 20
    for path in manifests:
        m = read_manifest(path.parent)
        assert record_version(m) == json.loads(path.read_text()).get("record_version", 0)
    for path in metrics:
        read_metrics(path.parent)
    assert record_version(read_manifest(SHIPPED / "gan_upsample")) == 0


def test_an_edit_keeps_the_version_a_record_was_written_at(model):
    before = json.loads((model / MANIFEST).read_text())
    after = update_manifest(model, {"role": "report, edited"})
    on_disk = json.loads((model / MANIFEST).read_text())
    assert on_disk == after and "record_version" not in on_disk  # still version 0: never rewritten as version 1
    assert on_disk["role"] == after["role"] == "report, edited"  # the change wins over the field it replaces
    assert {k: v for k, v in on_disk.items() if k != "role"} == {k: v for k, v in before.items() if k != "role"}


def test_a_new_record_is_written_at_the_current_version_and_must_carry_its_fields(model, tmp_path):
    manifest = read_manifest(model)
    new = tmp_path / "new"
    new.mkdir()
    written = write_manifest(new, {**manifest, "classes": 0})
    assert record_version(read_manifest(new)) == MANIFEST_VERSION == written["record_version"]
    without = {k: v for k, v in manifest.items() if k != "classes"}  # version 1 writes `classes`, even 0
    with pytest.raises(ManifestError, match=r"manifest\.json: field 'classes': Field required"):
        write_manifest(new, without)
    assert read_manifest(new) == written  # the refused write left the record as it was
    metrics = write_metrics(new, read_metrics(model))
    assert record_version(read_metrics(new)) == METRICS_VERSION == metrics["record_version"]
    stale = write_manifest(new, {**manifest, "classes": 0, "record_version": 0})  # a new record is the current version
    assert stale["record_version"] == MANIFEST_VERSION == record_version(read_manifest(new))


def test_sections_added_to_old_metrics_keep_their_version_and_a_bad_edit_writes_nothing(model):
    write_metrics(model, {**read_metrics(model), "periodic": {"relative": 0.1}}, keep_version=True)
    assert record_version(read_metrics(model)) == 0 and "record_version" not in json.loads(
        (model / METRICS_FILE).read_text()
    )
    before = (model / MANIFEST).read_bytes()
    with pytest.raises(ManifestError, match=r"field 'latent_dim'"):
        update_manifest(model, {"latent_dim": "x"})
    assert (model / MANIFEST).read_bytes() == before


@pytest.mark.parametrize(
    ("reader", "error", "name"), [(read_manifest, ManifestError, MANIFEST), (read_metrics, MetricsError, METRICS_FILE)]
)
def test_a_record_that_is_not_an_object_or_is_missing_is_refused(tmp_path, reader, error, name):
    with pytest.raises(error, match=f"no {re.escape(name)} in"):
        reader(tmp_path)
    (tmp_path / name).write_text("[1, 2]")
    with pytest.raises(error, match="holds list, not a JSON object"):
        reader(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latent_dim": "100"}, r"field 'latent_dim': Input should be a valid integer"),
        ({"latent_dim": 0}, r"field 'latent_dim': Input should be greater than or equal to 1"),
        ({"classes": -1}, r"field 'classes': Input should be greater than or equal to 0"),
        ({"files": {"generator.onnx": 5}}, r"field 'files\.generator\.onnx': Input should be a valid string"),
        ({"history": {"epoch": 1}}, r"field 'history': Input should be a valid list"),
        ({"record_version": 9}, r"field 'record_version': 9 is newer than this deconv-arena reads \(up to 1\)"),
    ],
)
def test_a_wrong_manifest_field_is_named_with_its_file(model, change, message):
    (model / MANIFEST).write_text(json.dumps({**json.loads((model / MANIFEST).read_text()), **change}))
    with pytest.raises(ManifestError, match=re.escape(str(model / MANIFEST)) + ": " + message):
        read_manifest(model)


def test_metrics_are_validated_on_read_and_missing_ones_read_as_empty_only_when_allowed(model, tmp_path):
    data = json.loads((model / METRICS_FILE).read_text())
    (model / METRICS_FILE).write_text(json.dumps({**data, "frechet": {"distance": "low"}}))
    with pytest.raises(MetricsError, match=r"metrics\.json: field 'frechet\.distance'"):
        read_metrics(model)
    (model / METRICS_FILE).write_text("{not json")
    with pytest.raises(MetricsError, match=r"metrics\.json is not valid JSON"):
        read_metrics(model)
    empty = tmp_path / "untrained"
    empty.mkdir()
    assert read_metrics(empty, missing_ok=True) == {} and read_manifest(empty, missing_ok=True) == {}
    with pytest.raises(MetricsError, match="no metrics.json in"):
        read_metrics(empty)


def test_a_damaged_metrics_record_marks_its_replicate_failed_naming_the_field(tmp_path):
    from arena.replicates import collect

    store = tmp_path / "store"
    run = store / "_replicates" / "paper-seed1" / "gan_upsample"
    shutil.copytree(SHIPPED / "_replicates" / "paper-seed1" / "gan_upsample", run)
    data = json.loads((run / METRICS_FILE).read_text())
    (run / METRICS_FILE).write_text(json.dumps({**data, "samples": 0}))
    slot = collect(store)["gan_upsample"]["paper"]
    assert slot["seeds"] == {} and "field 'samples'" in slot["failed"][1], slot["failed"]


def _code(path: Path) -> str:
    """A product file's code without its comments and docstrings."""
    text = re.sub(r'"""[\s\S]*?"""', "", path.read_text())
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def test_only_the_records_module_parses_a_manifest_or_metrics_file():
    parsing = re.compile(r"json\.loads?\([^\n]*(manifest|metrics|MANIFEST|METRICS)", re.I)
    offenders = []
    for folder in ("app", "arena", "training", "deconv_arena", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(records.__file__):
                continue
            code = _code(path)
            if parsing.search(code) or re.search(r"""["'](manifest|metrics)\.json["']""", code):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], offenders
