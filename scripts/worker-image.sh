#!/usr/bin/env bash
# Builds a Docker worker image without any image registry: a Debian root filesystem made with
# mmdebstrap from this machine's own apt sources, then `docker import`ed. Needs root,
# mmdebstrap and a Docker engine.
#
#   scripts/worker-image.sh [--force | --check] [latest | torch]
#
# latest (atlas-ce/worker:latest, the default worker): Python 3 with venv and pip, and the
#   common ML stack from Debian's packages (worker/packages.txt).
# torch (atlas-ce/worker:torch): the same plus PyTorch, CPU only (worker/packages-torch.txt).
#
# The image carries the label atlas.recipe: a hash of this script, its package lists and the
# Debian release. An image whose label matches is not built again (--force builds anyway);
# --check only says whether the image is up to date (exit 0) or not (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=build
case ${1:-} in
  --force) mode=force; shift ;;
  --check) mode=check; shift ;;
  -*) echo "worker-image: unknown option $1 (want --force or --check)" >&2; exit 2 ;;
esac
variant=${1:-latest}
case $variant in
  latest) lists=(worker/packages.txt); target=worker-image ;;
  torch) lists=(worker/packages.txt worker/packages-torch.txt); target=worker-image-torch ;;
  *) echo "worker-image: unknown image $variant (want latest or torch)" >&2; exit 2 ;;
esac
image=atlas-ce/worker:$variant
. /etc/os-release
suite=${VERSION_CODENAME:?cannot tell the Debian release from /etc/os-release}

recipe=$( { echo "$suite $variant"; cat scripts/worker-image.sh "${lists[@]}"; } | sha256sum | cut -c1-16)
have=$(docker image inspect --format '{{index .Config.Labels "atlas.recipe"}}' "$image" 2>/dev/null || true)
if [ "$mode" = check ]; then
  if [ "$have" = "$recipe" ]; then echo "$image is up to date"; exit 0; fi
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image was built from another recipe (make $target rebuilds it)"
  else
    echo "$image is missing (make $target builds it)"
  fi
  exit 1
fi
if [ "$mode" = build ] && [ "$have" = "$recipe" ]; then
  echo "worker-image: $image is up to date (recipe $recipe; --force rebuilds it)"
  exit 0
fi

sources=
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  [ -s "$f" ] && { sources=$f; break; }
done
[ -n "$sources" ] || { echo "worker-image: no apt sources found" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "worker-image: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
packages=$(sed -e 's/#.*//' "${lists[@]}" | xargs | tr ' ' ,)

# Debian's packages depend on some that no job uses: SciPy on pythran (which brings a C++
# compiler, Boost's headers and Python's development files), fonttools on sympy and the Unicode
# database's text files, PyTorch (through OpenCV) on Mesa's GPU drivers and LLVM, which a
# headless worker never loads. A stand-in package, installed first, provides them, so the image
# goes without them; a Dockerfile FROM the image can still install the real ones.
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/pkg/DEBIAN"
cat >"$stub/pkg/DEBIAN/control" <<'EOF'
Package: atlas-worker-stand-ins
Version: 1
Architecture: all
Maintainer: Atlas <atlas@localhost>
Provides: python3-pythran, python3-sympy, unicode-data (= 15.0.0), libgl1-mesa-dri
Description: stand-in for dependencies the Atlas worker image goes without
EOF
dpkg-deb --build "$stub/pkg" "$stub/stand-ins.deb" >/dev/null

echo "worker-image: building $image from Debian $suite ($sources), recipe $recipe"
start=$SECONDS
old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
# Lean: no documentation but the copyright files, no man pages or translations; the Python
# packages' test suites go once they are installed (dpkg byte-compiles them while it installs);
# mmdebstrap leaves no apt lists or package caches behind. Python's byte code stays: jobs run
# as users who cannot write it, so without it every job would compile the stack again. So does
# Matplotlib's font cache, built once here in a directory every job may use.
id=$(mmdebstrap --quiet --variant=apt --include="$packages" \
  --essential-hook="cp $stub/stand-ins.deb \"\$1/tmp/\" && chroot \"\$1\" dpkg -i /tmp/stand-ins.deb >/dev/null && rm \"\$1/tmp/stand-ins.deb\"" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook='chroot "$1" env MPLCONFIGDIR=/var/cache/matplotlib python3 -c "import matplotlib.font_manager"' \
  --customize-hook='chmod 1777 "$1/var/cache/matplotlib"' \
  --customize-hook='find "$1/usr/lib/python3/dist-packages" -type d -name tests -prune -exec rm -rf {} +' \
  --customize-hook='find "$1/var/log" "$1/var/cache/debconf" "$1/var/lib/dpkg" -type f \( -path "*/var/log/*" -o -name "*-old" \) -delete' \
  "$suite" - "$sources" |
  docker import \
    --change "LABEL atlas.recipe=$recipe" \
    --change 'ENV PYTHONUNBUFFERED=1' \
    --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'ENV MPLBACKEND=Agg' \
    --change 'ENV MPLCONFIGDIR=/var/cache/matplotlib' \
    --change 'CMD ["python"]' \
    -)
# Only an image that imports its stack gets the name (and with it the recipe's label).
modules=numpy,scipy,pandas,sklearn,xgboost,matplotlib.pyplot,PIL,tqdm,yaml
[ "$variant" = torch ] && modules=$modules,torch
if ! docker run --rm --network none "$id" python3 -c "import $modules"; then
  docker rmi "$id" >/dev/null
  echo "worker-image: the image built for $image cannot import $modules" >&2
  exit 1
fi
docker tag "$id" "$image"
if [ -n "$old" ] && [ "$old" != "$id" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
size=$(docker image inspect --format '{{.Size}}' "$image")
echo "worker-image: $image ready: $((size / 1000000)) MB in $((SECONDS - start)) s"
