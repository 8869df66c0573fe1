#!/usr/bin/env bash
# Fills a wheel folder (default .whl/, git-ignored) with what a GPU machine without network
# needs to train describeme beyond its own image, which holds torch, numpy, scipy, OpenCV,
# PyYAML, typer and rich: describeme's own wheel (no dependencies; bundled model included),
# pydantic with its parts, and pycocotools (the evaluation's COCO metrics). Run it in the
# checkout's root, in the environment describeme is developed in: the versions are the ones
# installed there, so the carried set is the tested one.
#
#   bash deploy/gpu/wheelhouse.sh [DEST]           # for the machine's Python (PY_VERSION=3.12)
#   PY_VERSION=3.11 bash deploy/gpu/wheelhouse.sh   # for another Python
set -euo pipefail
dest=${1:-.whl}
py=${PY_VERSION:-3.12}
python=${PYTHON:-python3}
version() { "$python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
packages=()
for name in pydantic pydantic-core annotated-types typing-inspection typing-extensions pycocotools; do
    packages+=("$name==$(version "$name")")
done
rm -rf "$dest"
mkdir -p "$dest"
"$python" -m pip wheel -q --no-deps -w "$dest" .
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dest" "${packages[@]}"
du -sh "$dest"
ls "$dest"
