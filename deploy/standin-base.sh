#!/usr/bin/env bash
# Stand in for python:3.11-slim-bookworm where it cannot be pulled (no registry access): a minimal Debian
# bookworm (whose python3 is 3.11) with `python` on the PATH, the host's CA bundle and pip settings, imported
# into Podman under the base image's name. Used by deploy/image_check.py; does nothing if the image exists.
set -euo pipefail
name=${1:-python:3.11-slim-bookworm}
if podman image exists "$name"; then echo "$name: present"; exit 0; fi
root=$(mktemp -d /var/tmp/standin.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$root" http://deb.debian.org/debian >/dev/null
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --change 'CMD ["python3"]' - "$name" >/dev/null
echo "$name: imported a debootstrap stand-in"
