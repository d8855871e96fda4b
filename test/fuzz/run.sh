#!/usr/bin/env bash
# test/fuzz/run.sh [HARNESS...]
#   Builds the libFuzzer harnesses of test/fuzz/ (clang, with AddressSanitizer
#   and UBSan) and runs each for FUZZ_SECONDS (default 100; six harnesses:
#   10 minutes), one after the other, starting from the seeds in
#   test/fuzz/corpus/HARNESS.  Without arguments, all of them:
#   b64url token envelope armour pwhash spill.
#   New corpus entries, crash inputs, logs and the build go to FUZZ_WORK
#   (default ${TMPDIR:-/tmp}/utilix-fuzz), never into the repository, and the
#   corpus there is kept for the next run.  Ends with a table: executions,
#   coverage (libFuzzer's edges and, when llvm-cov is installed, the lines of
#   the parser's file run by the corpus), result.  Exits non-zero when a
#   harness crashed (or failed one of its checks, or timed out), after naming
#   the input that did it.
# test/fuzz/run.sh seeds
#   Rewrites the generated seeds (test/fuzz/corpus/*/gen-*) with gen_seeds.c.
#
# FUZZ_SECONDS=10 test/fuzz/run.sh token  is a quick look at one harness.
# CC picks the compiler (default clang).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

ALL=(b64url token envelope armour pwhash spill)
secs=${FUZZ_SECONDS:-100}
work=${FUZZ_WORK:-${TMPDIR:-/tmp}/utilix-fuzz}
CC=${CC:-clang}
PG_CONFIG=${PG_CONFIG:-pg_config}

# the parser files each harness exercises (fuzz_token.c includes src/token.c itself)
declare -A SRCS=(
    [b64url]="codec"
    [token]="codec crypto"
    [envelope]="codec envelope"
    [armour]="codec envelope"
    [pwhash]="codec pwhash"
    [spill]="spill crypto"
)
declare -A COVER=(                  # files whose line coverage is reported
    [b64url]="codec.c"
    [token]="token.c codec.c"
    [envelope]="envelope.c"
    [armour]="envelope.c codec.c"
    [pwhash]="pwhash.c"
    [spill]="spill.c"
)
declare -A MAXLEN=(                 # longest input worth trying
    [b64url]=600
    [token]=4200
    [envelope]=1200
    [armour]=1700
    [pwhash]=300
    [spill]=16384
)

command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (make deps installs clang)" >&2; exit 2; }
[ "$secs" -ge 1 ] 2>/dev/null || { echo "fuzz: FUZZ_SECONDS must be a positive number" >&2; exit 2; }

pgport=$($PG_CONFIG --pkglibdir)/libpgport_shlib.a
[ -f "$pgport" ] || pgport=$($PG_CONFIG --libdir)/libpgport_shlib.a
INC=(-I"$here" -I"$top/src" -I"$($PG_CONFIG --includedir-server)")
# PostgreSQL's own semantics (-fwrapv, -fno-strict-aliasing), debug info, and
# no noise about gcc's printf attribute in the server headers
BASE=(-g -O1 -fno-omit-frame-pointer -fwrapv -fno-strict-aliasing -Wall -Wno-ignored-attributes)
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all)
build=$work/build

# build_harness NAME: objects of the parsers with coverage instrumentation,
# the stub and crypto.c (OpenSSL wrappers) without, into $build/fuzz_NAME.
build_harness() {
    local h=$1 objs=() s flags
    for s in ${SRCS[$h]} ; do
        if [ "$s" = crypto ]; then flags=("${SAN[@]}"); else flags=("${SAN[@]}" -fsanitize=fuzzer-no-link); fi
        "$CC" "${BASE[@]}" "${flags[@]}" "${INC[@]}" -c "$top/src/$s.c" -o "$build/$h.$s.o"
        objs+=("$build/$h.$s.o")
    done
    "$CC" "${BASE[@]}" "${SAN[@]}" "${INC[@]}" -c "$here/pgstub.c" -o "$build/$h.pgstub.o"
    "$CC" "${BASE[@]}" "${SAN[@]}" -fsanitize=fuzzer "${INC[@]}" "$here/fuzz_$h.c" \
        "${objs[@]}" "$build/$h.pgstub.o" "$pgport" -lcrypto -lm -o "$build/fuzz_$h"
}

# build_cover NAME: the same harness for line coverage (llvm-cov), no sanitizers.
build_cover() {
    local h=$1 srcs=() s
    for s in ${SRCS[$h]}; do srcs+=("$top/src/$s.c"); done
    "$CC" "${BASE[@]}" -fprofile-instr-generate -fcoverage-mapping -fsanitize=fuzzer "${INC[@]}" \
        "$here/fuzz_$h.c" "${srcs[@]}" "$here/pgstub.c" "$pgport" -lcrypto -lm -o "$build/cover_$h"
}

if [ "${1:-}" = seeds ]; then
    mkdir -p "$build"
    "$CC" "${BASE[@]}" "${INC[@]}" "$here/gen_seeds.c" "$top/src/codec.c" "$top/src/envelope.c" \
        "$top/src/token.c" "$top/src/pwhash.c" "$top/src/crypto.c" "$here/pgstub.c" \
        "$pgport" -lcrypto -lm -o "$build/gen_seeds"
    rm -f "$here"/corpus/*/gen-*
    "$build/gen_seeds" "$here/corpus"
    exit 0
fi

if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${ALL[@]}"); fi
for h in "${harnesses[@]}"; do
    [ -n "${SRCS[$h]:-}" ] || { echo "fuzz: no harness $h (there are: ${ALL[*]})" >&2; exit 2; }
done

mkdir -p "$build" "$work/logs"
echo "fuzz: building ${harnesses[*]} in $build"
for h in "${harnesses[@]}"; do
    build_harness "$h"
done
have_cov=0
if command -v llvm-profdata >/dev/null && command -v llvm-cov >/dev/null; then
    have_cov=1
    for h in "${harnesses[@]}"; do build_cover "$h"; done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
declare -A RESULT EXECS RATE COV LINES
for h in "${harnesses[@]}"; do
    corpus=$work/corpus/$h
    arts=$work/artifacts/$h
    log=$work/logs/$h.log
    mkdir -p "$corpus" "$arts"
    dict=()
    [ -f "$here/dict/$h.dict" ] && dict=(-dict="$here/dict/$h.dict")
    before=$(find "$arts" -type f | wc -l)
    echo "fuzz: $h for ${secs}s (log: $log)"
    set +e
    # new entries go to the first directory (the work corpus); the seeds are only read
    "$build/fuzz_$h" -max_total_time="$secs" -max_len="${MAXLEN[$h]}" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
        -artifact_prefix="$arts/" "$corpus" "$here/corpus/$h" >"$log" 2>&1
    rc=$?
    set -e
    EXECS[$h]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    RATE[$h]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    total=$(sed -n 's/.*Loaded 1 modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -1)
    cov=$( (grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" || true) | tail -1 |
          awk '{print $2 " edges, " $4 " features, " $6 " inputs"}')
    COV[$h]="${cov:-?}${total:+ (of $total edges)}"
    new_arts=$(find "$arts" -type f -newer "$build/fuzz_$h" | sort)
    if [ $rc -ne 0 ] || [ "$(find "$arts" -type f | wc -l)" -gt "$before" ]; then
        RESULT[$h]="FAILED (exit $rc)"
        failed+=("$h")
        echo "fuzz: $h FAILED (exit $rc).  What libFuzzer said:" >&2
        { grep -E 'ERROR: |runtime error|utilix fuzz:|pgstub:|SUMMARY|Test unit written|ALARM|deadly signal' "$log" || true; } |
            head -20 | sed 's/^/    /' >&2
        for a in $new_arts; do
            echo "fuzz: crashing input: $a" >&2
            echo "fuzz:   reproduce: $build/fuzz_$h $a" >&2
        done
    else
        RESULT[$h]=ok
    fi
    LINES[$h]="-"
    if [ $have_cov -eq 1 ]; then
        # line coverage of the parser's file by the whole corpus (seeds and found)
        rm -f "$build/$h.profraw"
        if LLVM_PROFILE_FILE="$build/$h.profraw" "$build/cover_$h" -runs=0 "$corpus" "$here/corpus/$h" \
               >"$work/logs/$h.cover.log" 2>&1 &&
           llvm-profdata merge -sparse "$build/$h.profraw" -o "$build/$h.profdata" 2>/dev/null; then
            LINES[$h]=$(for f in ${COVER[$h]}; do
                llvm-cov report "$build/cover_$h" -instr-profile="$build/$h.profdata" "$top/src/$f" 2>/dev/null |
                    awk -v f="$f" '$1 ~ /\.c$/ {print f " " $(NF-3)}'
            done | paste -sd ' ' -)
        fi
    fi
done

echo
printf '%-9s %-11s %-9s %-58s %-24s %s\n' harness executions exec/s "libFuzzer coverage at the end" "lines run by corpus" result
for h in "${harnesses[@]}"; do
    printf '%-9s %-11s %-9s %-58s %-24s %s\n' "$h" "${EXECS[$h]:-?}" "${RATE[$h]:-?}" "${COV[$h]}" "${LINES[$h]}" "${RESULT[$h]}"
done
echo "fuzz: corpus, crash inputs and logs are in $work"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
