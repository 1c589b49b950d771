#!/usr/bin/env bash
# Run one harness (market or portfolio) under AddressSanitizer on the build from fuzz/build.sh.
#
#   fuzz/run.sh market [libFuzzer flags...]      e.g. -runs=1000000 -max_len=4096
#
# Seeds go to fuzz/corpus/<harness>/seeds (fuzz/seeds.py); new inputs to fuzz/corpus/<harness>/new;
# crashes to fuzz/artifacts/. Pin it (taskset -c 1) on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
NAME=$1
shift
CORPUS=fuzz/corpus/$NAME
[ -d "$CORPUS/seeds" ] || "$PY" fuzz/seeds.py "$NAME" "$CORPUS/seeds"
mkdir -p "$CORPUS/new" fuzz/artifacts
ASAN_SO=$("$PY" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))')
export LD_PRELOAD=$ASAN_SO
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export PYTHONPATH=$PWD/fuzz/.build/lib
# PYTHONMALLOC=malloc would let ASan see inside Python objects too, at a tenth of the speed;
# the extensions' own memory (scratch pools, store, numpy buffers) is malloc'd and checked anyway.
exec "$PY" "fuzz/$NAME.py" -artifact_prefix=fuzz/artifacts/"$NAME"- "$@" "$CORPUS/new" "$CORPUS/seeds"
