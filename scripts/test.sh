#!/usr/bin/env bash
# Builds logitkit with its tests, examples and benchmarks in ./build and runs the whole test suite.
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

cmake -S . -B build \
    -DCMAKE_BUILD_TYPE=Release \
    -DLOGITKIT_BUILD_TESTS=ON \
    -DLOGITKIT_BUILD_EXAMPLES=ON \
    -DLOGITKIT_BUILD_BENCH=ON
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 --no-tests=error
