#!/usr/bin/env bash
# test/bench/lib.sh: shared helpers for the benchmarks in test/bench/.
#
# Sourced by every test/bench/*.bench.sh.  A benchmark runs inside the one
# throwaway cluster that test/bench/run.sh makes (PGHOST, PGPORT, PGUSER=postgres,
# UTILIX_DIR exported), makes its own database, measures, and calls
#
#     bench_record NAME MEASURED UNIT BASELINE RATIO GOAL
#
# once per result row.  run.sh prints all rows as one table.  Timings are never
# asserted: a goal only decides the "met?" column.
#
#   NAME      what was measured, e.g. "isolation: point lookup (tps)"
#   MEASURED  a number (the utilix side)
#   UNIT      unit of MEASURED and BASELINE, e.g. tps, values/s, ms
#   BASELINE  a number (the same work without utilix), or - for none
#   RATIO     a number, or empty to compute MEASURED / BASELINE, or -
#             (give it when the ratio is a median of paired ratios, as
#             bench_pgbench_mix computes, rather than a ratio of medians)
#   GOAL      ">= 0.97", "<= 1.10" (compared with RATIO), or "report" (no goal)
#
# Knobs (environment): BENCH_SECONDS (pgbench -T of one run, default 6),
# BENCH_ROUNDS (measurements per side, median taken, default 5),
# BENCH_RESULTS (the results file; unset: rows are printed as they come).
#
# Measuring: bench_sql_rounds (server-side wall time of SQL statements, warm-up
# then rotating rounds, medians), bench_pgbench_mix (two sides interleaved in
# the same pgbench runs: the steadiest A/B comparison on a shared machine),
# bench_pgbench_pair (two sides in separate, alternating pgbench runs, for
# comparisons that cannot share a run), bench_median, bench_calc.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_TOP=$(cd "$BENCH_LIB_DIR/../.." && pwd)
. "$BENCH_TOP/test/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-6}
BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_CLIENTS=${BENCH_CLIENTS:-2}
BENCH_JOBS=${BENCH_JOBS:-2}
BENCH_TMP=${BENCH_TMP:-$(mktemp -d "${UTILIX_DIR:-/tmp}/bench-tmp.XXXXXX")}
mkdir -p "$BENCH_TMP"
chmod 755 "$BENCH_TMP"

# bench_log MESSAGE...: a progress line (benchmarks take minutes; say what runs).
bench_log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"
}

# bench_die MESSAGE...: stop this benchmark with an error.
bench_die() {
    echo "bench: $*" >&2
    exit 1
}

# bench_psql DB [psql args...]: psql that stops at the first error, quiet,
# unaligned, tuples only.  Reads SQL from stdin unless -c or -f is given.
bench_psql() {
    local db=$1
    shift
    psql -X -q -v ON_ERROR_STOP=1 -A -t -d "$db" "$@"
}

# bench_createdb NAME: a fresh database with utilix installed, plus the
# timing helper bench.elapsed_ms(sql).
bench_createdb() {
    local db=$1
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    bench_psql "$db" <<'SQL'
CREATE EXTENSION utilix;
CREATE SCHEMA bench;
-- Server-side wall time of one execution of a query, in milliseconds.
CREATE FUNCTION bench.elapsed_ms(q text) RETURNS double precision
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE q;
    RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END
$$;
SQL
}

# bench_median: the median of the numbers on stdin (one a line).
bench_median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_calc EXPR: floating point arithmetic, e.g. bench_calc "2 / 3".
bench_calc() {
    awk "BEGIN { printf \"%.6f\n\", $1 }"
}

# bench_sql_rounds DB ROUNDS NAME1 SQL1 [NAME2 SQL2 ...]
#   Runs every query once as a warm-up, then ROUNDS times each, in one
#   session, rotating which query goes first in each round so that drift in
#   the machine's speed falls on all of them alike.  Prints "NAME MEDIAN_MS"
#   lines, one per query, in the order given.
bench_sql_rounds() {
    local db=$1 rounds=$2
    shift 2
    local names=() sqls=() n i r k script out
    while [ $# -gt 0 ]; do
        names+=("$1"); sqls+=("$2"); shift 2
    done
    n=${#names[@]}
    script="$BENCH_TMP/rounds.$$.sql"
    out="$BENCH_TMP/rounds.$$.out"
    : > "$script"
    for ((r = 0; r <= rounds; r++)); do
        for ((k = 0; k < n; k++)); do
            i=$(( (k + r) % n ))
            printf "SELECT '%s', %d, bench.elapsed_ms(\$bench\$%s\$bench\$);\n" \
                "${names[$i]}" "$r" "${sqls[$i]}" >> "$script"
        done
    done
    bench_psql "$db" -F ' ' -f "$script" > "$out" || return 1
    for ((i = 0; i < n; i++)); do
        # round 0 is the warm-up
        printf '%s %s\n' "${names[$i]}" \
            "$(awk -v nm="${names[$i]}" '$1 == nm && $2 > 0 { print $3 }' "$out" | bench_median)"
    done
    rm -f "$script" "$out"
}

# bench_pgbench_tps DB USER SECONDS SCRIPT [SCRIPT...]: one pgbench run of
# the custom scripts (-n -M prepared, BENCH_CLIENTS clients, BENCH_JOBS
# threads); prints its tps.  Fails, with pgbench's output, when any
# transaction failed.
bench_pgbench_tps() {
    local db=$1 user=$2 secs=$3
    shift 3
    local args=() f log tps
    for f in "$@"; do args+=(-f "$f"); done
    log="$BENCH_TMP/pgbench.$$.log"
    if ! pgbench -n -M prepared -c "$BENCH_CLIENTS" -j "$BENCH_JOBS" -T "$secs" \
            -U "$user" "${args[@]}" "$db" > "$log" 2>&1; then
        echo "pgbench failed ($*):" >&2
        tail -20 "$log" >&2
        return 1
    fi
    if grep -qE '^number of failed transactions: [1-9]' "$log"; then
        echo "pgbench had failed transactions ($*):" >&2
        tail -20 "$log" >&2
        return 1
    fi
    tps=$(awk '/^tps = / { print $3; exit }' "$log")
    [ -n "$tps" ] || { echo "no tps in pgbench output:" >&2; cat "$log" >&2; return 1; }
    echo "$tps"
}

# bench_pgbench_pair DB USER LABEL_A SCRIPTS_A LABEL_B SCRIPTS_B
#   A/B comparison: a short warm-up of each, then BENCH_ROUNDS runs of each,
#   alternating A,B / B,A / A,B ... so that drift falls on both alike.
#   SCRIPTS_x is a space-separated list of script files (no spaces in paths).
#   Prints "MEDIAN_TPS_A MEDIAN_TPS_B"; logs each run.
bench_pgbench_pair() {
    local db=$1 user=$2 la=$3 sa=$4 lb=$5 sb=$6
    local r ta tb all_a=() all_b=() warm
    warm=$(( BENCH_SECONDS < 3 ? BENCH_SECONDS : 3 ))
    # shellcheck disable=SC2086
    bench_pgbench_tps "$db" "$user" "$warm" $sa >/dev/null || return 1
    # shellcheck disable=SC2086
    bench_pgbench_tps "$db" "$user" "$warm" $sb >/dev/null || return 1
    for ((r = 1; r <= BENCH_ROUNDS; r++)); do
        if (( r % 2 )); then
            # shellcheck disable=SC2086
            ta=$(bench_pgbench_tps "$db" "$user" "$BENCH_SECONDS" $sa) || return 1
            # shellcheck disable=SC2086
            tb=$(bench_pgbench_tps "$db" "$user" "$BENCH_SECONDS" $sb) || return 1
        else
            # shellcheck disable=SC2086
            tb=$(bench_pgbench_tps "$db" "$user" "$BENCH_SECONDS" $sb) || return 1
            # shellcheck disable=SC2086
            ta=$(bench_pgbench_tps "$db" "$user" "$BENCH_SECONDS" $sa) || return 1
        fi
        bench_log "  round $r: $la $ta tps, $lb $tb tps" >&2
        all_a+=("$ta"); all_b+=("$tb")
    done
    printf '%s %s\n' "$(printf '%s\n' "${all_a[@]}" | bench_median)" \
                     "$(printf '%s\n' "${all_b[@]}" | bench_median)"
}

# bench_pgbench_mix DB USER LABEL_A SCRIPTS_A LABEL_B SCRIPTS_B
#   A/B comparison in the SAME pgbench runs: every client picks side A or B
#   at random for each transaction (all scripts weight 1; give both sides the
#   same number of scripts), so both sides see the same machine at the same
#   moment.  On a shared, noisy machine this is far steadier than separate
#   runs: load from elsewhere slows both sides alike and cancels in the
#   ratio.  A short warm-up run, then BENCH_ROUNDS runs of BENCH_SECONDS.
#   Each side's cost is its mean transaction latency in the run; it is shown
#   as the throughput it corresponds to, BENCH_CLIENTS / latency ("tps").
#   Prints "MEDIAN_TPS_A MEDIAN_TPS_B MEDIAN_RATIO", where each run's ratio
#   is latency_B / latency_A (= throughput A / throughput B); logs each run.
bench_pgbench_mix() {
    local db=$1 user=$2 la=$3 sa=$4 lb=$5 sb=$6
    local r f args=() log lat tps_a=() tps_b=() ratios=() warm
    for f in $sa $sb; do args+=(-f "$f@1"); done
    log="$BENCH_TMP/pgbench-mix.$$.log"
    warm=$(( BENCH_SECONDS < 3 ? BENCH_SECONDS : 3 ))
    for ((r = 0; r <= BENCH_ROUNDS; r++)); do
        if ! pgbench -n -M prepared -c "$BENCH_CLIENTS" -j "$BENCH_JOBS" \
                -T "$(( r == 0 ? warm : BENCH_SECONDS ))" \
                -U "$user" "${args[@]}" "$db" > "$log" 2>&1 ||
           grep -qE '^number of failed transactions: [1-9]' "$log"; then
            echo "pgbench failed ($la: $sa, $lb: $sb):" >&2
            tail -20 "$log" >&2
            return 1
        fi
        [ "$r" -eq 0 ] && continue
        # per side: mean latency over its scripts, weighted by transactions
        lat=$(awk -v sa=" $sa " -v sb=" $sb " '
            /^SQL script [0-9]+: / { side = (index(sa, " " $4 " ") ? "a" : (index(sb, " " $4 " ") ? "b" : "")) }
            /^ - [0-9]+ transactions/ { n = $2 }
            /^ - latency average = / && side != "" { tx[side] += n; sum[side] += n * $5 }
            END { if (tx["a"] == 0 || tx["b"] == 0) exit 1
                  printf "%.6f %.6f\n", sum["a"] / tx["a"], sum["b"] / tx["b"] }' "$log") || {
            echo "no per-script latencies in pgbench output:" >&2; cat "$log" >&2; return 1; }
        set -- $lat
        tps_a+=("$(bench_calc "$BENCH_CLIENTS * 1000 / $1")")
        tps_b+=("$(bench_calc "$BENCH_CLIENTS * 1000 / $2")")
        ratios+=("$(bench_calc "$2 / $1")")
        bench_log "  round $r: $la $1 ms, $lb $2 ms per transaction; ratio $(bench_calc "$2 / $1")" >&2
    done
    rm -f "$log"
    printf '%s %s %s\n' "$(printf '%s\n' "${tps_a[@]}" | bench_median)" \
                        "$(printf '%s\n' "${tps_b[@]}" | bench_median)" \
                        "$(printf '%s\n' "${ratios[@]}" | bench_median)"
}

# bench_record NAME MEASURED UNIT BASELINE RATIO GOAL: one result row (see top).
bench_record() {
    local name=$1 measured=$2 unit=$3 baseline=${4:--} ratio=${5:-} goal=${6:-report}
    local met=-
    if [ -z "$ratio" ]; then
        if [ "$baseline" != "-" ]; then
            ratio=$(awk -v m="$measured" -v b="$baseline" 'BEGIN {
                if (b + 0 == 0) print "-"; else printf "%.3f", m / b }')
        else
            ratio=-
        fi
    fi
    if [ "$ratio" != "-" ]; then
        met=$(awk -v r="$ratio" -v g="$goal" 'BEGIN {
            if (g !~ /^(>=|<=|>|<) *[0-9.]+$/) { print "-"; exit }
            op = g; sub(/ *[0-9.]+$/, "", op); v = g; sub(/^(>=|<=|>|<) */, "", v)
            ok = (op == ">=") ? (r >= v) : (op == "<=") ? (r <= v) : (op == ">") ? (r > v) : (r < v)
            print ok ? "yes" : "NO" }')
    fi
    local row
    row=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s' "$name" "$measured" "$unit" "$baseline" "$ratio" "$goal" "$met")
    if [ -n "${BENCH_RESULTS:-}" ]; then
        printf '%s\n' "$row" >> "$BENCH_RESULTS"
    fi
    printf 'result: %s\n' "$row" | tr '\t' '|'
}
