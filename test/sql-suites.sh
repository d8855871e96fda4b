# test/sql-suites.sh: sourced by test/suites.sh and test/asan.sh.
# run_regress and run_pgtap run pg_regress and every pgTAP file in the
# current cluster (PGHOST etc. set, cwd the project root) and add to the
# caller's passed, failed, failures and write logs into $out.  count_tap is
# the default way of counting a TAP stream; a caller may define its own
# after sourcing this file.

count_tap() {   # count_tap FILE NAME: adds ok / not ok lines of a TAP stream
    local f=$1 name=$2 ok bad
    ok=$(grep -cE '^\s*ok [0-9]+' "$f" || true)
    bad=$(grep -cE '^\s*not ok [0-9]+' "$f" || true)
    passed=$((passed + ok))
    failed=$((failed + bad))
    [ "$bad" -gt 0 ] && failures+=("$name: $(grep -E '^\s*not ok' "$f" | head -5 | tr '\n' ';')")
    return 0
}

run_regress() {   # run_regress LABEL
    local rc ok bad
    echo "== pg_regress$1"
    make -s installcheck >"$out/regress.log" 2>&1
    rc=$?
    grep -E '^(test| ) |\.\.\. ' "$out/regress.log" || true
    ok=$(grep -cE '\.\.\. ok' "$out/regress.log" || true)
    bad=$(grep -cE '\.\.\. FAILED' "$out/regress.log" || true)
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + ok)); failed=$((failed + bad))
    if [ "$bad" -gt 0 ]; then
        failures+=("pg_regress$1: see regression.diffs")
        [ -f regression.diffs ] && head -200 regression.diffs
    fi
    return 0
}

run_pgtap() {   # run_pgtap LABEL: every test/pgtap/*.sql in a fresh database utilix_tap
    local f name rc
    echo "== pgTAP$1"
    ls test/pgtap/*.sql >/dev/null 2>&1 || return 0
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
    return 0
}
