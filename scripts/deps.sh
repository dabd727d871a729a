#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages logitkit's build, tests, examples and benchmarks need.
# Idempotent: apt-get runs only when a package is missing. Extra package names may be passed as
# arguments.
#
#   bash scripts/deps.sh [extra-package...]
set -euo pipefail

# clang and libclang-rt-14-dev (clang's sanitizer and libFuzzer runtimes): the fuzz test
# (tests/fuzz). python3: tools/amalgamate.py and the single-header test. g++ brings the ASan,
# UBSan and TSan runtimes of the sanitizer tests.
packages=(cmake make g++ libxsimd-dev xtl-dev catch2 libbenchmark-dev clang libclang-rt-14-dev python3 "$@")

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: dpkg-query not found (not a Debian-based system);" \
         "install these or their equivalents yourself: ${packages[*]}" >&2
    exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps.sh: all packages present (${packages[*]})"
    exit 0
fi

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps.sh: missing packages (${missing[*]}) and not root, and sudo is not available" >&2
        exit 1
    fi
    sudo_cmd=(sudo)
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
