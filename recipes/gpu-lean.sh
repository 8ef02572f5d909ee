#!/usr/bin/env bash
# The working tree a lent GPU machine receives is limited to 64 MiB (tracked files, untracked files
# that are not ignored, and the carried paths), and this repository's tracked files are about 60 MB.
# `on` switches to a throwaway branch that tracks only what recipes/gpu-train.sh needs (src/, the
# general-8 recipes, carry.py, gpu-train.sh, itself, bench/train_step.py, general-7.pt: 6 MiB), so the
# carried training set (work/carry, 51 MB) and wheels (.whl, 5 MB) fit beside it; `off` goes back to
# the branch it came from and deletes the throwaway one. Nothing is lost: every file it removes is
# committed on the branch it came from.
#
#   recipes/gpu-lean.sh on      # then the device call (recipes/gpu-prepare.sh says which)
#   recipes/gpu-lean.sh off
set -euo pipefail
cd "$(dirname "$0")/.."
LEAN=gpu-lease
KEEP='^(src/.*|bench/train_step\.py|recipes/general-8[ab]\.toml|recipes/gpu-train\.sh|recipes/gpu-lean\.sh|recipes/carry\.py|recipes/checkpoints/general-7\.pt|\.gitignore|pyproject\.toml)$'

case "${1:-}" in
  on)
    if [ -n "$(git status --porcelain --untracked-files=normal)" ]; then
      echo "gpu-lean: commit or stash first (the lean branch is made from a clean tree)" >&2
      exit 1
    fi
    git rev-parse --abbrev-ref HEAD > .git/gpu-lean-from
    git checkout -q -b "$LEAN"
    git ls-files | grep -v -E "$KEEP" | xargs git rm -q
    git commit -q -m "gpu lease: only what recipes/gpu-train.sh needs"
    tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
    carried=$(du -cb work/carry .whl 2>/dev/null | tail -1 | cut -f1)
    echo "gpu-lean: on $LEAN; tracked $((tracked / 1048576)) MiB + carried $((carried / 1048576)) MiB (limit 64)"
    ;;
  off)
    from=$(cat .git/gpu-lean-from 2>/dev/null || echo main)
    git checkout -q "$from"
    git branch -q -D "$LEAN"
    rm -f .git/gpu-lean-from
    echo "gpu-lean: back on $from"
    ;;
  *)
    echo "usage: recipes/gpu-lean.sh on|off" >&2
    exit 2
    ;;
esac
