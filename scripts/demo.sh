#!/usr/bin/env bash
# Builds and runs the logitkit tour example (examples/tour.cpp).
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLOGITKIT_BUILD_EXAMPLES=ON
cmake --build build -j2 --target tour
./build/examples/tour
