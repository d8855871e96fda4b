#!/usr/bin/env bash
# test/fuzz/cluster_seeds.sh: writes the seeds that come from a real server
# (test/fuzz/corpus/*/real-*): context tokens from utilix.issue_context(),
# armoured values of encrypted columns (with and without a blind index) and
# a password hash from utilix._hash_password(), made in a throwaway cluster
# (test/cluster.sh) with the installed utilix.  The tokens are signed with
# that cluster's key, not the fuzzers' key: as text they are refused at the
# MAC, so their payloads are also written as signed-by-the-harness seeds.
# Run once when a format changes; the output is committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${UTILIX_SEEDS_IN_CLUSTER:-}" ]; then
    UTILIX_SEEDS_IN_CLUSTER=1 exec "$top/test/cluster.sh" run "$0"
fi

q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d postgres "$@"; }

# base64url (unpadded) to bytes
b64url_decode() {
    local s=$1
    while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done
    printf '%s' "$s" | basenc --base64url -d
}

q -c "CREATE EXTENSION utilix" >/dev/null
t=$(q -c "SELECT utilix.create_tenant('acme', 'JP')")
q >/dev/null <<SQL
CREATE TABLE cust (tenant_id bigint NOT NULL, id int, name text, email text,
                   PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('cust');
SELECT utilix.encrypt_column('cust', 'name');
SELECT utilix.encrypt_column('cust', 'email', searchable => true);
SQL
tok=$(q -c "SELECT utilix.issue_context($t, 'alice@acme', '10 minutes', '{read,write}')")
tokens=("$tok"
        "$(q -c "SELECT utilix.issue_context($t, 'bob@acme', '1 hour', '{read,write,admin,audit}', 'secret')")"
        "$(q -c "SELECT utilix.issue_context($t, 'carol@acme', '1 second', '{}')")")
q >/dev/null <<SQL
BEGIN;
SELECT utilix.set_context('$tok');
INSERT INTO cust VALUES ($t, 1, 'Hanako Yamada', 'hanako@example.jp'),
                        ($t, 2, '', 'x@y'),
                        ($t, 3, repeat('long value ', 40), NULL);
COMMIT;
SQL
# as the superuser without a context: the armour, never the plaintext
mapfile -t armours < <(q -c "SELECT name::text FROM cust UNION ALL SELECT email::text FROM cust WHERE email IS NOT NULL")
hash=$(q -c "SELECT utilix._hash_password('Correct-Horse-Battery-9')")

rm -f "$here"/corpus/*/real-*
i=0
for t in "${tokens[@]}"; do
    i=$((i + 1))
    payload=${t#utx1.}
    payload=${payload%%.*}
    mac=${t##*.}
    { printf '\x00'; printf '%s' "$t"; } > "$here/corpus/token/real-$i-text"
    { printf '\x01'; b64url_decode "$payload"; } > "$here/corpus/token/real-$i-payload"
    printf '%s' "$payload" > "$here/corpus/b64url/real-token-$i-payload"
    printf '%s' "$mac" > "$here/corpus/b64url/real-token-$i-mac"
done
i=0
for a in "${armours[@]}"; do
    i=$((i + 1))
    printf '%s' "$a" > "$here/corpus/armour/real-$i"
    b64url_decode "${a#utxe1:}" > "$here/corpus/envelope/real-$i"
done
printf '%s' "${armours[0]#utxe1:}" > "$here/corpus/b64url/real-armour"
printf '%s' "$hash" > "$here/corpus/pwhash/real-1"
echo "cluster_seeds: wrote ${#tokens[@]} tokens, ${#armours[@]} armoured values, 1 password hash"
