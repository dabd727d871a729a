#!/usr/bin/env bash
# Builds bench_softmax (Release, -O3 -march=native unless --march) and runs it with 5 repetitions, then prints a
# Markdown table of GB/s, the ratio of each kernel to a memcpy moving the same bytes and the
# speed-ups over the peers built in, and the row-length sweep. Installs what it needs first
# (scripts/deps.sh, plus the peers' Debian packages when they are asked for).
#
#   bench/run_bench.sh [options] [-- extra Google Benchmark flags]
#
#   -B, --build-dir DIR   build tree (default: build-bench in the repository root)
#   -o, --out FILE        JSON results (default: DIR/bench_softmax.json)
#   -f, --filter REGEX    run only the matching benchmarks (--benchmark_filter)
#   -r, --repetitions N   repetitions per benchmark (default 5)
#       --libtorch        also time libtorch (-DLOGITKIT_BENCH_LIBTORCH=ON; libtorch-dev), with
#                         the ATEN_CPU_CAPABILITY of --march (see below)
#       --onednn          also time oneDNN (-DLOGITKIT_BENCH_ONEDNN=ON; libdnnl-dev)
#       --all             also run bench_cross_entropy, bench_gumbel and bench_attention (masked
#                         and bfloat16 softmax); their JSON beside --out
#       --docs            write the tables to docs/benchmarks.md and the sweep's plot to
#                         docs/benchmarks-sweep.png (python3-matplotlib); with --march other than
#                         native, to docs/benchmarks-ARCH.md and docs/benchmarks-ARCH-sweep.png
#       --march ARCH      build with -march=ARCH (default native; e.g. haswell: AVX2 and FMA only;
#                         '' for the compiler's default), and time libtorch's kernels of the same
#                         instruction set unless ATEN_CPU_CAPABILITY is set
#       --no-build        run the existing binaries
#
# Example: bench/run_bench.sh -f 'softmax/128x1000|memcpy/128x1000' -- --benchmark_min_time=1
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
invocation="bench/run_bench.sh $*"
build_dir="$root/build-bench"
out=""
filter=""
repetitions=5
libtorch=OFF
onednn=OFF
docs=0
all=0
march=native
build=1
extra=()

usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
need_arg() { [[ $# -ge 2 ]] || { echo "run_bench.sh: $1 needs a value" >&2; exit 2; }; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        -B|--build-dir) need_arg "$@"; build_dir="$2"; shift 2 ;;
        -o|--out) need_arg "$@"; out="$2"; shift 2 ;;
        -f|--filter) need_arg "$@"; filter="$2"; shift 2 ;;
        -r|--repetitions) need_arg "$@"; repetitions="$2"; shift 2 ;;
        --libtorch) libtorch=ON; shift ;;
        --onednn) onednn=ON; shift ;;
        --all) all=1; shift ;;
        --docs) docs=1; shift ;;
        --march) need_arg "$@"; march="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run_bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ -n "$out" ]] || out="$build_dir/bench_softmax.json"

benches=(bench_softmax)
[[ $all -eq 0 ]] || benches+=(bench_cross_entropy bench_gumbel bench_attention)

if [[ $build -eq 1 ]]; then
    peers=()
    # oneDNN's CMake package looks for OpenCL (Debian builds it with its OpenCL runtime).
    [[ $onednn == OFF ]] || peers+=(libdnnl-dev ocl-icd-opencl-dev opencl-c-headers)
    [[ $libtorch == OFF ]] || peers+=(libtorch-dev)
    [[ $docs -eq 0 ]] || peers+=(python3-matplotlib)
    bash "$root/scripts/deps.sh" ${peers[@]+"${peers[@]}"}
    cmake -S "$root" -B "$build_dir" \
        -DCMAKE_BUILD_TYPE=Release \
        -DLOGITKIT_BUILD_BENCH=ON \
        -DLOGITKIT_BUILD_TESTS=OFF \
        -DLOGITKIT_BUILD_EXAMPLES=OFF \
        -DLOGITKIT_BENCH_MARCH="$march" \
        -DLOGITKIT_BENCH_LIBTORCH="$libtorch" \
        -DLOGITKIT_BENCH_ONEDNN="$onednn" \
        -DLOGITKIT_BENCH_SMOKE=OFF >/dev/null
    cmake --build "$build_dir" --target "${benches[@]}" -j "$(nproc 2>/dev/null || echo 2)"
fi

# libtorch 1.13 picks its AVX2 kernels unless told: time its kernels of the instruction set
# logitkit was built for (the best ones under -march=native).
if [[ $libtorch == ON && -z "${ATEN_CPU_CAPABILITY:-}" ]]; then
    macros="$(${CXX:-c++} ${march:+-march="$march"} -dM -E -x c++ /dev/null 2>/dev/null || true)"
    if grep -q '__AVX512F__' <<<"$macros" && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
        export ATEN_CPU_CAPABILITY=avx512
    elif grep -q '__AVX2__' <<<"$macros"; then
        export ATEN_CPU_CAPABILITY=avx2
    else
        export ATEN_CPU_CAPABILITY=default
    fi
fi

# The JSON of each benchmark binary: --out for bench_softmax, <name>.json beside it for the others.
json_of() { [[ $1 == bench_softmax ]] && echo "$out" || echo "$(dirname "$out")/$1.json"; }

mkdir -p "$(dirname "$out")"
for b in "${benches[@]}"; do
    bench="$build_dir/bench/$b"
    [[ -x "$bench" ]] || { echo "run_bench.sh: $bench not found (build it first)" >&2; exit 1; }
    args=(--benchmark_repetitions="$repetitions"
          --benchmark_report_aggregates_only=true
          --benchmark_out="$(json_of "$b")"
          --benchmark_out_format=json)
    [[ -z "$filter" ]] || args+=(--benchmark_filter="$filter")
    "$bench" "${args[@]}" ${extra[@]+"${extra[@]}"}
done

echo
for b in "${benches[@]}"; do
    python3 "$root/bench/report.py" "$(json_of "$b")"
    echo
done
if [[ $docs -eq 1 ]]; then
    name=benchmarks
    [[ $march == native ]] || name="benchmarks-${march:-default}"
    # Debian's python3 has matplotlib (python3-matplotlib); another python3 first on PATH may not.
    py=python3
    [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3
    {
        echo "# Benchmarks"
        echo
        echo "Generated by \`$invocation\` on $(date -u +%Y-%m-%d); the raw JSON is not kept."
        cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
        [[ -z "$cpu" ]] || echo "CPU: $cpu (family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1), model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -n 1))."
        echo "Every ratio compares two benchmarks of the same run of the same binary."
        echo
        echo "![ns per element against row length]($name-sweep.png)"
        for b in "${benches[@]}"; do
            echo
            echo "## $b"
            echo
            "$py" "$root/bench/report.py" "$(json_of "$b")"
        done
    } > "$root/docs/$name.md"
    "$py" "$root/bench/report.py" "$out" --plot "$root/docs/$name-sweep.png" \
        --title "softmax along rows, float, 1 thread ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["context"].get("logitkit_simd_arch", "?"))' "$out"))"
    echo "wrote docs/$name.md and docs/$name-sweep.png"
fi
echo
for b in "${benches[@]}"; do echo "(raw results: $(json_of "$b"))"; done
