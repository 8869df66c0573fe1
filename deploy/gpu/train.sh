#!/usr/bin/env bash
# Trains, evaluates and exports a parser on a machine with a GPU and no network, from the
# wheels deploy/gpu/wheelhouse.sh put in .whl/ (see deploy/gpu/README.md). Run it in the
# checkout's root:
#
#   bash deploy/gpu/train.sh [MINUTES] [CONFIG] [OUT] [extra -o overrides...]
#
# MINUTES (default 7.5) is the training's wall-clock budget (max_minutes): the schedule is
# fitted to the steps that fit. CONFIG defaults to configs/models/personlab_train_gpu.yaml,
# started from the bundled PersonLab weights (INIT_WEIGHTS=none for a fresh model). OUT
# (default $OUT, else runs/gpu) receives the release checkpoint last.pt, result.json,
# log.jsonl, config.yaml and train.log; the run folder itself (with optimizer state) stays in
# RUN_DIR (default a temporary folder).
set -euo pipefail
minutes=${1:-7.5}
config=${2:-configs/models/personlab_train_gpu.yaml}
out=${3:-${OUT:-runs/gpu}}
shift $(( $# < 3 ? $# : 3 ))
repo=$(pwd)
site=${DESCRIBEME_SITE:-/tmp/describeme-site}
run=${RUN_DIR:-$(mktemp -d)/run}
init=${INIT_WEIGHTS:-personlab}
[[ $config = /* ]] || config=$repo/$config
[[ $out = /* ]] || out=$repo/$out
[[ $run = /* ]] || run=$repo/$run
if ! compgen -G "$repo/.whl/describeme-*.whl" > /dev/null; then
    echo "error: no describeme wheel in $repo/.whl: run 'bash deploy/gpu/wheelhouse.sh' where" \
        "there is network, and carry .whl/ to this machine" >&2
    exit 2
fi
mkdir -p "$out" "$(dirname "$run")"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$repo"/.whl/*.whl
export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# Outside the checkout: its describeme/ folder (without models/) must not shadow the wheel.
cd "$(dirname "$run")"
describeme() { python3 "$site/bin/describeme" "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
overrides=(-o "max_minutes=$minutes")
[[ $init = none ]] || overrides+=(-o "init_weights=$init")
for extra in "$@"; do overrides+=(-o "$extra"); done
started=$(date +%s)
describeme train "$config" --out "$run" "${overrides[@]}" 2>&1 | tee "$out/train.log"
echo "trained in $(( $(date +%s) - started )) s" | tee -a "$out/train.log"
describeme export --model "$run/last.pt" --format checkpoint --out "$out"
cp "$run/result.json" "$run/log.jsonl" "$run/config.yaml" "$out/"
ls -la "$out"
