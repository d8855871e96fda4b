#!/usr/bin/env bash
# Concurrency, on a cluster of its own (utilix.database = 'cc',
# utilix.purge_naptime = 1, so that the worker applies retention too).
# Four tenants, each with a token (in table tok) and a user of its own
# (created by a tenant admin context, first login and password change done).
# Two protected tables:
#   cust   (tenant_id, id, name, email, balance, updated_at): name encrypted,
#          email encrypted and searchable; 200 customers per tenant.  Every
#          name is written as 't<tenant>-c<id>-<n>', so that a value that
#          decrypts to another row's or tenant's text is caught;
#   events (tenant_id, id, ts, payload): payload encrypted, retention
#          '30 minutes' by ts; half of what is inserted is already expired.
# Load: pgbench -n -c 6 -j 2 -T $CC_SECONDS (60) as the application role, with
# weighted scripts (@):
#   r_ctx       BEGIN; set_context(token of a random tenant); a lookup by id
#               and an aggregate over the tenant's customers; END
#   r_local_N   (one per tenant, its token from -D) BEGIN; SET LOCAL
#               utilix.context = token; a lookup through the blind index; END
#   w_enc       BEGIN; set_context; UPDATE one customer's name (encrypted)
#               and balance + 1; END
#   w_plain     BEGIN; set_context; UPDATE one customer's balance + 1 and
#               updated_at (plain columns only); END
#   ins         BEGIN; set_context; INSERT an event (encrypted payload); END
#   login       utilix.login() of a random tenant's user (no client
#               address), then BEGIN; set_context(that token); a count; END
# meanwhile an operator session in a loop: rotate_tenant_key(a tenant), wait
# (as the README says) until no transaction older than the new key is open,
# reencrypt(tenant, 200) until 0, run_retention('events'); and the worker
# applies the same policy every second.  (Each round's last reencrypt call,
# the one that retires the old key, re-seals only events, which the
# application never updates: an application UPDATE of a row that this call
# re-sealed deadlocks with its LOCK TABLE ... IN SHARE MODE.)
# Then, everything stopped, the invariants:
#  (a) no row visible across tenants: through each tenant's context, no row
#      of another tenant; the per-tenant counts add up to the superuser's;
#  (b) every ciphertext is sealed (superuser) and decrypts, for its own
#      tenant, to its own row's text; no value is under a retired key;
#  (c) verify_access_log() is ok for every chain;
#  (d) counts add up: balances sum to the committed updates; events
#      inserted = events left + rows removed by purge runs; the access log
#      has, for the application role, one record per statement of each
#      transaction pgbench reports (select, update, insert, login), all ok;
#      nothing lost;
#  (e) no ERROR, FATAL, PANIC or WARNING in the server log (but the
#      worker's FATAL for database cc before it is created), no failed
#      pgbench transaction, no operator error, and the server never crashed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

CC_SECONDS=${CC_SECONDS:-60}
cc_dir=$(mktemp -d /tmp/utilix-concurrency.XXXXXX)
chmod 755 "$cc_dir"
op_pid=""
cleanup() {
    [ -n "$op_pid" ] && kill "$op_pid" 2>/dev/null
    UTILIX_DIR=$cc_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$cc_dir" || bail "initdb failed"
cluster_conf "utilix.database = 'cc'"
cluster_conf "utilix.purge_naptime = 1"
LOG=$UTILIX_DIR/server.log
DB=cc
APP=cc_app
OPS=cc_ops
NT=4
NCUST=200
export PGOPTIONS="-c client_min_messages=warning"

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
qa() {      # qa TOKEN SQL: as the application role, the token its session's context
    PGOPTIONS="$PGOPTIONS -c utilix.context=$1" psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" -c "$2" 2>&1
}
tenant() { q "SELECT tenant_id FROM tok WHERE n = $1"; }
tokn() { q "SELECT token FROM tok WHERE n = $1"; }

t_start=$SECONDS
cluster_start || bail "the server does not start: $(tail -5 "$LOG")"
psql -X -q -d postgres -c "CREATE DATABASE $DB" || bail "createdb failed"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE EXTENSION utilix;
-- test only: cheap password hashes, so that logins under load are fast
ALTER DATABASE $DB SET utilix.scrypt_log2n = 12;
CREATE ROLE $APP LOGIN;
CREATE ROLE $OPS LOGIN IN ROLE utilix_operator, pg_read_all_stats;
CREATE TABLE cust (tenant_id bigint NOT NULL, id int NOT NULL, name text, email text,
                   balance bigint NOT NULL DEFAULT 0, updated_at timestamptz, PRIMARY KEY (tenant_id, id));
CREATE TABLE events (tenant_id bigint NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, ts timestamptz NOT NULL,
                     payload text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('cust'), utilix.protect('events');
SELECT utilix.encrypt_column('cust', 'name'), utilix.encrypt_column('cust', 'email', searchable => true),
       utilix.encrypt_column('events', 'payload');
SELECT utilix.set_retention('events', '30 minutes', 'ts');
GRANT SELECT, INSERT, UPDATE ON cust, events TO $APP;
CREATE TABLE tok (n int PRIMARY KEY, tenant_id bigint NOT NULL, token text NOT NULL);
INSERT INTO tok SELECT g, utilix.create_tenant('cc-t' || g), '' FROM generate_series(1, $NT) g;
UPDATE tok SET token = utilix.issue_context(tenant_id, 'app@t' || n, '2 hours', '{read,write}');
GRANT SELECT ON tok TO $APP;
SQL
) || bail "set-up failed: $out"
for n in $(seq 1 $NT); do
    t=$(tenant "$n")
    tok=$(tokn "$n")
    adm=$(q "SELECT utilix.issue_context($t, 'provisioner@t$n', '10 minutes', '{admin}')")
    out=$(qa "$adm" "SELECT utilix.create_user('user@t$n', 'Initial-Pass-$n-0000', '{read,write}')") || bail "create_user failed: $out"
    first=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.login('cc-t$n', 'user@t$n', 'Initial-Pass-$n-0000')" 2>&1)
    [[ "$first" == utx1.* ]] || bail "first login of user@t$n failed: $first"
    out=$(qa "$first" "SELECT utilix.change_password('Initial-Pass-$n-0000', 'Load-Test-Pass-$n-4242') IS NOT NULL") || bail "change_password failed: $out"
    [ "$out" == t ] || bail "change_password of user@t$n returned NULL"
    out=$(qa "$tok" "INSERT INTO cust (id, name, email) SELECT g, format('t%s-c%s-0', $t, g), format('c%s@t$n.example', g)
                       FROM generate_series(1, $NCUST) g;
                     INSERT INTO events (ts, payload) SELECT now() - make_interval(secs => g * 7), format('t%s-e%s', $t, g)
                       FROM generate_series(1, 500) g") || bail "loading tenant $n failed: $out"
done
tot_cust0=$(q "SELECT count(*) FROM cust")
tot_ev0=$(q "SELECT count(*) FROM events")
is "$tot_cust0|$tot_ev0" "$((NT * NCUST))|$((NT * 500))" "set-up: $NT tenants, $NCUST customers and 500 events each, written through their contexts"
got=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.login('cc-t1', 'user@t1', 'Load-Test-Pass-1-4242') LIKE 'utx1.%'" 2>&1)
is "$got" "t" "set-up: a user logs in with its new password, without a client address"

# ------------------------------------------------------------------ pgbench scripts
S=$cc_dir/scripts
mkdir -p "$S"
cat > "$S/r_ctx.sql" <<'SQL'
\set n random(1, 4)
\set id random(1, 200)
BEGIN;
SELECT utilix.set_context(token) FROM tok WHERE n = :n;
SELECT id, name, email, balance FROM cust WHERE id = :id;
SELECT count(*), sum(balance), max(name) FROM cust;
END;
SQL
for n in $(seq 1 $NT); do
    cat > "$S/r_local_$n.sql" <<SQL
\\set id random(1, $NCUST)
BEGIN;
SET LOCAL utilix.context = ':tok$n';
SELECT id, name FROM cust WHERE email OPERATOR(utilix.=) ('c' || :id || '@t$n.example');
END;
SQL
done
cat > "$S/w_enc.sql" <<'SQL'
\set n random(1, 4)
\set id random(1, 200)
\set v random(1, 1000000000)
BEGIN;
SELECT utilix.set_context(token) FROM tok WHERE n = :n;
UPDATE cust SET name = format('t%s-c%s-%s', tenant_id, id, :v), balance = balance + 1 WHERE id = :id;
END;
SQL
cat > "$S/w_plain.sql" <<'SQL'
\set n random(1, 4)
\set id random(1, 200)
BEGIN;
SELECT utilix.set_context(token) FROM tok WHERE n = :n;
UPDATE cust SET balance = balance + 1, updated_at = now() WHERE id = :id;
END;
SQL
cat > "$S/ins.sql" <<'SQL'
\set n random(1, 4)
\set age random(0, 3600)
BEGIN;
SELECT utilix.set_context(token) FROM tok WHERE n = :n;
INSERT INTO events (ts, payload) VALUES (now() - make_interval(secs => :age), format('t%s-ev-%s', utilix.current_tenant(), :age));
END;
SQL
cat > "$S/login.sql" <<'SQL'
\set n random(1, 4)
SELECT utilix.login('cc-t' || :n, 'user@t' || :n, 'Load-Test-Pass-' || :n || '-4242') AS ltok \gset
BEGIN;
SELECT utilix.set_context(':ltok');
SELECT count(*) FROM cust;
END;
SQL
chmod 644 "$S"/*.sql

# ------------------------------------------------------------------ the operator's loop
# operator_loop: until $cc_dir/stop exists; prints one line per round:
# "round TENANT VERSION RESEALED RETENTION_ROWS"; errors go to op.err
operator_loop() {
    local r=0 n t v resealed got
    while [ ! -e "$cc_dir/stop" ]; do
        r=$((r + 1))
        n=$(( (r % NT) + 1 ))
        t=$(q "SELECT tenant_id FROM tok WHERE n = $n")
        v=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OPS" -d "$DB" -c "SELECT utilix.rotate_tenant_key($t)" 2>>"$cc_dir/op.err") || { echo "rotate failed" >>"$cc_dir/op.err"; continue; }
        # README: make the last reencrypt call only when no transaction that
        # started before the rotation is still open
        for _ in $(seq 1 100); do
            got=$(psql -X -q -A -t -U "$OPS" -d "$DB" -c "
                SELECT count(*) FROM pg_stat_activity a
                 WHERE a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
                   AND a.xact_start < (SELECT created_at FROM utilix.data_keys WHERE tenant_id = $t AND version = $v)" 2>>"$cc_dir/op.err")
            [ "$got" == 0 ] && break
            sleep 0.02
        done
        resealed=0
        for _ in $(seq 1 200); do
            got=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OPS" -d "$DB" -c "SELECT utilix.reencrypt($t, 200)" 2>>"$cc_dir/op.err") ||
                { echo "reencrypt failed (tenant $t)" >>"$cc_dir/op.err"; break; }
            resealed=$((resealed + got))
            [ "$got" == 0 ] && break
        done
        got=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OPS" -d "$DB" -c "SELECT rows_removed FROM utilix.run_retention('events')" 2>>"$cc_dir/op.err") ||
            echo "run_retention failed" >>"$cc_dir/op.err"
        echo "$r $t $v $resealed $got"
        sleep 0.2
    done
}
: >"$cc_dir/op.err"
operator_loop >"$cc_dir/op.out" &
op_pid=$!

# ------------------------------------------------------------------ the load
args=(-f "$S/r_ctx.sql@30" -f "$S/w_enc.sql@15" -f "$S/w_plain.sql@15" -f "$S/ins.sql@12" -f "$S/login.sql@2")
for n in $(seq 1 $NT); do args+=(-f "$S/r_local_$n.sql@4" -D "tok$n=$(tokn "$n")"); done
diag "pgbench -n -c 6 -j 2 -T $CC_SECONDS, operator loop running (set-up took $((SECONDS - t_start)) s)"
t0=$SECONDS
pgbench -n -c 6 -j 2 -T "$CC_SECONDS" -U "$APP" "${args[@]}" "$DB" >"$cc_dir/pgbench.out" 2>&1
pg_rc=$?
diag "pgbench ran $((SECONDS - t0)) s (exit $pg_rc)"
touch "$cc_dir/stop"
wait "$op_pid"
op_pid=""
rounds=$(wc -l <"$cc_dir/op.out")
diag "operator: $rounds rounds, $(awk '{ s += $4 } END { print s + 0 }' "$cc_dir/op.out") values re-sealed, last: $(tail -1 "$cc_dir/op.out")"
# the policy goes, so that the worker removes nothing while the counts are taken
q "SELECT utilix.drop_retention('events')" >/dev/null
sleep 1.5

# per-script transactions, in the order of the -f options
mapfile -t per < <(awk '/^SQL script [0-9]+:/ { f = $4 } / - [0-9]+ transactions \(/ { print f, $2 }' "$cc_dir/pgbench.out")
declare -A X=()
for line in "${per[@]}"; do
    f=$(basename "${line% *}" .sql); f=${f%%@*}
    X[$f]=$(( ${X[$f]:-0} + ${line##* } ))
done
x_local=0
for n in $(seq 1 $NT); do x_local=$((x_local + ${X[r_local_$n]:-0})); done
total=$(awk '/^number of transactions actually processed:/ { print $6 }' "$cc_dir/pgbench.out")
failed=$(awk '/^number of failed transactions:/ { print $5 }' "$cc_dir/pgbench.out")
diag "$(grep -E '^(number of|tps|latency average)' "$cc_dir/pgbench.out")"
diag "transactions: r_ctx ${X[r_ctx]:-?}, r_local $x_local, w_enc ${X[w_enc]:-?}, w_plain ${X[w_plain]:-?}, ins ${X[ins]:-?}, login ${X[login]:-?}"
is "$pg_rc|${failed:-?}" "0|0" "pgbench ran to its end, no failed transaction"
# pgbench's per-script counts leave out the transactions that were under way
# when -T ran out (at most one per client); its total and the database count
# them.  CUT is their number: what the database shows may exceed what the
# per-script counts say by that many transactions, and no more.
x_sum=$(( ${X[r_ctx]:-0} + x_local + ${X[w_enc]:-0} + ${X[w_plain]:-0} + ${X[ins]:-0} + ${X[login]:-0} ))
CUT=$(( ${total:-0} - x_sum ))
diag "transactions counted in pgbench's total but in no script's: $CUT"
in_range() {    # in_range GOT WANT [PER]: WANT <= GOT <= WANT + CUT * PER
    [ "$1" -ge "$2" ] && [ "$1" -le $(( $2 + CUT * ${3:-1} )) ]
}
[ "${total:-0}" -gt 1000 ] && [ "$CUT" -ge 0 ] && [ "$CUT" -le 6 ] &&
    ok "pgbench committed $total transactions, every script ran" ||
    not_ok "pgbench committed its transactions, every script ran" "$(tail -40 "$cc_dir/pgbench.out")"
for f in r_ctx w_enc w_plain ins login; do
    [ "${X[$f]:-0}" -gt 0 ] || not_ok "script $f ran" "no transactions"
done
[ "$rounds" -ge 5 ] && ok "the operator rotated keys, re-encrypted and ran retention $rounds times during the load" ||
    not_ok "the operator rotated keys, re-encrypted and ran retention during the load" "rounds: $rounds"
is "$(cat "$cc_dir/op.err")" "" "no operator call failed"

# ------------------------------------------------------------------ (a) isolation
sum_c=0; sum_e=0; cross=""; readable=""
for n in $(seq 1 $NT); do
    t=$(tenant "$n"); tok=$(tokn "$n")
    read -r c cx e ex < <(qa "$tok" "SELECT (SELECT count(*) FROM cust), (SELECT count(*) FROM cust WHERE tenant_id <> $t),
                                            (SELECT count(*) FROM events), (SELECT count(*) FROM events WHERE tenant_id <> $t)" | tr '|' ' ')
    sum_c=$((sum_c + ${c:-0})); sum_e=$((sum_e + ${e:-0}))
    cross+="$cx$ex"
    # (b) every value of the tenant decrypts to its own row's text
    readable+="$(qa "$tok" "SELECT count(*) FILTER (WHERE name::text ~ ('^t' || tenant_id || '-c' || id || '-[0-9]+\$')
                                                     AND email::text = format('c%s@t$n.example', id)) = count(*)
                              FROM cust")"
    readable+="$(qa "$tok" "SELECT count(*) FILTER (WHERE payload::text ~ ('^t' || tenant_id || '-e')) = count(*) FROM events")"
done
is "$cross" "$(printf '00%.0s' $(seq 1 $NT))" "(a) through each tenant's context, no row of another tenant is visible (cust, events)"
is "$sum_c|$sum_e" "$(q "SELECT count(*) FROM cust")|$(q "SELECT count(*) FROM events")" \
    "(a) the tenants' counts add up to the superuser's ($sum_c customers, $sum_e events)"
is "$sum_c" "$((NT * NCUST))" "(a) no customer appeared or disappeared"

# ------------------------------------------------------------------ (b) ciphertext
is "$readable" "$(printf 'tt%.0s' $(seq 1 $NT))" \
    "(b) each tenant decrypts every name, email and payload of its rows, each to its own row's text"
is "$(q "SELECT count(*) FILTER (WHERE name IS NOT NULL AND NOT utilix.is_sealed(name)) + count(*) FILTER (WHERE email IS NOT NULL AND NOT utilix.is_sealed(email))
         + (SELECT count(*) FROM events WHERE payload IS NOT NULL AND NOT utilix.is_sealed(payload)) FROM cust")" "0" \
    "(b) as the superuser, every non-null value is sealed"
is "$(q "SELECT count(*) FROM (SELECT tenant_id, utilix.key_version(name) v FROM cust UNION ALL SELECT tenant_id, utilix.key_version(email) FROM cust
                               UNION ALL SELECT tenant_id, utilix.key_version(payload) FROM events) x
          JOIN utilix.data_keys k ON k.tenant_id = x.tenant_id AND k.version = x.v WHERE k.state NOT IN ('active', 'retiring')")" "0" \
    "(b) no value is sealed under a retired or destroyed key"
diag "data keys: $(q "SELECT string_agg(state || ' ' || n, ', ') FROM (SELECT state, count(*) n FROM utilix.data_keys GROUP BY 1) s")"
q "SELECT utilix.access_log_flush(60000)" >/dev/null
for _ in $(seq 1 60); do
    read -r qa_ sp ld < <(q "SELECT queued_all, spilled, loaded FROM utilix.access_log_status" | tr '|' ' ')
    [ "${qa_:-1}" == 0 ] && [ "${ld:-0}" -ge "${sp:-0}" ] && break
    q "SELECT count(*) FROM (SELECT 1 FROM cust LIMIT 1) x" >/dev/null   # starts a writer for any spill file left
    sleep 0.5
done

# ------------------------------------------------------------------ (c) the access log
is "$(q "SELECT bool_and(ok) AND count(*) > 0 FROM utilix.verify_access_log()")" "t" "(c) verify_access_log(): every chain is intact"

# ------------------------------------------------------------------ (d) counts
got=$(q "SELECT sum(balance) FROM cust")
in_range "$got" "$(( ${X[w_enc]:-0} + ${X[w_plain]:-0} ))" &&
    ok "(d) the balances add up to the committed updates ($got; w_enc + w_plain: no update lost or done twice)" ||
    not_ok "(d) the balances add up to the committed updates" "sum(balance) $got, w_enc + w_plain $(( ${X[w_enc]:-0} + ${X[w_plain]:-0} ))"
removed=$(q "SELECT coalesce(sum(rows_removed), 0) FROM utilix.purge_runs WHERE kind = 'retention' AND table_name = 'public.events'")
in_range "$(( sum_e + removed ))" "$(( tot_ev0 + ${X[ins]:-0} ))" &&
    ok "(d) events inserted ($tot_ev0 + ${X[ins]:-0}) = events left ($sum_e) + rows removed by retention runs ($removed)" ||
    not_ok "(d) events inserted = events left + rows removed by retention runs" \
        "inserted $tot_ev0 + ${X[ins]:-0}, left $sum_e, removed $removed"
# (a run may end 'partial': rows that the operator's re-encryption or the
# other retention run held at that moment were left for the next run)
is "$(q "SELECT count(*) FROM utilix.purge_runs WHERE table_name = 'public.events' AND outcome NOT IN ('ok', 'partial', 'running')")" "0" "(d) no retention run failed"
want_select=$(( 2 * ${X[r_ctx]:-0} + x_local + ${X[login]:-0} ))
want_update=$(( ${X[w_enc]:-0} + ${X[w_plain]:-0} ))
want_insert=${X[ins]:-0}
want_login=${X[login]:-0}
read -r r_sel r_upd r_ins r_log r_other r_bad < <(q "
    SELECT count(*) FILTER (WHERE kind = 'select'), count(*) FILTER (WHERE kind = 'update'), count(*) FILTER (WHERE kind = 'insert'),
           count(*) FILTER (WHERE kind = 'login'), count(*) FILTER (WHERE kind NOT IN ('select', 'update', 'insert', 'login')),
           count(*) FILTER (WHERE outcome <> 'ok')
      FROM utilix.access_log WHERE session_role = '$APP' AND application_name = 'pgbench'" | tr '|' ' ')
diag "records of the application role: select $r_sel (want $want_select), update $r_upd (want $want_update), insert $r_ins (want $want_insert), login $r_log (want $want_login), other $r_other, not ok $r_bad"
# each cut-off transaction made at most two of these records
in_range "$r_sel" "$want_select" 2 && in_range "$r_upd" "$want_update" && in_range "$r_ins" "$want_insert" && in_range "$r_log" "$want_login" &&
    [ $(( r_sel + r_upd + r_ins + r_log - want_select - want_update - want_insert - want_login )) -le $(( 2 * CUT )) ] &&
    ok "(d) the access log has a record for every statement of every committed pgbench transaction (select, update, insert, login)" ||
    not_ok "(d) the access log has a record for every statement of every committed pgbench transaction" \
        "select $r_sel/$want_select update $r_upd/$want_update insert $r_ins/$want_insert login $r_log/$want_login"
is "$r_other|$r_bad" "0|0" "(d) no other kind of record, none denied or failed"
read -r l_log l_sel < <(q "SELECT count(*) FILTER (WHERE kind = 'login' AND app_user = 'user@t' || n), count(*) FILTER (WHERE kind = 'select' AND app_user = 'user@t' || n)
           FROM utilix.access_log a JOIN tok USING (tenant_id) WHERE a.session_role = '$APP' AND a.application_name = 'pgbench'" | tr '|' ' ')
in_range "$l_log" "$want_login" && in_range "$l_sel" "$want_login" &&
    ok "(d) each login is recorded for its user and tenant, and so is the read made with the token it returned" ||
    not_ok "(d) each login is recorded for its user and tenant, and so is the read made with the token it returned" "logins $l_log, reads $l_sel, want $want_login"
is "$(q "SELECT count(*) - count(DISTINCT record_id) FROM utilix.access_log")" "0" "(d) no record is in the log twice"
read -r lost qall < <(q "SELECT lost, queued_all FROM utilix.access_log_status" | tr '|' ' ')
is "$lost|$qall" "0|0" "(d) access_log_status: nothing lost, the queue is empty"
diag "access_log_status: $(q "SELECT format('written %s, spilled %s, loaded %s, overflow_waits %s', written, spilled, loaded, overflow_waits) FROM utilix.access_log_status")"

# ------------------------------------------------------------------ (e) the server log
# the worker tries database cc before it is created (and retries): expected
errs=$(grep -E '(ERROR|FATAL|PANIC):' "$LOG" | grep -v 'FATAL:  database "cc" does not exist')
is "$(printf '%s' "$errs" | grep -c .)" "0" "(e) no ERROR, FATAL or PANIC in the server log" 
[ -n "$errs" ] && diag "$(printf '%s' "$errs" | sort | uniq -c | sort -rn | head -10 | cut -c1-300)"
is "$(grep -cE 'terminated by signal|server process .* exited with exit code|TRAP:|all server processes terminated' "$LOG")" "0" \
    "(e) the server never crashed (no process terminated by a signal, no restart)"
is "$(grep -c 'WARNING:' "$LOG")" "0" "(e) no WARNING either (no failed login)"
diag "concurrency.sh took $((SECONDS - t_start)) s"

done_testing
