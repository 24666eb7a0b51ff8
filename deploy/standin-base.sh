#!/usr/bin/env bash
# Stand in for python:3.11-slim-bookworm where it cannot be pulled (no registry access): a minimal Debian
# bookworm (whose python3 is 3.11) with `python` on the PATH, the host's CA bundle and pip settings, imported
# into Podman under the base image's name. Used by deploy/image_check.py; does nothing if the image exists.
set -euo pipefail
name=${1:-python:3.11-slim-bookworm}
if podman image exists "$name"; then echo "$name: present"; exit 0; fi

# The package mirror: the first Debian archive (a URI whose path ends in /debian) of an enabled `deb` entry in this
# host's own apt sources, in apt's order: sources.list, then sources.list.d/*.list and *.sources (one-line and deb822
# formats). So the stand-in comes from whatever mirror or proxy the host already uses, and this file names none; when
# the host's sources name no Debian archive it stops with a message (set DEBIAN_MIRROR to choose one).
apt_mirror() {
  local dir=$1 f
  for f in "$dir/sources.list" "$dir"/sources.list.d/*; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources)  # deb822 stanzas: Types, URIs, Enabled
        awk 'BEGIN { RS = ""; FS = "\n" }
          { types = ""; uris = ""; enabled = "yes"
            for (i = 1; i <= NF; i++) {
              line = $i
              if (line ~ /^#/) continue
              if (tolower(line) ~ /^types:/) { sub(/^[^:]*:/, "", line); types = line }
              else if (tolower(line) ~ /^uris:/) { sub(/^[^:]*:/, "", line); uris = line }
              else if (tolower(line) ~ /^enabled:/) { sub(/^[^:]*:[ \t]*/, "", line); enabled = tolower(line) }
            }
            if (enabled != "no" && (" " types " ") ~ /[ \t]deb[ \t]/) { n = split(uris, u, /[ \t]+/); for (j = 1; j <= n; j++) if (u[j] != "") print u[j] } }' "$f" ;;
      *.list | */sources.list)  # one line each: deb [options] URI suite components
        awk '$1 == "deb" { i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if (i <= NF) print $i }' "$f" ;;
    esac
  done | awk '/^[a-z]+:\/\/[^ ]*\/debian\/?$/ && !found { sub(/\/$/, ""); print; found = 1 }'
}
mirror=${DEBIAN_MIRROR:-$(apt_mirror /etc/apt || true)}
if [ -z "$mirror" ]; then
  echo "$name: no Debian archive in this host's apt sources (/etc/apt); set DEBIAN_MIRROR=<URL of a Debian archive>" >&2
  exit 1
fi
echo "$name: debootstrap from $mirror"

root=$(mktemp -d /var/tmp/standin.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$root" "$mirror" >/dev/null
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --change 'CMD ["python3"]' - "$name" >/dev/null
echo "$name: imported a debootstrap stand-in"
