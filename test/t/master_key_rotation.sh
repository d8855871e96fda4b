#!/usr/bin/env bash
# Master-key rotation on a cluster of its own: with the new key in
# utilix.master_key_file and the old one in utilix.previous_master_key_file,
# data sealed under the old key stays readable, utilix.rewrap_keys() moves
# every data key and the key-check value to the new key, and afterwards the
# server runs with the new key alone.  A malformed previous key stops the
# server; no key ever reaches the log.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

rk_dir=$(mktemp -d /tmp/utilix-rotation.XXXXXX)
cleanup() {
    UTILIX_DIR=$rk_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$rk_dir" || bail "initdb failed"
cluster_start || bail "the server does not start"
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d postgres -c "$1" 2>&1; }
qv() { psql -X -q -A -t -v VERBOSITY=verbose -d postgres -c "$1" 2>&1; }

q "CREATE EXTENSION utilix" >/dev/null || bail "CREATE EXTENSION failed"
T=$(q "SELECT utilix.create_tenant('rot')")
q "CREATE TABLE rt (tenant_id bigint NOT NULL, id int NOT NULL, s text, PRIMARY KEY (tenant_id, id))" >/dev/null
q "SELECT utilix.protect('rt')" >/dev/null
q "INSERT INTO rt VALUES ($T, 1, 'rotation-plain-one'), ($T, 2, 'rotation-plain-two')" >/dev/null
q "SELECT utilix.encrypt_column('rt', 's')" >/dev/null || bail "encrypt_column failed"
before=$(q "SELECT string_agg(s::text, ',' ORDER BY id) FROM rt")
wrapped_before=$(q "SELECT string_agg(encode(wrapped, 'hex'), ',' ORDER BY version) FROM utilix.data_key WHERE tenant_id = $T")
is "$(q "SELECT utilix.master_key_status()")" "ok" "the database runs with key A"
cluster_stop

OLD=$(tr -d '\n' < "$rk_dir/master.key")
cp "$rk_dir/master.key" "$rk_dir/old.key"
[ "$(id -u)" -eq 0 ] && chown postgres "$rk_dir/old.key"
chmod 600 "$rk_dir/old.key"
new_key "$rk_dir/master.key"
NEW=$(tr -d '\n' < "$rk_dir/master.key")

# a malformed previous key stops the server, naming the setting
printf 'not a key\n' > "$rk_dir/bad.key"
[ "$(id -u)" -eq 0 ] && chown postgres "$rk_dir/bad.key"
chmod 600 "$rk_dir/bad.key"
cluster_conf "utilix.previous_master_key_file = '$rk_dir/bad.key'"
if cluster_try_start; then
    not_ok "a malformed previous key stops the server"
    cluster_stop
else
    ok "a malformed previous key stops the server"
fi
like "$(cat "$rk_dir/server.log")" "utilix\.previous_master_key_file.*does not hold exactly 64" \
    "the log names utilix.previous_master_key_file and says why"

cluster_conf "utilix.previous_master_key_file = '$rk_dir/old.key'"
cluster_start || bail "the server does not start with the new and the previous key"
is "$(q "SELECT utilix.master_key_status()")" "rotation pending" "new key + previous key: status 'rotation pending'"
is "$(q "SELECT string_agg(utilix._plain(s), ',' ORDER BY id) FROM rt")" "rotation-plain-one,rotation-plain-two" \
    "values sealed under data keys wrapped by the old key still decrypt"
is "$(q "SELECT utilix.rewrap_keys()")" "2" "rewrap_keys() re-wraps the tenant's two keys (data key and blind-index root)"
wrapped_after=$(q "SELECT string_agg(encode(wrapped, 'hex'), ',' ORDER BY version) FROM utilix.data_key WHERE tenant_id = $T")
if [ -n "$wrapped_after" ] && [ "$wrapped_after" != "$wrapped_before" ]; then
    ok "the stored wrapped keys changed"
else
    not_ok "the stored wrapped keys changed" "before: $wrapped_before after: $wrapped_after"
fi
is "$(q "SELECT utilix.master_key_status()")" "ok" "after rewrap_keys() the key-check value is the new key's"
is "$(q "SELECT string_agg(s::text, ',' ORDER BY id) FROM rt")" "$before" "the ciphertext of the rows did not change (only keys were re-wrapped)"
cluster_stop

cluster_conf "utilix.previous_master_key_file = ''"
cluster_start || bail "the server does not start with the new key alone"
is "$(q "SELECT utilix.master_key_status()")" "ok" "with the new key alone: status ok"
is "$(q "SELECT string_agg(utilix._plain(s), ',' ORDER BY id) FROM rt")" "rotation-plain-one,rotation-plain-two" \
    "with the new key alone, every value still decrypts"
q "INSERT INTO rt VALUES ($T, 3, 'rotation-plain-three')" >/dev/null
is "$(q "SELECT utilix._plain(s) FROM rt WHERE id = 3")" "rotation-plain-three" "new values are sealed and read under the new key"
cluster_stop

# back to the old key alone: the database now belongs to the new key
cp "$rk_dir/old.key" "$rk_dir/master.key"
cluster_start || bail "the server does not start with the old key"
is "$(q "SELECT utilix.master_key_status()")" "mismatch" "with the old key alone: mismatch"
like "$(qv "SELECT utilix._plain(s) FROM rt WHERE id = 1")" "55000.*the master key does not match this database" \
    "with the old key alone, decryption fails with the mismatch error, not garbage"
cluster_stop

lacks "$rk_dir/server.log" -- "$OLD" "server.log does not contain the old key"
lacks "$rk_dir/server.log" -- "$NEW" "server.log does not contain the new key"
done_testing
