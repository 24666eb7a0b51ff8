#!/usr/bin/env bash
# A working tree that fits a device call (64 MiB with what it carries), for plan runs on a lent GPU.
#
#   deploy/gpu_tree.sh enter [--data PATH] [--no-wheels]   # switch to the lean branch, fill .carry/
#   deploy/gpu_tree.sh leave                               # switch back to the branch you were on, drop the lean one
#   deploy/gpu_tree.sh size                                # the lean tree's bytes (builds nothing in the work tree)
#
# The lean tree is HEAD less what a plan's runs never read: every served model folder (models_store/<name>/ that
# is not an evaluator), models_store/_replicates/ and every image (*.png, *.gif). The evaluators, the store's JSON
# files, the code, the studies and the docs' text stay. It is a throwaway local branch, `gpu-lean`, built from
# HEAD with a private index (the real index and HEAD's history are untouched) and never pushed.
#
# .carry/ (ignored through .git/info/exclude, so only `carry` takes it along) gets MNIST as .carry/mnist.npz and,
# unless --no-wheels, the wheels the device lacks for Keras' JAX backend (keras, namex, optree; Python 3.12,
# x86-64) in .carry/whl/. The device call then reads, for example:
#
#   run(carry=[".carry"], command="python3 -m pip install -q --no-index --no-deps --target /tmp/site .carry/whl/*.whl
#       && export PYTHONPATH=/tmp/site:$PWD && KERAS_BACKEND=jax ... --data .carry/mnist.npz")
#
# `enter` refuses a tree with uncommitted changes (they would travel, or be lost on the switch) and a second
# `enter`; `leave` restores the branch recorded by `enter`. Ignored files (runs/, the replicates' GAN weights) are
# never touched.
set -euo pipefail

LEAN=gpu-lean
CARRY=.carry
LIMIT_MIB=40                      # what tests/test_deploy.py holds the lean tree to (a call carries 64 MiB in all)

die() { echo "gpu_tree.sh: $*" >&2; exit 2; }

root=$(git rev-parse --show-toplevel 2>/dev/null) || die "not inside a git checkout ($(pwd))"
cd "$root"
gitdir=$(git rev-parse --absolute-git-dir)
origin_file="$gitdir/gpu-tree-origin"

# The paths HEAD tracks that the lean tree drops, one per line.
dropped() {
  git ls-tree -r --name-only HEAD | awk '
    /^models_store\/_replicates\// { print; next }
    /^models_store\/[^\/]+\// { split($0, p, "/"); if (p[2] !~ /^_evaluator/) { print; next } }
    /\.(png|gif)$/ { print }'
}

# Build the lean tree with a private index; print its tree id.
lean_tree() {
  local index
  index=$(mktemp "$gitdir/gpu-tree-index.XXXXXX")
  GIT_INDEX_FILE="$index" git read-tree HEAD
  dropped | tr '\n' '\0' | GIT_INDEX_FILE="$index" xargs -0 -r git rm -q --cached --ignore-unmatch -- >/dev/null
  GIT_INDEX_FILE="$index" git write-tree
  rm -f "$index"
}

tree_bytes() {
  git ls-tree -r -l "$1" | awk '{ s += $4 } END { print s + 0 }'
}

cmd_size() {
  local tree
  tree=$(lean_tree)
  echo "lean tree $tree: $(tree_bytes "$tree") bytes in $(git ls-tree -r "$tree" | wc -l) files" \
    "(HEAD: $(tree_bytes HEAD^{tree}) bytes; limit ${LIMIT_MIB} MiB)"
}

fill_carry() {
  local data=$1 wheels=$2
  grep -qxF "/$CARRY/" "$gitdir/info/exclude" 2>/dev/null || { mkdir -p "$gitdir/info"; echo "/$CARRY/" >>"$gitdir/info/exclude"; }
  mkdir -p "$CARRY"
  if [ -n "$data" ]; then
    cp "$data" "$CARRY/mnist.npz.tmp" && mv "$CARRY/mnist.npz.tmp" "$CARRY/mnist.npz"
  fi
  # Keras at the version training here uses (the .venv's), so the device writes files this side reads alike.
  local keras_version
  keras_version=$( (.venv/bin/python -c 'import importlib.metadata as m; print(m.version("keras"))' || true) 2>/dev/null)
  local wheel_names=("keras${keras_version:+==$keras_version}" namex optree)
  if [ "$wheels" = 1 ] && ! ls "$CARRY"/whl/keras-*.whl >/dev/null 2>&1; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$CARRY/whl" "${wheel_names[@]}" \
      || echo "gpu_tree.sh: warning: could not download ${wheel_names[*]} into $CARRY/whl (no PyPI?)" >&2
  fi
}

cmd_enter() {
  local data="" wheels=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --data) [ $# -ge 2 ] || die "--data needs a path"; data=$2; shift 2 ;;
      --no-wheels) wheels=0; shift ;;
      *) die "enter: unknown argument '$1' (accepted: --data PATH, --no-wheels)" ;;
    esac
  done
  [ -z "$data" ] && [ -n "${MNIST_NPZ:-}" ] && data=$MNIST_NPZ
  if [ -n "$data" ]; then
    [ -f "$data" ] || die "--data $data: no such file (MNIST in Keras' layout, see ../shared/data/README.md)"
    data=$(cd "$(dirname "$data")" && pwd)/$(basename "$data")
  fi
  [ ! -f "$origin_file" ] || die "already on the lean tree (from $(cat "$origin_file")); run 'deploy/gpu_tree.sh leave' first"
  local dirty
  dirty=$(git status --porcelain --untracked-files=normal)
  [ -z "$dirty" ] || die "uncommitted changes would travel or be lost on the switch; commit or stash them first: $(echo "$dirty" | head -3 | tr '\n' ' ')"
  local from tree commit
  from=$(git symbolic-ref -q --short HEAD || git rev-parse HEAD)
  tree=$(lean_tree)
  commit=$(git commit-tree "$tree" -p HEAD -m "gpu-lean: $(git rev-parse --short HEAD) less served models, replicates and images")
  git branch -f "$LEAN" "$commit" >/dev/null
  echo "$from" >"$origin_file"
  git checkout -q "$LEAN"
  fill_carry "$data" "$wheels"
  echo "on $LEAN ($(tree_bytes "$tree") bytes tracked); carry: $(du -sb "$CARRY" | cut -f1) bytes in $CARRY/" \
    "($(ls "$CARRY" | tr '\n' ' ')); 'deploy/gpu_tree.sh leave' switches back to $from"
}

cmd_leave() {
  [ -f "$origin_file" ] || die "not on the lean tree (no $origin_file)"
  local from
  from=$(cat "$origin_file")
  local dirty
  dirty=$(git status --porcelain --untracked-files=normal)
  [ -z "$dirty" ] || die "changes made on $LEAN would be lost; copy them out or commit them elsewhere: $(echo "$dirty" | head -3 | tr '\n' ' ')"
  git checkout -q "$from"
  git branch -D -q "$LEAN"
  rm -f "$origin_file"
  echo "back on $from"
}

case "${1:-}" in
  enter) shift; cmd_enter "$@" ;;
  leave) shift; cmd_leave "$@" ;;
  size) cmd_size ;;
  *) die "usage: deploy/gpu_tree.sh enter [--data PATH] [--no-wheels] | leave | size (got '${1:-}')" ;;
esac
