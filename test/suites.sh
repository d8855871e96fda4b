#!/usr/bin/env bash
# Called by run-all.sh inside a running throwaway cluster (PGHOST etc. set).
# Runs pg_regress, pgTAP (pg_prove) and the scripted tests in test/t/, and
# prints the total as its last line.  Exit status is non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cd "$top"
out=$(mktemp -d /tmp/utilix-results.XXXXXX)
chmod 755 "$out"
passed=0
failed=0
failures=()

# shellcheck source=test/sql-suites.sh
. "$here/sql-suites.sh"
run_regress ""
run_pgtap ""

echo "== scripted tests"
for f in test/t/*.sh; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .sh)
    timeout 600 bash "$f" >"$out/t-$name.log" 2>&1
    rc=$?
    if grep -qE '^\s*(not )?ok [0-9]+' "$out/t-$name.log"; then
        count_tap "$out/t-$name.log" "t/$name"
        if [ "$rc" -ne 0 ] && ! grep -qE '^\s*not ok' "$out/t-$name.log"; then
            failed=$((failed + 1)); failures+=("t/$name: exit $rc")
        fi
    elif [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); failures+=("t/$name: exit $rc")
    fi
    echo "t/$name: exit $rc"
    [ "$rc" -ne 0 ] && tail -30 "$out/t-$name.log"
done

echo "== server log holds no key"
keyhex=$(tr -d '\n' < "$UTILIX_DIR/master.key")
if grep -qi "$keyhex" "$UTILIX_DIR/server.log" "$out"/*.log; then
    failed=$((failed + 1)); failures+=("the master key appears in a log")
else
    passed=$((passed + 1))
fi

rm -rf "$out"
if [ ${#failures[@]} -gt 0 ]; then
    echo "== failures"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
