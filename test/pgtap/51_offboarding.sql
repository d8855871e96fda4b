-- 51_offboarding: tenant termination, export and purge (CLD.8.1.5, 12.3.1).
-- terminate_tenant stops the tenant's contexts at once (tokens already
-- issued, and a context already set); export_tenant and export_manifest
-- refuse a tenant terminated in the same transaction (the export itself:
-- test/t/export_trace.sh); cancel_termination within the grace
-- period; purge_due_tenants removes every row of a due tenant in every
-- protected table (the tenant's own list partition is dropped), its users
-- and keys (a saved ciphertext can no longer be decrypted), leaves other
-- tenants intact and writes a hash-chained deletion certificate whose
-- verification queries return 0; verify_certificates finds tampering; a
-- tenant on legal hold past its deadline is not purged and shows as 'purge
-- overdue' in security_events; bad input; non-operators get 42501.
BEGIN;
SELECT plan(108);
SET LOCAL client_min_messages = warning;

-- ------------------------------------------------------------------ set-up
CREATE ROLE o51_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE o51_app NOLOGIN;
CREATE ROLE o51_plain NOLOGIN;
CREATE ROLE o51_issuer NOLOGIN IN ROLE utilix_issuer;

SELECT utilix.create_tenant('o51 alpha') AS ta, utilix.create_tenant('o51 beta') AS tb,
       utilix.create_tenant('o51 held') AS tc, utilix.create_tenant('o51 cancel') AS td,
       utilix.create_tenant('o51 foxtrot') AS tf, utilix.create_tenant('o51 golf') AS tg \gset

CREATE TABLE o51_docs (
    tenant_id bigint NOT NULL,
    id        int NOT NULL,
    name      text,
    body      jsonb,
    qty       int,
    PRIMARY KEY (tenant_id, id)
);
SELECT utilix.protect('o51_docs') \g /dev/null
SELECT utilix.encrypt_column('o51_docs', 'name') \g /dev/null
SELECT utilix.encrypt_column('o51_docs', 'body') \g /dev/null
RESET utilix.internal_ddl;
CREATE TABLE o51_items (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('o51_items') \g /dev/null
-- list-partitioned by tenant: alpha alone; beta and foxtrot together; the rest
CREATE TABLE o51_parts (tenant_id bigint NOT NULL, id int NOT NULL, v text) PARTITION BY LIST (tenant_id);
CREATE TABLE o51_parts_a PARTITION OF o51_parts FOR VALUES IN (:ta);
CREATE TABLE o51_parts_bf PARTITION OF o51_parts FOR VALUES IN (:tb, :tf);
CREATE TABLE o51_parts_def PARTITION OF o51_parts DEFAULT;
SELECT utilix.protect('o51_parts') \g /dev/null
RESET utilix.internal_ddl;

INSERT INTO o51_docs VALUES
    (:ta, 1, 'Alice Anders', '{"ssn": "123-45-6789", "tags": [1, 2]}', 10),
    (:ta, 2, NULL, '{"k": "v"}', 20),
    (:ta, 3, 'Ann O''Neil', NULL, NULL),
    (:tb, 1, 'Bob Brown', '{"ssn": "987-65-4321"}', 1),
    (:tb, 2, 'Bea Blue', NULL, 2),
    (:tc, 1, 'Carl Held', '{"c": 1}', 1),
    (:td, 1, 'Dan Cancel', NULL, 1),
    (:tf, 1, 'Fay Fox', '{"f": true}', 1);
INSERT INTO o51_items SELECT t, g, timestamptz '2024-01-01 00:00+00' + make_interval(days => g)
  FROM (VALUES (:ta, 5), (:tb, 4), (:tc, 3), (:td, 2), (:tf, 2)) v(t, n), generate_series(1, n) g;
INSERT INTO o51_parts SELECT t, g, 'v' || g
  FROM (VALUES (:ta, 3), (:tb, 2), (:tc, 1), (:td, 1), (:tf, 2)) v(t, n), generate_series(1, n) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON o51_docs, o51_items, o51_parts TO o51_app;

-- one more key version for alpha: versions 0 (blind index), 1 (retiring), 2
SELECT utilix.rotate_tenant_key(:ta) \g /dev/null
-- what a backup would keep: the stored ciphertext of alpha's and beta's names
CREATE TEMP TABLE o51_saved AS SELECT tenant_id, id, name, body FROM o51_docs WHERE tenant_id IN (:ta, :tb);

SET LOCAL ROLE o51_op;
SELECT utilix.create_tenant_admin(:ta, 'admin-a', 'Alpha first pw 01') \g /dev/null
SELECT utilix.create_tenant_admin(:tb, 'admin-b', 'Beta first pw 01') \g /dev/null
SELECT utilix.create_tenant_admin(:tf, 'admin-f', 'Fox first pw 01') \g /dev/null
RESET ROLE;
SET LOCAL ROLE o51_issuer;
SELECT utilix.issue_context(:ta, 'app-a', rights => '{read,write}') AS tok_a,
       utilix.issue_context(:tb, 'app-b', rights => '{read,write}') AS tok_b,
       utilix.issue_context(:td, 'app-d', rights => '{read,write}') AS tok_d \gset
RESET ROLE;

-- the SQLSTATE of a statement, or NULL
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.sqlstate_of(text) TO PUBLIC;
-- rows of a tenant in our three tables, as a superuser sees them
CREATE FUNCTION pg_temp.rows_of(t bigint) RETURNS int[] LANGUAGE sql AS $$
    SELECT ARRAY[(SELECT count(*) FROM o51_docs WHERE tenant_id = t), (SELECT count(*) FROM o51_items WHERE tenant_id = t),
                 (SELECT count(*) FROM o51_parts WHERE tenant_id = t)]::int[]
$$;
SELECT is(pg_temp.rows_of(:ta) || pg_temp.rows_of(:tb) || pg_temp.rows_of(:tf), '{3,5,3,2,4,2,1,2,2}'::int[],
          'the data: alpha 3+5+3 rows, beta 2+4+2, foxtrot 1+2+2');

-- ------------------------------------------------------------------ terminate
SET LOCAL ROLE o51_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT is((SELECT count(*) FROM o51_docs), 3::bigint, 'before termination, alpha''s context reads its 3 documents');
RESET ROLE;
SET LOCAL ROLE o51_op;
SELECT is(utilix.terminate_tenant(:ta, '10 days'), now() + interval '10 days',
          'terminate_tenant returns the purge deadline: now() + the grace period');
RESET ROLE;
SELECT results_eq(format($$SELECT status, terminated_at, purge_after FROM utilix.tenant WHERE id = %s$$, :ta),
                  $$VALUES ('terminated', now(), now() + interval '10 days')$$,
                  'the tenant is terminated now, with its purge deadline recorded');
SET LOCAL ROLE o51_app;
SELECT throws_ok($$SELECT count(*) FROM o51_docs$$, '42501', NULL,
                 'the context set before the termination is refused at its next use, in the same transaction');
SELECT throws_ok(format($$SELECT utilix.set_context(%L)$$, :'tok_a'), '42501', NULL,
                 'a token issued before the termination is refused at once by set_context (42501)');
SET LOCAL utilix.context = :'tok_a';
SELECT throws_ok($$SELECT count(*) FROM o51_docs$$, '42501', NULL,
                 'set with SET utilix.context instead, the old token is refused at its first use');
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT is((SELECT count(*) FROM o51_docs), 2::bigint, 'another tenant''s token still works');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL ROLE o51_issuer;
SELECT throws_ok(format($$SELECT utilix.issue_context(%s, 'app-a')$$, :ta), '55000', NULL,
                 'no new token is issued for a terminated tenant');
RESET ROLE;
SELECT is((SELECT detail FROM utilix.lifecycle_event WHERE tenant_id = :ta AND event = 'terminated'),
          format('purge after %s', now() + interval '10 days'), 'the termination is a lifecycle event, with the deadline');
SET LOCAL ROLE o51_op;
SELECT is((SELECT count(*) FROM utilix.security_events WHERE tenant_id = :ta AND kind = 'terminated'), 1::bigint,
          'the termination shows in security_events');
SELECT is((SELECT count(*) FROM utilix.security_events WHERE tenant_id = :ta AND kind = 'purge overdue'), 0::bigint,
          'a tenant within its grace period is not overdue');
RESET ROLE;

-- ------------------------------------------------------------------ bad input
CREATE TEMP TABLE o51_tenants_before AS SELECT * FROM utilix.tenant;
SET LOCAL ROLE o51_op;
SELECT throws_ok($$SELECT utilix.terminate_tenant(-1)$$, '22023', NULL, 'terminate_tenant: an unknown tenant is 22023');
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s)$$, :ta), '55000', NULL,
                 'terminate_tenant: an already terminated tenant is 55000');
SELECT throws_ok($$SELECT utilix.terminate_tenant(NULL)$$, '22004', NULL, 'terminate_tenant: a NULL tenant is 22004');
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s, NULL)$$, :tb), '22004', NULL, 'terminate_tenant: a NULL grace is 22004');
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s, '0 days')$$, :tb), '22023', NULL, 'terminate_tenant: a zero grace is 22023');
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s, '-1 day')$$, :tb), '22023', NULL, 'terminate_tenant: a negative grace is 22023');
SELECT throws_ok(format($$SELECT utilix.cancel_termination(%s)$$, :tb), '55000', NULL,
                 'cancel_termination: an active tenant is 55000');
SELECT throws_ok($$SELECT utilix.cancel_termination(-1)$$, '22023', NULL, 'cancel_termination: an unknown tenant is 22023');
SELECT throws_ok($$SELECT utilix.cancel_termination(NULL)$$, '22004', NULL, 'cancel_termination: NULL is 22004');
SELECT throws_ok($$SELECT * FROM utilix.export_tenant(NULL)$$, '22004', NULL, 'export_tenant: NULL is 22004');
SELECT throws_ok($$SELECT * FROM utilix.export_tenant(-1)$$, '22023', NULL, 'export_tenant: an unknown tenant is 22023');
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :tb), '55000', NULL,
                 'export_tenant: an active tenant (not terminated) is 55000');
SELECT throws_ok($$SELECT * FROM utilix.export_manifest(NULL)$$, '22004', NULL, 'export_manifest: NULL is 22004');
RESET ROLE;
SELECT set_eq($$SELECT * FROM utilix.tenant$$, $$SELECT * FROM o51_tenants_before$$,
              'after the refused calls, no tenant changed');

-- ------------------------------------------------------------------ export
-- alpha was terminated in this very transaction: no other session sees it
-- terminated yet, and a ROLLBACK would leave it active with its data read.
-- An export needs a termination that has committed (test/t/export_trace.sh
-- exports after one, and checks the rows, the manifest and the records).
SET LOCAL ROLE o51_op;
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :ta), '55000',
                 format('tenant %s was terminated in this transaction', :ta),
                 'export_tenant of a tenant terminated in this same transaction is refused (55000)');
SELECT throws_ok(format($$SELECT * FROM utilix.export_manifest(%s)$$, :ta), '55000',
                 format('tenant %s was terminated in this transaction', :ta), 'and so is export_manifest');
RESET ROLE;
SELECT is((SELECT count(*) FROM utilix.lifecycle_event WHERE tenant_id = :ta AND event = 'exported'), 0::bigint,
          'no export happened');

-- ------------------------------------------------------------------ cancel within grace
SET LOCAL ROLE o51_op;
SELECT is(utilix.terminate_tenant(:td), now() + interval '30 days', 'the default grace period is 30 days');
SELECT lives_ok(format($$SELECT utilix.cancel_termination(%s)$$, :td), 'cancel_termination within the grace period');
SELECT throws_ok(format($$SELECT utilix.cancel_termination(%s)$$, :td), '55000', NULL,
                 'cancelling again (the tenant is active) is 55000');
RESET ROLE;
SELECT results_eq(format($$SELECT status, terminated_at, purge_after FROM utilix.tenant WHERE id = %s$$, :td),
                  $$VALUES ('active', NULL::timestamptz, NULL::timestamptz)$$,
                  'the cancelled tenant is active again, without deadline');
SET LOCAL ROLE o51_issuer;
SELECT utilix.issue_context(:td, 'app-d2', rights => '{read}') AS tok_d2 \gset
RESET ROLE;
SET LOCAL ROLE o51_app;
SELECT utilix.set_context(:'tok_d2') \g /dev/null
SELECT is((SELECT count(*) FROM o51_docs), 1::bigint, 'the cancelled tenant gets contexts again, and its data is all there');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is((SELECT count(*) FROM utilix.lifecycle_event WHERE tenant_id = :td AND event = 'termination cancelled'), 1::bigint,
          'the cancellation is a lifecycle event');

-- ------------------------------------------------------------------ purge
SET LOCAL ROLE o51_op;
SELECT lives_ok(format($$SELECT utilix.hold_tenant(%s, 'court order o51')$$, :tc), 'the held tenant is put on hold');
SELECT lives_ok(format($$SELECT utilix.terminate_tenant(%s, '1 day')$$, :tc), 'a tenant on hold can be terminated');
SELECT lives_ok(format($$SELECT utilix.terminate_tenant(%s, '2 days')$$, :tf), 'foxtrot is terminated');
SELECT is(utilix.purge_due_tenants(), 0, 'nothing is purged before the deadlines');
RESET ROLE;
SELECT is(pg_temp.rows_of(:ta), '{3,5,3}'::int[], 'within the grace period, the data stays');
-- the deadlines pass: alpha first, then foxtrot and the held tenant
UPDATE utilix.tenant SET purge_after = now() - interval '2 days' WHERE id = :ta;
UPDATE utilix.tenant SET purge_after = now() - interval '1 day' WHERE id IN (:tf, :tc);
CREATE TEMP TABLE o51_keys_before AS SELECT * FROM utilix.data_key;
SELECT is((SELECT count(*) FROM utilix.data_key WHERE tenant_id = :ta AND state <> 'destroyed'), 3::bigint,
          'the data: alpha has 3 keys (blind-index root, retiring version 1, active version 2)');
SELECT is((SELECT string_agg(utilix._plain(name), ',' ORDER BY id) FROM o51_saved WHERE tenant_id = :ta), 'Alice Anders,Ann O''Neil',
          'before the purge, alpha''s saved ciphertext decrypts');

SET LOCAL ROLE o51_op;
SELECT is(utilix.purge_due_tenants(), 2, 'purge_due_tenants purges the two due tenants and skips the held one');
RESET ROLE;
SELECT is(pg_temp.rows_of(:ta), '{0,0,0}'::int[], 'alpha has no row left in any protected table');
SELECT is(pg_temp.rows_of(:tf), '{0,0,0}'::int[], 'foxtrot has no row left in any protected table');
SELECT is(pg_temp.rows_of(:tb) || pg_temp.rows_of(:td), '{2,4,2,1,2,1}'::int[], 'the other tenants'' rows are all there');
SELECT is((SELECT string_agg(utilix._plain(name), ',' ORDER BY id) FROM o51_docs WHERE tenant_id = :tb), 'Bob Brown,Bea Blue',
          'the other tenants'' encrypted values still decrypt');
SELECT ok(to_regclass('o51_parts_a') IS NULL, 'alpha''s own list partition is dropped');
SELECT is((SELECT count(*) FROM pg_class WHERE relname = 'o51_parts_a'), 0::bigint, 'pg_class no longer has it');
SELECT ok(to_regclass('o51_parts_bf') IS NOT NULL AND to_regclass('o51_parts_def') IS NOT NULL,
          'the partition foxtrot shares with beta, and the default partition, stay');
SELECT is((SELECT count(*) FROM o51_parts_bf), 2::bigint, 'the shared partition keeps beta''s 2 rows');
SELECT is((SELECT count(*) FROM utilix.protected_table WHERE table_name = 'o51_parts_a'), 0::bigint,
          'the dropped partition is no longer listed as protected');
SELECT is((SELECT count(*) FROM utilix.app_user WHERE tenant_id IN (:ta, :tf)), 0::bigint, 'the purged tenants'' users are gone');
SELECT is((SELECT count(*) FROM utilix.app_user WHERE tenant_id = :tb), 1::bigint, 'beta''s user stays');
SELECT results_eq(format($$SELECT version, state, wrapped IS NULL, destroyed_at FROM utilix.data_key WHERE tenant_id = %s ORDER BY version$$, :ta),
                  $$VALUES (0, 'destroyed', true, now()), (1, 'destroyed', true, now()), (2, 'destroyed', true, now())$$,
                  'every key of alpha is destroyed: state destroyed, nothing wrapped left');
SELECT set_eq(format($$SELECT * FROM utilix.data_key WHERE tenant_id NOT IN (%s, %s)$$, :ta, :tf),
              format($$SELECT * FROM o51_keys_before WHERE tenant_id NOT IN (%s, %s)$$, :ta, :tf),
              'the other tenants'' keys are untouched');
SELECT throws_ok(format($$SELECT utilix._plain(name) FROM o51_saved WHERE tenant_id = %s AND id = 1$$, :ta), '55000', NULL,
                 'a saved ciphertext of the purged tenant (as in a backup) can no longer be decrypted');
SELECT throws_ok(format($$SELECT utilix._plain(body) FROM o51_saved WHERE tenant_id = %s AND id = 2$$, :ta), '55000', NULL,
                 'nor its jsonb');
SELECT is((SELECT string_agg(utilix._plain(name), ',' ORDER BY id) FROM o51_saved WHERE tenant_id = :tb), 'Bob Brown,Bea Blue',
          'a saved ciphertext of another tenant still decrypts');
SELECT results_eq(format($$SELECT status, purged_at FROM utilix.tenant WHERE id IN (%s, %s) ORDER BY id$$, :ta, :tf),
                  $$VALUES ('purged', now()), ('purged', now())$$, 'the purged tenants have status purged');
SELECT results_eq(
    format($$SELECT tenant_id, rows_expected, rows_removed, partitions_dropped, outcome, finished_at IS NOT NULL
               FROM utilix.purge_run WHERE kind = 'offboarding' AND tenant_id IN (%s, %s) ORDER BY id$$, :ta, :tf),
    format($$VALUES (%s::bigint, 11::bigint, 11::bigint, 1, 'ok', true), (%s, 5, 5, 0, 'ok', true)$$, :ta, :tf),
    'purge_run: one offboarding run per tenant with its rows and partitions');
SELECT is((SELECT count(*) FROM utilix.lifecycle_event WHERE tenant_id = :ta AND event = 'purged' AND detail LIKE '11 rows, 3 keys destroyed, certificate %'),
          1::bigint, 'the purge is a lifecycle event');

-- ------------------------------------------------------------------ certificates
SET LOCAL ROLE o51_op;
SELECT id AS cert_a, tables AS tables_a, keys_destroyed AS keys_a, verification AS checks_a
  FROM utilix.deletion_certificates WHERE tenant_id = :ta \gset
SELECT id AS cert_f FROM utilix.deletion_certificates WHERE tenant_id = :tf \gset
SELECT results_eq(format($$SELECT tenant_id, tenant_name, terminated_at, purged_at, keys_destroyed
                              FROM utilix.deletion_certificates WHERE tenant_id IN (%s, %s) ORDER BY id$$, :ta, :tf),
                  format($$VALUES (%s::bigint, 'o51 alpha', now(), now(), 3), (%s, 'o51 foxtrot', now(), now(), 2)$$, :ta, :tf),
                  'one certificate per purged tenant: name, termination and purge times, keys destroyed');
RESET ROLE;
SELECT ok(:'tables_a'::jsonb @> '{"public.o51_docs": {"before": 3, "after": 0}, "public.o51_items": {"before": 5, "after": 0},
                                   "public.o51_parts": {"before": 3, "after": 0}}',
          'the certificate lists each protected table with the tenant''s row counts before and after');
SELECT is((SELECT count(*) FROM jsonb_each(:'tables_a'::jsonb) e WHERE (e.value ->> 'after')::int <> 0), 0::bigint,
          'every table of the certificate has 0 rows after');
SELECT is((SELECT count(*) FROM jsonb_object_keys(:'tables_a'::jsonb)),
          (SELECT count(*) FROM utilix.protected_table p WHERE NOT (SELECT relispartition FROM pg_class WHERE oid = p.relid)),
          'the certificate covers every protected table');
CREATE FUNCTION pg_temp.run_checks(qs text[]) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    q text;
    n bigint;
    r bigint[] := '{}';
BEGIN
    FOREACH q IN ARRAY qs LOOP
        EXECUTE q INTO n;
        r := r || n;
    END LOOP;
    RETURN r;
END
$$;
SELECT is(cardinality(:'checks_a'::text[]), (SELECT count(*) FROM jsonb_object_keys(:'tables_a'::jsonb))::int,
          'one verification query per table');
SELECT ok((SELECT bool_and(n = 0) FROM unnest(pg_temp.run_checks(:'checks_a'::text[])) n),
          'every verification query of the certificate returns 0 when run now');
SELECT ok((SELECT bool_and(q LIKE '%' || :ta || '%') FROM unnest(:'checks_a'::text[]) q), 'the verification queries name the tenant');
SELECT is(:cert_f::bigint, :cert_a::bigint + 1, 'foxtrot''s certificate follows alpha''s');
SELECT is((SELECT prev_hash FROM utilix.deletion_certificate WHERE id = :cert_f),
          (SELECT hash FROM utilix.deletion_certificate WHERE id = :cert_a),
          'the certificates are chained: prev_hash is the previous certificate''s hash');
SELECT is((SELECT prev_hash FROM utilix.deletion_certificate WHERE id = :cert_a),
          (SELECT hash FROM utilix.deletion_certificate WHERE id < :cert_a ORDER BY id DESC LIMIT 1),
          'the first one links to the certificate before it (none here)');
SELECT is((SELECT length(hash) FROM utilix.deletion_certificate WHERE id = :cert_a), 32, 'a hash is a SHA-256');
SELECT encode(hash, 'hex') AS hash_f_hex, encode(prev_hash, 'hex') AS prev_f_hex FROM utilix.deletion_certificate WHERE id = :cert_f \gset
SET LOCAL ROLE o51_op;
SELECT is((SELECT (hash, prev_hash) FROM utilix.deletion_certificates WHERE id = :cert_f), (:'hash_f_hex'::text, :'prev_f_hex'::text),
          'the deletion_certificates view shows the hashes in hex');
SELECT ok((SELECT bool_and(ok) FROM utilix.verify_certificates()), 'verify_certificates: every certificate verifies');
SELECT is((SELECT count(*) FROM utilix.verify_certificates() WHERE id IN (:cert_a, :cert_f)), 2::bigint,
          'verify_certificates reports each certificate');
SELECT is((SELECT count(*) FROM utilix.security_events WHERE tenant_id = :ta AND kind = 'purged'), 1::bigint,
          'the purge shows in security_events');
RESET ROLE;

-- ------------------------------------------------------------------ the held tenant
SELECT is(pg_temp.rows_of(:tc), '{1,3,1}'::int[], 'the held tenant past its deadline is not purged: its rows stay');
SELECT is((SELECT status FROM utilix.tenant WHERE id = :tc), 'terminated', 'it stays terminated (not purged)');
SELECT is((SELECT count(*) FROM utilix.data_key WHERE tenant_id = :tc AND state = 'destroyed'), 0::bigint, 'its keys stay');
SET LOCAL ROLE o51_op;
SELECT is((SELECT count(*) FROM utilix.security_events WHERE tenant_id = :tc AND kind = 'purge overdue' AND detail LIKE '%on legal hold%'),
          1::bigint, 'security_events shows it as purge overdue, on legal hold');
SELECT is(utilix.purge_due_tenants(), 0, 'purge_due_tenants skips it again');
RESET ROLE;
SELECT throws_ok(format($$SELECT utilix._purge_tenant(%s)$$, :tc), '55000', NULL,
                 'purging a tenant on legal hold directly is refused (55000)');
SELECT is(pg_temp.rows_of(:tc), '{1,3,1}'::int[], 'and removes nothing');
SET LOCAL ROLE o51_op;
SELECT lives_ok(format($$SELECT utilix.release_hold(%s)$$, :tc), 'the hold is released');
SELECT is(utilix.purge_due_tenants(), 1, 'the next purge_due_tenants purges the released tenant');
SELECT is((SELECT count(*) FROM utilix.security_events WHERE tenant_id = :tc AND kind = 'purge overdue'), 0::bigint,
          'it is no longer overdue');
SELECT ok((SELECT bool_and(ok) FROM utilix.verify_certificates()), 'the chain of three certificates verifies');
RESET ROLE;
SELECT is(pg_temp.rows_of(:tc), '{0,0,0}'::int[], 'the released tenant''s rows are gone');

-- ------------------------------------------------------------------ after the purge
SET LOCAL ROLE o51_op;
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s)$$, :ta), '55000', NULL, 'terminate_tenant: a purged tenant is 55000');
SELECT throws_ok(format($$SELECT utilix.cancel_termination(%s)$$, :ta), '55000', NULL, 'cancel_termination: a purged tenant is 55000');
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :ta), '55000', NULL, 'export_tenant: a purged tenant (not terminated) is 55000');
SELECT throws_ok(format($$SELECT utilix.hold_tenant(%s, 'late')$$, :ta), '22023', NULL, 'hold_tenant: a purged tenant is 22023');
RESET ROLE;
SELECT throws_ok(format($$SELECT utilix._purge_tenant(%s)$$, :ta), '55000', NULL, '_purge_tenant: a purged tenant is 55000');
SELECT throws_ok(format($$SELECT utilix._purge_tenant(%s)$$, :tb), '55000', NULL, '_purge_tenant: an active tenant is 55000');
SET LOCAL ROLE o51_app;
SELECT throws_ok(format($$SELECT utilix.set_context(%L)$$, :'tok_a'), '42501', NULL, 'the purged tenant''s old token is still refused');
RESET ROLE;

-- ------------------------------------------------------------------ verification does not depend on the session
SET LOCAL ROLE o51_op;
SET LOCAL TimeZone = 'America/New_York';
SELECT ok((SELECT bool_and(ok) FROM utilix.verify_certificates()),
          'the certificates verify in a session with another TimeZone');
SET LOCAL TimeZone = 'Asia/Tokyo';
SELECT ok((SELECT bool_and(ok) FROM utilix.verify_certificates()), 'and in a third one');
RESET TimeZone;
RESET ROLE;

-- ------------------------------------------------------------------ tampering
SAVEPOINT tamper;
UPDATE utilix.deletion_certificate SET tables = '{}' WHERE id = :cert_a;
SET LOCAL ROLE o51_op;
SELECT is((SELECT ok FROM utilix.verify_certificates() WHERE id = :cert_a), false,
          'a certificate whose tables were changed fails verification (ok = false)');
RESET ROLE;
-- a forger who also recomputes that certificate's hash breaks the link to the next one
UPDATE utilix.deletion_certificate c SET hash = utilix._certificate_hash(c) WHERE id = :cert_a;
SET LOCAL ROLE o51_op;
SELECT results_eq(format($$SELECT id, ok FROM utilix.verify_certificates() WHERE id IN (%s, %s) ORDER BY id$$, :cert_a, :cert_f),
                  format($$VALUES (%s::bigint, true), (%s, false)$$, :cert_a, :cert_f),
                  'a forged certificate with a recomputed hash breaks the chain: the next certificate fails');
RESET ROLE;
ROLLBACK TO SAVEPOINT tamper;
UPDATE utilix.deletion_certificate SET keys_destroyed = 0 WHERE id = :cert_f;
SET LOCAL ROLE o51_op;
SELECT is((SELECT ok FROM utilix.verify_certificates() WHERE id = :cert_f), false,
          'a changed key count fails verification too');
RESET ROLE;
UPDATE utilix.deletion_certificate SET keys_destroyed = 2 WHERE id = :cert_f;

-- ------------------------------------------------------------------ non-operators
SET LOCAL ROLE o51_plain;
SELECT is(ARRAY[pg_temp.sqlstate_of(format('SELECT utilix.terminate_tenant(%s)', :tb)),
                pg_temp.sqlstate_of(format('SELECT utilix.cancel_termination(%s)', :tb)),
                pg_temp.sqlstate_of(format('SELECT * FROM utilix.export_tenant(%s)', :tb)),
                pg_temp.sqlstate_of(format('SELECT * FROM utilix.export_manifest(%s)', :tb)),
                pg_temp.sqlstate_of('SELECT utilix.purge_due_tenants()'),
                pg_temp.sqlstate_of('SELECT * FROM utilix.verify_certificates()'),
                pg_temp.sqlstate_of('SELECT * FROM utilix.deletion_certificates'),
                pg_temp.sqlstate_of('SELECT * FROM utilix.security_events'),
                pg_temp.sqlstate_of(format('SELECT utilix._purge_tenant(%s)', :tb))],
          array_fill('42501'::text, ARRAY[9]),
          'a plain role: terminate, cancel, export, manifest, purge, verify, the certificates and security events are all 42501');
RESET ROLE;
SET LOCAL ROLE o51_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :tb), '42501', NULL,
                 'a tenant principal cannot export its own tenant');
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s)$$, :tb), '42501', NULL,
                 'a tenant principal cannot terminate its own tenant');
SELECT throws_ok($$SELECT utilix.purge_due_tenants()$$, '42501', NULL, 'a tenant principal cannot purge');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is((SELECT status FROM utilix.tenant WHERE id = :tb), 'active', 'beta is still active');

-- ------------------------------------------------------------------ foreign keys between protected tables
-- golf's orders and their lines, the lines referencing the orders: a purge
-- must remove the referencing rows first (or it cannot remove the others)
CREATE TABLE o51_orders (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('o51_orders') \g /dev/null
CREATE TABLE o51_lines (tenant_id bigint NOT NULL, order_id int NOT NULL, n int NOT NULL,
                        PRIMARY KEY (tenant_id, order_id, n));
SELECT utilix.protect('o51_lines') \g /dev/null
RESET utilix.internal_ddl;
ALTER TABLE o51_lines ADD FOREIGN KEY (tenant_id, order_id) REFERENCES o51_orders (tenant_id, id);
INSERT INTO o51_orders SELECT :tg, g FROM generate_series(1, 3) g;
INSERT INTO o51_lines SELECT :tg, g, 1 FROM generate_series(1, 3) g;
SET LOCAL ROLE o51_op;
SELECT utilix.terminate_tenant(:tg, '1 day') \g /dev/null
RESET ROLE;
UPDATE utilix.tenant SET purge_after = now() - interval '1 hour' WHERE id = :tg;
SET LOCAL ROLE o51_op;
SELECT lives_ok($$SELECT utilix.purge_due_tenants()$$,
                'a tenant whose rows reference each other across protected tables (foreign keys) is purged');
RESET ROLE;
SELECT is((SELECT count(*) FROM o51_orders WHERE tenant_id = :tg) + (SELECT count(*) FROM o51_lines WHERE tenant_id = :tg), 0::bigint,
          'its orders and lines are gone');

SELECT * FROM finish();
ROLLBACK;
