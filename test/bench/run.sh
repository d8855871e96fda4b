#!/usr/bin/env bash
# test/bench/run.sh [NAME...]
#   Runs the benchmarks (every test/bench/*.bench.sh, or only those named,
#   e.g. "crypto isolation") in ONE throwaway cluster made by test/cluster.sh,
#   and prints one table:
#       benchmark | measured | baseline | ratio | goal | met?
#   Called by `make bench` after the extension is installed.
#
#   Timings are never asserted: a missed goal shows as NO in the table but
#   does not fail the run.  The exit status is non-zero only when a
#   benchmark could not run.
#
#   A new benchmark is a new file test/bench/NAME.bench.sh that sources
#   test/bench/lib.sh, makes its own database (bench_createdb) and calls
#   bench_record once per result row.
#
#   Knobs: BENCH_SECONDS (pgbench run length, default 6), BENCH_ROUNDS
#   (measurements per side, median taken, default 5), BENCH_TIMEOUT (seconds
#   one benchmark may take, default 600).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${UTILIX_BENCH_IN_CLUSTER:-}" ]; then
    export UTILIX_BENCH_IN_CLUSTER=1
    exec "$top/test/cluster.sh" run "$here/run.sh" "$@"
fi

# --- inside the throwaway cluster --------------------------------------------
. "$top/test/lib.sh"

# Benchmark settings: enough shared buffers to hold both copies of the
# isolation data (so the A/B runs do not evict each other's pages), and no
# JIT (its compile time would be noise, not utilix).  A restart applies them.
cluster_conf "# --- utilix benchmarks ---"
cluster_conf "shared_buffers = 512MB"
cluster_conf "jit = off"
cluster_conf "max_wal_size = 4GB"
cluster_stop
cluster_start

export BENCH_TMP="$UTILIX_DIR/bench"
mkdir -p "$BENCH_TMP"
chmod 755 "$BENCH_TMP"
export BENCH_RESULTS="$BENCH_TMP/results.tsv"
: > "$BENCH_RESULTS"

benches=()
if [ $# -gt 0 ]; then
    for n in "$@"; do
        f="$here/${n%.bench.sh}.bench.sh"
        [ -f "$f" ] || { echo "no benchmark $f" >&2; exit 2; }
        benches+=("$f")
    done
else
    for f in "$here"/*.bench.sh; do
        [ -e "$f" ] && benches+=("$f")
    done
fi

echo "utilix benchmarks: $(nproc) cores, pgbench runs of ${BENCH_SECONDS:-6} s," \
     "${BENCH_ROUNDS:-5} rounds per side (medians)"
failed=()
start_all=$(date +%s)
for f in "${benches[@]}"; do
    name=$(basename "$f" .bench.sh)
    echo "== $name"
    t0=$(date +%s)
    set +e
    timeout "${BENCH_TIMEOUT:-600}" bash "$f" 2>&1 | sed -u "s/^/  /"
    rc=${PIPESTATUS[0]}
    set -e
    echo "== $name: exit $rc, $(( $(date +%s) - t0 )) s"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
done

# --- the table ---------------------------------------------------------------
echo
echo "utilix benchmark results ($(( $(date +%s) - start_all )) s)"
awk -F '\t' '
function num(x) {
    if (x == "-" || x == "") return "-"
    if (x !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) return x
    x = x + 0
    if (x >= 1000 || x <= -1000) return sprintf("%.0f", x)
    if (x >= 10 || x <= -10) return sprintf("%.1f", x)
    return sprintf("%.3f", x)
}
function cell(v, u) { return (v == "-") ? "-" : (u == "" ? v : v " " u) }
BEGIN { n = 1
        c[1,1] = "benchmark"; c[1,2] = "measured"; c[1,3] = "baseline"
        c[1,4] = "ratio"; c[1,5] = "goal"; c[1,6] = "met?" }
NF >= 7 { n++
        c[n,1] = $1; c[n,2] = cell(num($2), $3); c[n,3] = cell(num($4), $3)
        c[n,4] = ($5 == "-") ? "-" : sprintf("%.3f", $5); c[n,5] = $6; c[n,6] = $7
        if ($7 == "yes") met++; if ($7 == "NO") missed++ }
END {
    for (j = 1; j <= 6; j++) for (i = 1; i <= n; i++) if (length(c[i,j]) > w[j]) w[j] = length(c[i,j])
    for (i = 1; i <= n; i++) {
        line = ""
        for (j = 1; j <= 6; j++) {
            f = (j == 1 || j >= 5) ? "%-" w[j] "s" : "%" w[j] "s"
            line = line (j > 1 ? " | " : "") sprintf(f, c[i,j])
        }
        print line
        if (i == 1) { sep = ""; for (j = 1; j <= 6; j++) { s = sprintf("%" w[j] "s", ""); gsub(/ /, "-", s); sep = sep (j > 1 ? "-|-" : "") s }; print sep }
    }
    printf "%d result(s); goals met: %d, missed: %d (timings are noisy: a miss is a signal to look, not a failure)\n", n - 1, met, missed
}' "$BENCH_RESULTS"

if [ ${#failed[@]} -gt 0 ]; then
    echo "benchmarks that did not run to the end: ${failed[*]}"
    exit 1
fi
