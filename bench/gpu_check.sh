#!/usr/bin/env bash
# Run bench/gpu_check.py on a lent GPU machine, from the repository root, with .gpucheck and .whl
# carried (both made by bench/make_gpu_check_bundle.py). Installs the carried wheels (bert-score,
# nltk, rouge-score; the image has the rest) into /tmp/site, runs the check offline and keeps the log.
# Usage: bash bench/gpu_check.sh "$OUT" [more gpu_check.py options]
set -uo pipefail
out="${1:-${OUT:-gpu_check_out}}"
shift || true
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "FAIL: could not install the carried wheels (.whl carried?)"; exit 3; }
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
timeout -k 10 360 python3 bench/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
