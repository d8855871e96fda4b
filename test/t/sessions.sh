# shellcheck shell=bash
# test/t/sessions.sh: sessions held open across steps of a scripted test, for
# tests where transactions of several sessions must interleave.  Source it
# after tap.sh, with q (superuser SQL in the test database), DB, hold_dir (a
# folder the test removes), an associative array FD and SESSION_TAG (a short
# tag of the test, for application_name and the step markers) set.
#   hold_open NAME ROLE         a psql session of ROLE reading from a FIFO
#   hold_send NAME SQL [nowait] runs SQL in the session, waiting until it is done
#   hold_close NAME             ends the session (an open transaction rolls back)
# (Run on its own, as test/suites.sh runs every file here, it only defines these.)

step=0
hold_open() {
    mkfifo "$hold_dir/$1.in"
    PGAPPNAME="${SESSION_TAG}_$1" psql -X -q -A -t -U "$2" -d "$DB" <"$hold_dir/$1.in" >"$hold_dir/$1.out" 2>&1 &
    local fd
    exec {fd}>"$hold_dir/$1.in"
    FD[$1]=$fd
}
hold_send() {
    step=$((step + 1))
    printf '/* %s-%s */ %s;\n' "$SESSION_TAG" "$step" "$2" >&"${FD[$1]}"
    [ "${3:-}" == nowait ] && { sleep 0.5; return 0; }
    local end=$((SECONDS + 30)) got
    while :; do
        got=$(q "SELECT state FROM pg_stat_activity WHERE application_name = '${SESSION_TAG}_$1'
                   AND query LIKE '/* ${SESSION_TAG}-$step */%'")
        case "$got" in idle*) return 0 ;; esac
        [ $SECONDS -ge $end ] && { diag "session $1 did not finish step $step ($2): $got; $(tail -3 "$hold_dir/$1.out")"; return 1; }
        sleep 0.05
    done
}
hold_close() {
    eval "exec ${FD[$1]}>&-"
    unset "FD[$1]"
    local end=$((SECONDS + 15))
    while [ -n "$(q "SELECT 1 FROM pg_stat_activity WHERE application_name = '${SESSION_TAG}_$1'")" ]; do
        [ $SECONDS -ge $end ] && break
        sleep 0.05
    done
}
