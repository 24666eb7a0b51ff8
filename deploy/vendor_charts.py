"""Fetch the charts' scripts named in app/static/vendor/VERSIONS.toml from npm (`npm pack`) into app/static/vendor,
unchanged, with their licences; print each file's sha256 to record in VERSIONS.toml. Needs npm and the registry."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

VENDOR = Path(__file__).resolve().parents[1] / "app" / "static" / "vendor"


def styles(embed: Path) -> str:
    """vega-embed's and vega-tooltip's stylesheets, which they would otherwise inject as inline <style> (the service's
    Content-Security-Policy forbids it): taken verbatim from vega-embed's source and its bundled vega-tooltip."""
    source = (embed / "src" / "style.ts").read_text()
    own = source[source.index("`") + 1 : source.rindex("`")]
    bundle = (embed / "build" / "vega-embed.min.js").read_text()
    start = bundle.index("#vg-tooltip-element {")
    tooltip = bundle[start : bundle.index('"', start)].encode().decode("unicode_escape")
    return f"/* vega-embed (src/style.ts) */\n{own}\n/* vega-tooltip (bundled in vega-embed) */\n{tooltip}"


def main() -> int:
    pins = tomllib.loads((VENDOR / "VERSIONS.toml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for name, pin in pins.items():
            spec = f"{name}@{pin['version']}"
            out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True)
            if out.returncode:
                print(f"error: npm pack {spec} failed: {out.stderr.strip()}", file=sys.stderr)
                return 1
            with tarfile.open(Path(tmp) / out.stdout.strip().splitlines()[-1]) as tar:
                tar.extractall(Path(tmp) / name, filter="data")
            package = Path(tmp) / name / "package"
            shutil.copyfile(package / "build" / pin["file"], VENDOR / pin["file"])
            shutil.copyfile(package / "LICENSE", VENDOR / f"{name}.LICENSE")
            if name == "vega-embed":
                (VENDOR / "vega-embed.css").write_text(styles(package))
            digest = hashlib.sha256((VENDOR / pin["file"]).read_bytes()).hexdigest()
            print(f"{spec}: {pin['file']} sha256 {digest}{'' if digest == pin['sha256'] else ' (new: record it)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
