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

count_tap() {   # count_tap FILE NAME: adds ok / not ok lines of a TAP stream
    local f=$1 name=$2 ok bad
    ok=$(grep -cE '^\s*ok [0-9]+' "$f" || true)
    bad=$(grep -cE '^\s*not ok [0-9]+' "$f" || true)
    passed=$((passed + ok))
    failed=$((failed + bad))
    [ "$bad" -gt 0 ] && failures+=("$name: $(grep -E '^\s*not ok' "$f" | head -5 | tr '\n' ';')")
    return 0
}

echo "== pg_regress"
make -s installcheck >"$out/regress.log" 2>&1
rc=$?
cat "$out/regress.log" | grep -E '^(test| ) |\.\.\. ' || true
ok=$(grep -cE '\.\.\. ok' "$out/regress.log" || true)
bad=$(grep -cE '\.\.\. FAILED' "$out/regress.log" || true)
if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
passed=$((passed + ok)); failed=$((failed + bad))
if [ "$bad" -gt 0 ]; then
    failures+=("pg_regress: see regression.diffs")
    [ -f regression.diffs ] && head -200 regression.diffs
fi

echo "== pgTAP"
if ls test/pgtap/*.sql >/dev/null 2>&1; then
    psql -Xq -d postgres -c "DROP DATABASE IF EXISTS utilix_tap" -c "CREATE DATABASE utilix_tap" >/dev/null
    psql -Xq -d utilix_tap -c "CREATE EXTENSION utilix" -c "CREATE EXTENSION pgtap" >/dev/null
    for f in test/pgtap/*.sql; do
        name=$(basename "$f" .sql)
        pg_prove -d utilix_tap --verbose "$f" >"$out/tap-$name.log" 2>&1
        rc=$?
        count_tap "$out/tap-$name.log" "pgtap/$name"
        if [ "$rc" -ne 0 ] && ! grep -qE '^\s*not ok' "$out/tap-$name.log"; then
            failed=$((failed + 1)); failures+=("pgtap/$name: $(tail -3 "$out/tap-$name.log" | tr '\n' ' ')")
        fi
        echo "pgtap/$name: exit $rc"
    done
fi

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
