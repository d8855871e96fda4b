#!/usr/bin/env bash
# Runs every suite on one throwaway cluster (scripted tests that need their
# own server make their own), then pg_regress and pgTAP once more against a
# build with AddressSanitizer and UBSan (test/asan.sh; UTILIX_SKIP_ASAN=1
# leaves that out), and ends with one line: N passed, N failed, the sum.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/utilix-run-all.XXXXXX)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0

add() {   # add LOG STATUS: adds the "N passed, N failed" last line of LOG
    local p f
    read -r p f < <(tail -1 "$1" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p')
    if [ -z "${p:-}" ]; then
        p=0 f=1   # no summary: the runner itself broke
    elif [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
}

"$here/cluster.sh" run "$here/suites.sh" | tee "$out/suites.log"
add "$out/suites.log" "${PIPESTATUS[0]}"

if [ -z "${UTILIX_SKIP_ASAN:-}" ]; then
    echo "== sanitizers (test/asan.sh)"
    "$here/asan.sh" | tee "$out/asan.log"
    add "$out/asan.log" "${PIPESTATUS[0]}"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
