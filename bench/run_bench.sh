#!/usr/bin/env bash
# Builds bench_softmax (Release, -O3 -march=native) and runs it with 5 repetitions, then prints a
# Markdown table of GB/s and the ratio of each kernel to a memcpy moving the same bytes.
#
#   bench/run_bench.sh [options] [-- extra Google Benchmark flags]
#
#   -B, --build-dir DIR   build tree (default: build-bench in the repository root)
#   -o, --out FILE        JSON results (default: DIR/bench_softmax.json)
#   -f, --filter REGEX    run only the matching benchmarks (--benchmark_filter)
#   -r, --repetitions N   repetitions per benchmark (default 5)
#       --libtorch        also time libtorch (-DLOGITKIT_BENCH_LIBTORCH=ON; needs libtorch-dev)
#       --no-native       build without -march=native (-DLOGITKIT_BENCH_NATIVE=OFF)
#       --no-build        run the existing binary
#
# Example: bench/run_bench.sh -f 'softmax/128x1000|memcpy/128x1000' -- --benchmark_min_time=1
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build-bench"
out=""
filter=""
repetitions=5
libtorch=OFF
native=ON
build=1
extra=()

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
need_arg() { [[ $# -ge 2 ]] || { echo "run_bench.sh: $1 needs a value" >&2; exit 2; }; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        -B|--build-dir) need_arg "$@"; build_dir="$2"; shift 2 ;;
        -o|--out) need_arg "$@"; out="$2"; shift 2 ;;
        -f|--filter) need_arg "$@"; filter="$2"; shift 2 ;;
        -r|--repetitions) need_arg "$@"; repetitions="$2"; shift 2 ;;
        --libtorch) libtorch=ON; shift ;;
        --no-native) native=OFF; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run_bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ -n "$out" ]] || out="$build_dir/bench_softmax.json"

if [[ $build -eq 1 ]]; then
    cmake -S "$root" -B "$build_dir" \
        -DCMAKE_BUILD_TYPE=Release \
        -DLOGITKIT_BUILD_BENCH=ON \
        -DLOGITKIT_BUILD_TESTS=OFF \
        -DLOGITKIT_BUILD_EXAMPLES=OFF \
        -DLOGITKIT_BENCH_NATIVE="$native" \
        -DLOGITKIT_BENCH_LIBTORCH="$libtorch" >/dev/null
    cmake --build "$build_dir" --target bench_softmax -j "$(nproc 2>/dev/null || echo 2)"
fi

bench="$build_dir/bench/bench_softmax"
[[ -x "$bench" ]] || { echo "run_bench.sh: $bench not found (build it first)" >&2; exit 1; }

args=(--benchmark_repetitions="$repetitions"
      --benchmark_report_aggregates_only=true
      --benchmark_out="$out"
      --benchmark_out_format=json)
[[ -z "$filter" ]] || args+=(--benchmark_filter="$filter")

mkdir -p "$(dirname "$out")"
"$bench" "${args[@]}" ${extra[@]+"${extra[@]}"}

echo
python3 "$root/bench/report.py" "$out"
echo
echo "(raw results: $out)"
