# shellcheck shell=bash
# test/t/tap.sh: a tiny TAP helper for the scripted tests.  Source it.
#   ok DESC / not_ok DESC [DIAG]     one assertion, passed or failed
#   check DESC CMD [ARG...]          ok when CMD exits 0
#   is GOT WANT DESC                 string equality
#   like TEXT REGEX DESC             TEXT matches the extended regex
#   unlike TEXT REGEX DESC           TEXT does not match
#   lacks FILE... -- STRING DESC     no FILE contains STRING (fixed, case-blind)
#   skip DESC REASON                 counted as ok, marked # skip
#   diag MSG                         a comment line
#   bail MSG                         a failed assertion, then exit 1 (the EXIT trap still runs)
#   done_testing                     prints the plan, exits 1 when anything failed
# Diagnostics go to stdout as "# " lines; nothing else should start with "ok".

TAP_N=0
TAP_FAILED=0

diag() {
    local line
    while IFS= read -r line; do printf '# %s\n' "$line"; done <<<"$*"
}

ok() {
    TAP_N=$((TAP_N + 1))
    printf 'ok %d - %s\n' "$TAP_N" "$1"
}

not_ok() {
    TAP_N=$((TAP_N + 1))
    TAP_FAILED=$((TAP_FAILED + 1))
    printf 'not ok %d - %s\n' "$TAP_N" "$1"
    [ $# -gt 1 ] && [ -n "$2" ] && diag "$2"
    return 0
}

skip() {
    TAP_N=$((TAP_N + 1))
    printf 'ok %d - %s # skip %s\n' "$TAP_N" "$1" "${2:-}"
}

check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "command failed: $* :: $(printf '%s' "$out" | tail -5)"; fi
}

is() {
    if [ "$1" == "$2" ]; then ok "$3"; else not_ok "$3" "got:  '$1'
want: '$2'"; fi
}

# (grep reads a here-string, not a pipe: with pipefail, grep -q leaving early
# would kill the writer of a long text with SIGPIPE and fail the pipeline)
like() {
    if grep -qE -- "$2" <<<"$1"; then ok "$3"; else not_ok "$3" "text does not match /$2/:
$(printf '%s' "$1" | tail -8)"; fi
}

unlike() {
    if grep -qE -- "$2" <<<"$1"; then not_ok "$3" "text matches /$2/:
$(printf '%s' "$1" | grep -E -- "$2" | head -3)"; else ok "$3"; fi
}

# lacks FILE... -- STRING DESC
lacks() {
    local files=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do files+=("$1"); shift; done
    shift
    local needle=$1 desc=$2 existing=() f
    for f in "${files[@]}"; do [ -e "$f" ] && existing+=("$f"); done
    if [ -z "$needle" ]; then not_ok "$desc" "empty search string"; return 0; fi
    if [ ${#existing[@]} -eq 0 ]; then not_ok "$desc" "no file to search: ${files[*]}"; return 0; fi
    if grep -qiF -- "$needle" "${existing[@]}"; then
        not_ok "$desc" "found in: $(grep -liF -- "$needle" "${existing[@]}" | tr '\n' ' ')"
    else
        ok "$desc"
    fi
}

bail() {
    not_ok "bail out: $*"
    echo "Bail out! $*"
    exit 1
}

done_testing() {
    echo "1..$TAP_N"
    if [ "$TAP_FAILED" -gt 0 ]; then
        diag "$TAP_FAILED of $TAP_N assertions failed"
        exit 1
    fi
    exit 0
}

# Helpers of scripts that start and crash servers of their own.
# wait_for SECONDS SQL WANT: polls (every 0.25 s) the caller's q() until SQL
# prints WANT; prints the last value, and fails if it never came
wait_for() {
    local got="" end=$((SECONDS + $1))
    while :; do
        got=$(q "$2")
        [ "$got" == "$3" ] && { printf '%s' "$got"; return 0; }
        [ $SECONDS -ge $end ] && { printf '%s' "$got"; return 1; }
        sleep 0.25
    done
}
server_ready() {    # server_ready SECONDS: waits that long at most for connections
    local end=$((SECONDS + $1))
    until psql -X -q -A -t -d postgres -c "SELECT 1" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.25
    done
}

# Run directly (test/suites.sh runs every test/t/*.sh), this file checks
# itself: a helper that could not report a failure would hide every other one.
if [ "${BASH_SOURCE[0]}" == "$0" ]; then
    out=$(bash -c '. "$1"; is a b "x"; done_testing' _ "${BASH_SOURCE[0]}" 2>&1); rc=$?
    like "$out" '^not ok 1 - x' "is() reports a mismatch as not ok"
    [ "$rc" -ne 0 ] && ok "done_testing exits non-zero after a failure" || not_ok "done_testing exits non-zero after a failure"
    out=$(bash -c '. "$1"; is a a "x"; like abc "^a" "y"; unlike abc "z" "w"; done_testing' _ "${BASH_SOURCE[0]}" 2>&1); rc=$?
    is "$rc:$(printf '%s' "$out" | grep -c '^ok ')" "0:3" "passing assertions print ok and exit 0"
    f=$(mktemp); echo "Secret" > "$f"
    out=$(bash -c '. "$1"; lacks "$2" -- secret "x"; done_testing' _ "${BASH_SOURCE[0]}" "$f" 2>&1); rc=$?
    rm -f "$f"
    like "$out" '^not ok 1' "lacks() finds a string case-blind"
    done_testing
fi
