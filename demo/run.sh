#!/usr/bin/env bash
# demo/run.sh: called by `make demo` after the extension is built and installed.
#
# Starts a throwaway cluster (utilix preloaded, a fresh master key, a free
# port, its socket in a temporary folder) that stays up afterwards, creates
# the database utilix_demo, walks through demo/demo.sql with psql, and prints
# how to connect to the cluster and how to stop it.  Exits non-zero when the
# walkthrough fails, when a statement that should be refused is not, or when
# a token, a password or a plaintext value of an encrypted column reaches the
# server log or a pg_dump of the database.
#
# In demo.sql each statement meant to be refused sits between
# `\set ON_ERROR_STOP 0` and a line that turns it back on and prints
# UNEXPECTED when the statement was accepted; a login meant to be refused
# (utilix.login() answers NULL and a warning, not an error) is followed by
# an \if that prints UNEXPECTED when it was not NULL.  The filter below fails
# on any UNEXPECTED line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cd "$top"
. test/lib.sh

settings=$(test/cluster.sh start) || {
    echo "demo: could not start a throwaway cluster" >&2
    exit 1
}
eval "$settings"
export PGDATABASE=postgres
export PGBIN            # demo.sql runs "$PGBIN/pg_dump" through psql's \!

give_up() {
    echo "demo: $1" >&2
    if [ -n "${UTILIX_KEEP:-}" ]; then
        echo "demo: the cluster in $UTILIX_DIR is left running (UTILIX_KEEP is set)" >&2
    else
        cluster_destroy
    fi
    exit 1
}

psql -Xq -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE utilix_demo" \
    -c "ALTER SYSTEM SET log_statement = 'all'" \
    -c "SELECT pg_reload_conf()" >/dev/null || give_up "could not create the database utilix_demo"

# psql echoes every line it reads (-a); the filter drops the psql
# meta-commands of the script (lines starting with a backslash), the source
# location of errors and psql's file:line prefix, and remembers whether a
# refusal check printed UNEXPECTED.
set +e
psql -X -a -v ON_ERROR_STOP=1 -d utilix_demo -f demo/demo.sql 2>&1 |
    awk '
        /^\\/ { next }
        /^LOCATION:/ { next }
        { sub(/^psql:[^ ]*demo\.sql:[0-9]+: /, "") }
        /^UNEXPECTED:/ { bad = 1 }
        { print; fflush() }
        END { exit bad }'
status=("${PIPESTATUS[@]}")
set -e
[ "${status[0]}" -eq 0 ] || give_up "demo/demo.sql failed (psql exit status ${status[0]})"
[ "${status[1]}" -eq 0 ] || give_up "a statement that utilix should refuse was accepted"

echo
echo "=== The server log (log_statement = 'all'): the statement that carried the token is redacted"
grep -F 'meter_app@utilix_demo LOG:  statement: ' "$UTILIX_DIR/server.log" |
    sed -E 's/^.* LOG: +/  LOG:  /' |
    awk '/redacted by utilix/ && !done { print prev; print; n = 1; done = 1; next }
         n == 1 { print; n = 0 } { prev = $0 }'
echo
echo "=== The logins through the gateway are redacted too"
grep -F 'web_gateway@utilix_demo LOG:  statement: ' "$UTILIX_DIR/server.log" |
    sed -E 's/^.* LOG: +/  LOG:  /' | head -n 1
if grep -q 'utx1\.' "$UTILIX_DIR/server.log"; then
    give_up "a context token reached the server log $UTILIX_DIR/server.log"
fi

# What demo.sql typed in clear and must not be found in the log or a dump:
# the passwords of section 19-22 and the plaintext of the encrypted columns.
secrets='Temporary-Pass-4711|Sakura-Harbour-Lantern-9|Start-Here-Pass-0815|Quiet-River-Stone-42'
plain='Hanako|Yamada|Taro Suzuki|Keiko Tanaka|Ichiro Kato|Peter Gibbons|example\.jp|initech\.example'
if grep -Eq "$secrets|$plain" "$UTILIX_DIR/server.log"; then
    give_up "a password or an encrypted column's plaintext reached the server log $UTILIX_DIR/server.log"
fi
"$PGBIN/pg_dump" -d utilix_demo >"$UTILIX_DIR/utilix_demo.dump.sql" ||
    give_up "pg_dump of utilix_demo failed"
if grep -Eq "$secrets|$plain" "$UTILIX_DIR/utilix_demo.dump.sql"; then
    give_up "a password or an encrypted column's plaintext is in the dump $UTILIX_DIR/utilix_demo.dump.sql"
fi
echo
echo "=== Neither the server log nor a full pg_dump (in $UTILIX_DIR/utilix_demo.dump.sql)"
echo "    holds a token, a password or a plaintext value of an encrypted column"

if [ "$(id -u)" -eq 0 ]; then
    stop="runuser -u postgres -- $PGBIN/pg_ctl -D $UTILIX_DIR/data stop"
else
    stop="$PGBIN/pg_ctl -D $UTILIX_DIR/data stop"
fi
cat <<EOF

The demo cluster is still running.
  connect:  psql -h $PGHOST -p $PGPORT -U postgres utilix_demo
            (or -U meter_app, -U ops, -U acme_reports, -U web_gateway to see it as those roles)
  stop:     $stop
            rm -rf $UTILIX_DIR
EOF
