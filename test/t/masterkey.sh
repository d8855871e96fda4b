#!/usr/bin/env bash
# Master key loading, on a cluster of its own (it restarts the server with
# bad, missing and different keys):
#  - a key file that is group/other-accessible, not owned by the server's
#    user, too short or not hex, and both settings at once: the server
#    refuses to start, the log names the setting and the reason, and never
#    holds the key;
#  - utilix.master_key_command: a program printing the key works, a program
#    that fails stops the start;
#  - another key than the database was created with: master_key_status() is
#    'mismatch', issue_context() fails with 55000, old tokens are refused;
#  - no key at all: the server starts, non-key functions work, key functions
#    fail with 55000 and a hint naming utilix.master_key_file;
#  - no server log ever holds any key's hex.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

mk_dir=$(mktemp -d /tmp/utilix-masterkey.XXXXXX)
cleanup() {
    UTILIX_DIR=$mk_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$mk_dir" || bail "initdb failed"
LOG=$UTILIX_DIR/server.log
KEYS=$UTILIX_DIR/keys
mkdir -p "$KEYS"
chmod 755 "$KEYS"
[ $is_root -eq 1 ] && chown postgres "$KEYS"

hex_of() { tr -d ' \n\r' < "$1"; }
rand_hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# write_key FILE TEXT MODE [OWNER]
write_key() {
    printf '%s\n' "$2" > "$1"
    chmod "$3" "$1"
    if [ $is_root -eq 1 ]; then chown "${4:-postgres}" "$1"; fi
}

# every key text that ever reaches a key file or a key program
ALL_SECRETS=()

KEY_A=$(hex_of "$UTILIX_DIR/master.key"); ALL_SECRETS+=("$KEY_A")
KEY_B=$(rand_hex); ALL_SECRETS+=("$KEY_B")
write_key "$KEYS/b.key" "$KEY_B" 600

sql() {     # sql DB SQL: tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1
}
sqlv() {    # sqlv DB SQL: verbose errors (SQLSTATE shown), errors do not stop
    psql -X -q -A -t -v VERBOSITY=verbose -d "$1" -c "$2" 2>&1
}

key_conf() {    # key_conf FILE COMMAND: the later lines win
    cluster_conf "utilix.master_key_file = '$1'"
    cluster_conf "utilix.master_key_command = '$2'"
}

mark=0
log_mark() { mark=$(stat -c %s "$LOG" 2>/dev/null || echo 0); }
log_new() { tail -c +$((mark + 1)) "$LOG" 2>/dev/null; }

server_running() { as_pg "$PGBIN/pg_ctl" -D "$UTILIX_DIR/data" status >/dev/null 2>&1; }

# refuses NAME SECRET REGEX...: start must fail; the new log lines must
# match every REGEX and must not contain SECRET.
refuses() {
    local name=$1 secret=$2 started=0
    shift 2
    log_mark
    if cluster_try_start; then started=1; fi
    if [ $started -eq 0 ] && ! server_running; then
        ok "$name: the server refuses to start"
    else
        not_ok "$name: the server refuses to start" "$(log_new | tail -5)"
        cluster_stop
    fi
    local text
    text=$(log_new)
    for re in "$@"; do
        like "$text" "$re" "$name: server.log says /$re/"
    done
    if [ -n "$secret" ]; then
        if grep -qiF -- "$secret" <<<"$text"; then
            not_ok "$name: server.log does not contain the key text"
        else
            ok "$name: server.log does not contain the key text"
        fi
    fi
}

starts() {  # starts NAME: the server must start
    log_mark
    if cluster_try_start && server_running; then
        ok "$1: the server starts"
    else
        not_ok "$1: the server starts" "$(log_new | tail -8)"
        bail "$1: cannot continue without a server"
    fi
}

# ---------------------------------------------------------------- key A
starts "key A from utilix.master_key_file"
like "$(log_new)" 'master key loaded from utilix\.master_key_file' "key A: server.log says where the key came from"
out=$(sql postgres "CREATE EXTENSION utilix;
                    SELECT utilix.create_tenant('acme');") || bail "setup under key A failed: $out"
TENANT=$(sql postgres "SELECT id FROM utilix.tenant WHERE name = 'acme'")
is "$(sql postgres "SELECT utilix.master_key_status()")" "ok" "key A: master_key_status() is ok"
TOKEN_A=$(sql postgres "SELECT utilix.issue_context($TENANT, 'alice', '1 hour')")
like "$TOKEN_A" '^utx1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "key A: issue_context() returns a token"
is "$(sql postgres "SELECT utilix.set_context('$TOKEN_A')")" "$TENANT" "key A: the token sets the context"
cluster_stop

# ---------------------------------------------------------------- bad key files
KEY_C=$(rand_hex); ALL_SECRETS+=("$KEY_C")
write_key "$KEYS/mode644.key" "$KEY_C" 644
key_conf "$KEYS/mode644.key" ""
refuses "key file mode 0644" "$KEY_C" \
    'FATAL' 'utilix\.master_key_file' 'mode644\.key' 'accessible by group or others' '0600'

write_key "$KEYS/mode640.key" "$KEY_C" 640
key_conf "$KEYS/mode640.key" ""
refuses "key file mode 0640" "$KEY_C" \
    'FATAL' 'utilix\.master_key_file' 'accessible by group or others'

KEY_D=$(rand_hex); ALL_SECRETS+=("$KEY_D")
if [ $is_root -eq 1 ]; then
    write_key "$KEYS/root600.key" "$KEY_D" 600 root
    key_conf "$KEYS/root600.key" ""
    refuses "key file owned by root, mode 0600" "$KEY_D" \
        'FATAL: +utilix\.master_key_file' 'root600\.key' '(could not be opened: Permission denied|not owned by the server)'

    # readable by the server, yet owned by another user: the ownership check itself
    write_key "$KEYS/root644.key" "$KEY_D" 644 root
    key_conf "$KEYS/root644.key" ""
    refuses "key file owned by root, mode 0644" "$KEY_D" \
        'FATAL: +utilix\.master_key_file' 'root644\.key' "is not owned by the server's user"
else
    skip "key file owned by root" "not running as root"
fi

SHORT=${KEY_B:0:63}; ALL_SECRETS+=("$SHORT")
write_key "$KEYS/short.key" "$SHORT" 600
key_conf "$KEYS/short.key" ""
refuses "key of 63 hex characters" "$SHORT" \
    'FATAL' 'utilix\.master_key_file' 'does not hold exactly 64 hexadecimal characters'

NONHEX=${KEY_B:0:30}zz${KEY_B:32:32}; ALL_SECRETS+=("$NONHEX")
write_key "$KEYS/nonhex.key" "$NONHEX" 600
key_conf "$KEYS/nonhex.key" ""
refuses "key of 64 characters with 'zz'" "$NONHEX" \
    'FATAL' 'utilix\.master_key_file' 'does not hold exactly 64 hexadecimal characters'

write_key "$KEYS/empty.key" "" 600
key_conf "$KEYS/empty.key" ""
refuses "empty key file" "" 'FATAL' 'utilix\.master_key_file' 'does not hold exactly 64'

key_conf "$KEYS/missing.key" ""
refuses "missing key file" "" 'FATAL' 'utilix\.master_key_file' 'missing\.key' 'No such file'

key_conf "keys/relative.key" ""
refuses "relative key file path" "" 'FATAL' 'utilix\.master_key_file' 'is not an absolute path'

# ---------------------------------------------------------------- key programs
# print_key.sh prints key A; fail_key.sh prints a key and then fails.
KEY_E=$(rand_hex); ALL_SECRETS+=("$KEY_E")
cat > "$KEYS/print_key.sh" <<EOF
#!/bin/sh
echo $KEY_A
EOF
cat > "$KEYS/fail_key.sh" <<EOF
#!/bin/sh
echo $KEY_E
exit 1
EOF
for f in print_key.sh fail_key.sh; do
    chmod 700 "$KEYS/$f"
    [ $is_root -eq 1 ] && chown postgres "$KEYS/$f"
done

key_conf "$UTILIX_DIR/master.key" "$KEYS/print_key.sh"
refuses "both master_key_file and master_key_command set" "$KEY_A" \
    'FATAL' 'utilix\.master_key_file and utilix\.master_key_command are both set'

key_conf "" "$KEYS/fail_key.sh"
refuses "key program exiting 1" "$KEY_E" \
    'FATAL' 'utilix\.master_key_command' 'fail_key\.sh' 'failed with status 1'

key_conf "" "print_key.sh"
refuses "key program with a relative path" "" \
    'FATAL' 'utilix\.master_key_command' 'absolute path'

# ---------------------------------------------------------------- key B: mismatch
key_conf "$KEYS/b.key" ""
starts "key B (not the database's key)"
is "$(sql postgres "SELECT utilix.master_key_status()")" "mismatch" "key B: master_key_status() is 'mismatch'"
out=$(sqlv postgres "SELECT utilix.issue_context($TENANT, 'alice', '5 minutes')")
like "$out" 'ERROR: +55000: the master key does not match this database' "key B: issue_context() fails with 55000 'the master key does not match this database'"
unlike "$out" 'utx1\.' "key B: issue_context() returns no token"
out=$(sqlv postgres "SELECT utilix.set_context('$TOKEN_A')")
like "$out" 'ERROR: +(42501|55000)' "key B: set_context() with a token minted under key A is refused"
unlike "$out" "^$TENANT\$" "key B: set_context() with key A's token yields no tenant"
out=$(sqlv postgres "SET utilix.context = '$TOKEN_A'; SELECT utilix.current_tenant()")
like "$out" 'ERROR: +(42501|55000)' "key B: SET utilix.context to key A's token is refused"
unlike "$out" "^$TENANT\$" "key B: no tenant context after SET with key A's token"
cluster_stop

# ---------------------------------------------------------------- key A from a program
key_conf "" "$KEYS/print_key.sh"
starts "key A from utilix.master_key_command"
like "$(log_new)" 'master key loaded from utilix\.master_key_command' "key program: server.log says where the key came from"
is "$(sql postgres "SELECT utilix.master_key_status()")" "ok" "key program: master_key_status() is ok again"
is "$(sql postgres "SELECT utilix.set_context('$TOKEN_A')")" "$TENANT" "key program: the token minted under key A is accepted again"
cluster_stop

# ---------------------------------------------------------------- no key at all
key_conf "" ""
starts "no master key configured"
like "$(log_new)" 'no master key is configured' "no key: server.log says key functions are disabled"
out=$(sql postgres "CREATE DATABASE nokey") || not_ok "no key: create database" "$out"
out=$(sql nokey "CREATE EXTENSION utilix")
is "$out" "" "no key: CREATE EXTENSION utilix works"
is "$(sql nokey "SELECT utilix.master_key_status()")" "not configured" "no key: master_key_status() is 'not configured'"
T2=$(sql nokey "SELECT utilix.create_tenant('globex')")
like "$T2" '^[0-9]+$' "no key: create_tenant() works"
out=$(sql nokey "CREATE TABLE doc (tenant_id bigint, id int, body text, PRIMARY KEY (tenant_id, id));
                 SELECT 'protected' FROM (SELECT utilix.protect('doc')) s;
                 SELECT rls_enabled AND rls_forced AND tenant_policy FROM utilix.protected_tables WHERE relname = 'doc'")
is "$out" "protected
t" "no key: protect() works"
out=$(sqlv nokey "SELECT utilix.issue_context($T2, 'bob', '5 minutes')")
like "$out" 'ERROR: +55000: utilix has no master key' "no key: issue_context() fails with 55000"
like "$out" 'HINT: .*utilix\.master_key_file' "no key: the hint names utilix.master_key_file"
unlike "$out" 'utx1\.' "no key: no token is returned"
is "$(sql nokey "SELECT count(*) FROM doc")" "0" "no key: superuser still reads the (empty) protected table"
out=$(sqlv nokey "CREATE ROLE nokey_app LOGIN; GRANT SELECT ON doc TO nokey_app;
                  SET ROLE nokey_app; SELECT count(*) FROM doc")
like "$out" 'ERROR: +42501' "no key: without a context a normal role is refused (fails closed)"
out=$(sqlv postgres "SELECT utilix.set_context('$TOKEN_A')")
like "$out" 'ERROR: +55000: utilix has no master key' "no key: a token cannot be verified (55000)"
out=$(sqlv postgres "SELECT utilix.issue_context($TENANT, 'alice', '5 minutes')")
like "$out" 'ERROR: +55000' "no key: issue_context() fails in the database created with key A"
cluster_stop

# ---------------------------------------------------------------- no key in any log
logs=("$UTILIX_DIR/server.log" "$UTILIX_DIR/initdb.log")
names=(A B C D 63-char non-hex E)
for i in "${!ALL_SECRETS[@]}"; do
    lacks "${logs[@]}" -- "${ALL_SECRETS[$i]}" "no server log contains key ${names[$i]}'s text"
done

done_testing
