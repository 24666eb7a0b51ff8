"""Pack what a training session wrote into a store since a moment, for the trip back from a GPU machine.

    python -m training.interchange.pack OUTDIR --since STAMP_FILE [--store models_store] [--logs 'runs/sweep/*.log']

Served models go whole; replicates without GAN weights and progress frames (what .gitignore keeps out of the
repository); a replicate that has a manifest but no metrics (stopped mid-evaluation) is left out whole; staging
folders of an interrupted install are never packed. The result is `OUTDIR/store.tar.gz.000`, `.001`, … of at most
`--part-mib` each (a device's per-file limit); unpack with `cat OUTDIR/store.tar.gz.* | tar -xz`."""

from __future__ import annotations

import argparse
import glob
import io
import sys
import tarfile
from fnmatch import fnmatch
from pathlib import Path

from arena.records import MANIFEST, METRICS_FILE
from arena.replicates import REPLICATES

LEFT_OUT = (f"{REPLICATES}/*/*gan_*/generator.keras", f"{REPLICATES}/*/*/progress/*", f"{REPLICATES}/*/*/progress.gif")


def files_to_pack(store: Path, since: float) -> list[Path]:
    """Files of `store` modified after `since` (a timestamp), less what the module docstring leaves out."""
    store = Path(store)
    unevaluated = {
        p.parent for p in store.glob(f"{REPLICATES}/*/*/{MANIFEST}") if not (p.parent / METRICS_FILE).is_file()
    }
    out = []
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        rel = path.relative_to(store)
        if path.stat().st_mtime <= since or any(part.startswith(".") and ".staging-" in part for part in rel.parts):
            continue
        if any(fnmatch(rel.as_posix(), pattern) for pattern in LEFT_OUT) or any(d in path.parents for d in unevaluated):
            continue
        out.append(path)
    return out


def pack(paths: list[Path], out: Path, part_bytes: int) -> list[Path]:
    """One gzipped tar of `paths` (as given, relative), split into parts of at most `part_bytes`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in paths:
            tar.add(path, recursive=False)
    data = buffer.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(0, max(len(data), 1), part_bytes):
        part = out / f"store.tar.gz.{i // part_bytes:03d}"
        part.write_bytes(data[i : i + part_bytes])
        parts.append(part)
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.interchange.pack", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder for the tar parts")
    p.add_argument(
        "--since", type=Path, required=True, help="a file whose modification time marks the start of the session"
    )
    p.add_argument("--store", type=Path, default=Path("models_store"))
    p.add_argument("--logs", nargs="*", default=[], help="more files to pack (globs), e.g. the sweep's job logs")
    p.add_argument("--part-mib", type=int, default=15)
    args = p.parse_args(argv)
    if not args.since.is_file():
        print(f"--since {args.since}: no such file (touch one before the session starts)", file=sys.stderr)
        return 2
    paths = files_to_pack(args.store, args.since.stat().st_mtime)
    paths += [Path(f) for pattern in args.logs for f in sorted(glob.glob(pattern)) if Path(f).is_file()]
    parts = pack(paths, args.out, args.part_mib << 20)
    print(f"packed {len(paths)} files into {len(parts)} part(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
