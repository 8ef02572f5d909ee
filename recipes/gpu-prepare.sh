#!/usr/bin/env bash
# Prepares what a lent GPU machine needs for recipes/gpu-train.sh, in one idempotent command: the
# carried training set (work/carry, 51 MB: recipes/general-8a.toml says what) and the wheels the
# machine's image lacks (.whl, 5 MB; the device tool's README says how to carry wheels). Run it
# after recipes/general-data.sh, before asking for the machine (packing takes about 17 minutes on
# 2 cores: Opus encodes at about 18x real time there).
#
#   recipes/gpu-prepare.sh
#   recipes/gpu-lean.sh on       # a branch that tracks only what the device needs (64 MiB limit)
#   (the device tool: command `DIAG=1 bash recipes/gpu-train.sh 540`, carry work/carry and .whl,
#    timeout 580 s: about 10.5 minutes of device time with the start, 6 of them training)
#   recipes/gpu-lean.sh off
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${EDGEASR_VENV:-$HOME/.cache/edgeasr/venv}/bin/python"

if [ ! -s work/carry/carry.json ]; then
  "$PY" recipes/carry.py pack --out work/carry --level 0.97 \
    real=work/real/train-fit2.jsonl cathy=work/real/cathy-fit.jsonl check3=work/real/check3.jsonl \
    general=work/general/train.jsonl@3.3 hass=work/hass/train.jsonl@1.4 corpus=work/corpus/train.jsonl@0.9
fi
if [ ! -d .whl ] || [ "$(ls .whl/*.whl 2>/dev/null | wc -l)" -lt 6 ]; then
  mkdir -p .whl
  # the device's python is 3.12 (x86-64 manylinux); the versions are the project venv's
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 jiwer==4.0.0 rapidfuzz==3.14.6 soxr==1.1.0
fi
du -sh work/carry .whl
