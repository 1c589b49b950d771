#!/usr/bin/env bash
# Build fastfeed's Cython extensions instrumented for libFuzzer and AddressSanitizer, into
# fuzz/.build/ (a copy of the package; the normal in-place build is left alone).
#
#   apt-get install -y clang-16 libclang-rt-16-dev   # once
#   .venv/bin/pip install -e '.[fuzz]'               # atheris 3.0.0
#   fuzz/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CLANG=${CLANG:-clang-16}
OUT=fuzz/.build
rm -rf "$OUT"
mkdir -p "$OUT/lib"
# The package's Python files, without the extensions of the normal build.
cp -r src/fastfeed "$OUT/lib/fastfeed"
find "$OUT/lib/fastfeed" \( -name '*.so' -o -name '*.c' -o -name '__pycache__' \) -prune -exec rm -rf {} +
SAN="-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer -g"
CC="$CLANG" LDSHARED="$CLANG -shared" CFLAGS="$SAN" LDFLAGS="$SAN" \
    "$PY" setup.py -q build_ext --build-lib "$OUT/lib" --build-temp "$OUT/tmp" --force
echo "instrumented build in $OUT/lib"
