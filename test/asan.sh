#!/usr/bin/env bash
# test/asan.sh: pg_regress and every pgTAP file against a build of utilix
# with AddressSanitizer and UndefinedBehaviorSanitizer, run by Debian's own
# server with the sanitizer runtimes preloaded.  Ends with one line:
# N passed, N failed.  Every sanitizer report counts as a failure, and so does
# a server process killed by a signal.
#
# The sanitized utilix.so is built in a temporary folder (the normal build in
# the work tree is not touched).  The server must load it as $libdir/utilix.so
# (module_pathname), so:
#  - as root with unshare(1), it is bind-mounted over the installed utilix.so
#    in a private mount namespace that only this run's cluster lives in: the
#    installed file is never changed, other clusters on the machine keep the
#    normal build, and nothing needs restoring;
#  - otherwise (UTILIX_ASAN_MODE=swap forces it) it is installed with
#    `make install` for the seconds the postmaster needs to load it, and the
#    normal build is reinstalled (`make install` in the work tree) as soon as
#    the server runs, and again on exit.  The server keeps the code it loaded.
# Either way the postmaster's memory map is checked: if it loaded another
# utilix.so (someone installed one meanwhile) the run is retried.
#
# test/t/ is left out: those scripts start, crash and restart servers of their
# own, which would need the sanitized .so installed for all of their minutes,
# and they would double the time of `make test`.
#
# UTILIX_KEEP=1 keeps the temporary folder (build, logs); it is kept anyway
# when something failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

# -Wno-error=clobbered: at -O1 gcc 12 warns that a pointer set before PG_TRY in
# encrypt.c might be clobbered by longjmp; it is not assigned after the
# setjmp, so the warning is spurious, and it does not appear at -O2.
# UTILIX_ASAN_CFLAGS replaces these flags.
SAN_CFLAGS=${UTILIX_ASAN_CFLAGS:-"-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g -Wno-error=clobbered"}

# ------------------------------------------------------------------ inside
# Run by cluster.sh in the running throwaway cluster.  Writes "passed failed"
# to $UTILIX_ASAN_WORK/result; exits 75 when the server did not load the
# sanitized build (the caller retries).
inside() {
    # shellcheck source=test/lib.sh
    . "$here/lib.sh"
    # shellcheck source=test/sql-suites.sh
    . "$here/sql-suites.sh"
    cd "$top" || exit 1
    local work=$UTILIX_ASAN_WORK logs=$UTILIX_ASAN_WORK/logs out=$UTILIX_ASAN_WORK/out
    local passed=0 failed=0 failures=() pid mapped ok bad rc f name line
    mkdir -p "$out"

    pid=$(head -1 "$UTILIX_DIR/data/postmaster.pid")
    mapped=$(awk '$6 ~ /\/utilix\.so$/ { print $5; exit }' "/proc/$pid/maps")
    if [ "$UTILIX_ASAN_MODE" = swap ]; then
        make -C "$top" -s install >"$work/restore.log" 2>&1 ||
            echo "could not reinstall the normal build: $(tail -3 "$work/restore.log")"
    fi
    if [ "$mapped" != "$UTILIX_ASAN_INODE" ]; then
        echo "the server loaded another utilix.so (inode ${mapped:-none}, the sanitized build is $UTILIX_ASAN_INODE): installed meanwhile?"
        exit 75
    fi
    if grep -q '/libasan\.so' "/proc/$pid/maps" && grep -q '/libubsan\.so' "/proc/$pid/maps"; then
        echo "ok: the server runs the sanitized utilix.so with libasan and libubsan"
        passed=$((passed + 1))
    else
        echo "not ok: the sanitizer runtimes are not in the server"
        failed=$((failed + 1)); failures+=("the sanitizer runtimes are not in the server")
    fi

    # A timing comparison of two code paths does not hold under ASan, which
    # slows utilix's code and every malloc of PostgreSQL but not OpenSSL (the
    # scrypt of 40_users): such an assertion that fails is listed, not counted.
    local timing='costs about as much as' timing_failed=()
    count_tap() {
        ok=$(grep -cE '^\s*ok [0-9]+' "$1" || true)
        bad=$(grep -E '^\s*not ok [0-9]+' "$1" | grep -cv "$timing" || true)
        passed=$((passed + ok)); failed=$((failed + bad))
        [ "$bad" -gt 0 ] && failures+=("$2: $(grep -E '^\s*not ok' "$1" | grep -v "$timing" | head -5 | tr '\n' ';')")
        while IFS= read -r line; do timing_failed+=("$2: $line"); done \
            < <(grep -E '^\s*not ok [0-9]+' "$1" | grep "$timing")
        return 0
    }

    run_regress " (sanitized)"
    run_pgtap " (sanitized)"

    # stop first: reports written at process exit belong to this run too
    cluster_stop
    cp "$UTILIX_DIR/server.log" "$work/server.log"

    echo "== sanitizer reports"
    local n reports=0
    for f in "$logs"/*; do
        [ -e "$f" ] || continue
        n=$(grep -cE 'ERROR: AddressSanitizer|runtime error:' "$f" || true)
        [ "$n" -gt 0 ] || n=1
        reports=$((reports + n))
        echo "--- $f"
        head -150 "$f"
    done
    n=$(grep -cE 'ERROR: AddressSanitizer|runtime error:|terminated by signal' "$work/server.log" || true)
    if [ "$n" -gt 0 ]; then
        echo "--- server.log"
        grep -nE -A20 'ERROR: AddressSanitizer|runtime error:|terminated by signal' "$work/server.log" | head -150
        reports=$((reports + n))
    fi
    if [ "$reports" -eq 0 ]; then
        echo "ok: no sanitizer report, no server process killed by a signal"
        passed=$((passed + 1))
    else
        failed=$((failed + reports)); failures+=("$reports sanitizer report(s) or crash(es), logs in $work")
    fi

    if [ ${#timing_failed[@]} -gt 0 ]; then
        echo "== timing assertions that failed, not counted (the sanitizers change the costs they compare)"
        printf '  %s\n' "${timing_failed[@]}"
    fi
    if [ ${#failures[@]} -gt 0 ]; then
        echo "== failures (sanitized)"
        printf '  %s\n' "${failures[@]}"
    fi
    echo "$passed $failed" >"$work/result"
    [ "$failed" -eq 0 ]
}

if [ "${1:-}" = --inside ]; then
    inside
    exit $?
fi

# ------------------------------------------------------------------ outside
result() {   # result PASSED FAILED: the last line, and the exit status
    [ -n "${keep:-}" ] && [ -n "${work:-}" ] && echo "kept $work (build, sanitizer logs, server.log)"
    echo "$1 passed, $2 failed"
    [ "$2" -eq 0 ]
    exit
}

PG_CONFIG=${PG_CONFIG:-pg_config}
cc=$($PG_CONFIG --cc)
cc=${cc%% *}
libasan=$(readlink -f "$($cc -print-file-name=libasan.so)")
libubsan=$(readlink -f "$($cc -print-file-name=libubsan.so)")
if [ ! -f "$libasan" ] || [ ! -f "$libubsan" ]; then
    echo "no libasan.so / libubsan.so for $cc (test/deps.sh installs libasan8 and libubsan1)"
    result 0 1
fi
pkglib=$($PG_CONFIG --pkglibdir)
if [ ! -f "$pkglib/utilix.so" ]; then
    echo "utilix is not installed in $pkglib: make install first"
    result 0 1
fi

mode=${UTILIX_ASAN_MODE:-}
if [ -z "$mode" ]; then
    mode=swap
    if [ "$(id -u)" -eq 0 ] && command -v mount >/dev/null &&
        unshare --mount --propagation private true 2>/dev/null; then
        mode=namespace
    fi
fi

work=$(mktemp -d /tmp/utilix-asan.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/logs" "$work/build/src/sql"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/logs"
keep=${UTILIX_KEEP:-}
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    if [ "$mode" = swap ]; then
        make -C "$top" -s install >>"$work/restore.log" 2>&1 ||
            echo "could not reinstall the normal build: $(tail -3 "$work/restore.log")" >&2
    fi
    [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== sanitized build ($mode) in $work/build"
cp "$top/Makefile" "$top/utilix.control" "$work/build/"
cp "$top"/src/*.c "$top"/src/*.h "$work/build/src/"
cp "$top"/src/sql/*.sql "$work/build/src/sql/"
if ! make -C "$work/build" -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" UTILIX_CFLAGS="$SAN_CFLAGS" >"$work/build.log" 2>&1; then
    tail -30 "$work/build.log"
    keep=1
    result 0 1
fi
grep -E 'warning:' "$work/build.log" || true

# libasan initialises on the first malloc when it comes before its own
# constructor runs.  In postgres (not in pg_ctl) that first malloc is made by
# libgpg-error's constructor inside bindtextdomain(), with glibc's gettext
# lock held; ASan's start-up then calls dlsym(RTLD_DEFAULT, "swift_demangle"),
# and the dlerror() after that failed look-up takes the same lock: the
# postmaster hangs in `postgres -V`.  A swift_demangle that exists makes the
# look-up succeed (it returns NULL: "not a Swift name", so C names are
# printed as they are).
cat >"$work/build/swift_demangle.c" <<'C'
#include <stddef.h>
#include <stdint.h>
char *swift_demangle(const char *name, size_t len, char *out, size_t *outlen, uint32_t flags);
char *swift_demangle(const char *name, size_t len, char *out, size_t *outlen, uint32_t flags) { return NULL; }
C
if ! "$cc" -shared -fPIC -O1 -o "$work/build/swift_demangle.so" "$work/build/swift_demangle.c" >>"$work/build.log" 2>&1; then
    tail -5 "$work/build.log"
    keep=1
    result 0 1
fi

# UBSan's log_path is set, but with libasan ahead of it gcc 12's libubsan
# writes its reports to stderr, that is to server.log: both are checked.
export UTILIX_ASAN_MODE=$mode UTILIX_ASAN_WORK=$work
export UTILIX_SERVER_ENV="LD_PRELOAD=$libasan:$libubsan:$work/build/swift_demangle.so ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:disable_coredump=1:log_path=$work/logs/asan UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0:report_error_type=1:log_path=$work/logs/ubsan"

rc=75
for attempt in 1 2 3; do
    rm -f "$work/result" "$work/logs"/*
    if [ "$mode" = namespace ]; then
        export UTILIX_ASAN_INODE
        UTILIX_ASAN_INODE=$(stat -c %i "$work/build/utilix.so")
        # shellcheck disable=SC2016  # $1..$4 are the inner shell's
        timeout -k 30 1200 unshare --mount --propagation private -- \
            sh -c 'mount --bind "$1" "$2" && exec "$3" run "$4" --inside' sh \
            "$work/build/utilix.so" "$pkglib/utilix.so" "$here/cluster.sh" "$here/asan.sh"
        rc=$?
    else
        if ! make -C "$work/build" -s install PG_CONFIG="$PG_CONFIG" UTILIX_CFLAGS="$SAN_CFLAGS" >>"$work/build.log" 2>&1; then
            tail -5 "$work/build.log"
            keep=1
            result 0 1
        fi
        export UTILIX_ASAN_INODE
        UTILIX_ASAN_INODE=$(stat -c %i "$pkglib/utilix.so")
        timeout -k 30 1200 "$here/cluster.sh" run "$here/asan.sh" --inside
        rc=$?
    fi
    [ "$rc" -eq 75 ] || break
    echo "retrying (attempt $attempt)"
    sleep $((attempt * 5))
done

if [ -f "$work/result" ]; then
    read -r passed failed <"$work/result"
else
    echo "the sanitized run did not finish (exit $rc)"
    passed=0 failed=1
    for f in "$work/logs"/*; do
        [ -e "$f" ] || continue
        echo "--- $f"
        head -150 "$f"
        n=$(grep -cE 'ERROR: AddressSanitizer|runtime error:' "$f" || true)
        failed=$((failed + (n > 0 ? n : 1)))
    done
fi
[ "$failed" -gt 0 ] && keep=1
result "$passed" "$failed"
