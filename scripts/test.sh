#!/usr/bin/env bash
# Builds logitkit with its tests, examples and benchmarks in ./build and runs the whole test suite.
# The benchmarks are built at -O1 (LOGITKIT_BENCH_SMOKE), only to test that they build and run:
# bench/run_bench.sh builds the ones that measure.
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

cmake -S . -B build \
    -DCMAKE_BUILD_TYPE=Release \
    -DLOGITKIT_BUILD_TESTS=ON \
    -DLOGITKIT_BUILD_EXAMPLES=ON \
    -DLOGITKIT_BUILD_BENCH=ON \
    -DLOGITKIT_BENCH_SMOKE=ON
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 --no-tests=error
