#!/usr/bin/env bash
# Builds the worker image (atlas-ce/worker:latest) without any image registry: a minimal Debian
# root filesystem with Python 3, venv and pip, made with mmdebstrap from this machine's own apt
# sources, then `docker import`ed. Needs root, mmdebstrap and a Docker engine.
set -euo pipefail
image=${1:-atlas-ce/worker:latest}
. /etc/os-release
suite=${VERSION_CODENAME:?cannot tell the Debian release from /etc/os-release}
sources=
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  [ -s "$f" ] && { sources=$f; break; }
done
[ -n "$sources" ] || { echo "worker-image: no apt sources found" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "worker-image: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
echo "worker-image: building $image from Debian $suite ($sources)"
mmdebstrap --quiet --variant=apt --include=python3,python3-venv,python3-pip,python-is-python3 \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  "$suite" - "$sources" |
  docker import \
    --change 'ENV PYTHONUNBUFFERED=1' \
    --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'CMD ["python"]' \
    - "$image" >/dev/null
echo "worker-image: $image ready"
