-- 80_bad_inputs: a bad-input sweep over every SQL-callable function of
-- utilix (Hardening, part 4).  Each function is called, from the principal
-- that may call it, with NULL in every argument position (a STRICT function
-- gives NULL, any other argument that must not be NULL 22004, except where
-- NULL means a default); with empty, huge (1 MB text and bytea, 10000-element
-- arrays), out-of-range (bigint and integer limits, negative and absurd
-- intervals, infinite timestamps) and malformed values (tokens, armour,
-- networks, regclass of a view, of an unprotected table, of a dropped
-- table's oid, spill data); and from the wrong principal: a role without
-- EXECUTE (42501 "permission denied for function"), a tenant context calling
-- an operator function, a context without the admin right calling a tenant
-- admin function, another tenant's admin or auditor.  Exact SQLSTATEs are
-- asserted case by case; over the whole sweep: no XX000, no change left
-- behind (catalogs, context, role, settings compared before and after each
-- call), no token, password or encrypted value in a message, no 1 MB echo,
-- and the session and server still up at the end.  doc/bad-inputs.md has
-- the table of results, and the bugs (Bn) the sweep found, with their fixes.
--
-- Every call runs in a subtransaction that is rolled back (a successful one
-- too), so no call depends on another.  Calls that crash the server (a
-- SIGSEGV takes every session with it) are in test/t/bad_inputs.sh, on a
-- cluster of its own; here values of an encrypted type that come back from
-- a call are only tested with IS NULL, never printed.
-- Records queued in the access log leave the transaction: the writer must
-- be able to add today's partition while this transaction reads the log.
SELECT utilix.run_access_log_maintenance() \g /dev/null
BEGIN;
SET LOCAL client_min_messages = error;
SELECT pg_backend_pid() AS pid0, pg_postmaster_start_time() AS pm_start \gset

-- ------------------------------------------------------------------ set-up
CREATE ROLE bi80_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE bi80_issuer NOLOGIN IN ROLE utilix_issuer;
CREATE ROLE bi80_gw NOLOGIN IN ROLE utilix_gateway;
CREATE ROLE bi80_plain NOLOGIN;                 -- no grant at all
CREATE ROLE bi80_app NOLOGIN;                   -- the application's role, used with tenant contexts
CREATE ROLE bi80_owner NOLOGIN;                 -- owns the protected tables
CREATE ROLE bi80_bound NOLOGIN;                 -- a role an operator may bind
CREATE ROLE bi80_super NOLOGIN SUPERUSER;       -- a role bind_role must refuse
CREATE SCHEMA bi80_s;

SELECT utilix.create_tenant('bi80 alpha') AS ta, utilix.create_tenant('bi80 beta') AS tb,
       utilix.create_tenant('bi80 gone') AS tg \gset

-- a protected table with an encrypted (searchable) text column and a time column
CREATE TABLE bi80_t (tenant_id bigint NOT NULL, id int NOT NULL, body text, b bytea, j jsonb, n int, tag text,
                     at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id));
CREATE INDEX bi80_t_tag ON bi80_t (tag);
ALTER TABLE bi80_t OWNER TO bi80_owner;
SELECT utilix.protect('bi80_t') \g /dev/null
RESET utilix.internal_ddl;   -- works around the bug asserted in 22_ddl_guard (protect() leaves it on)
INSERT INTO bi80_t (tenant_id, id, body, b, j, n) VALUES
    (:ta, 1, 'alpha body one', '\x01', '{"a": 1}', 1), (:ta, 2, 'alpha body two', '\x02', '{"a": 2}', 2),
    (:tb, 1, 'beta body one', '\x03', '{"b": 1}', 3);
SELECT utilix.encrypt_column('bi80_t', 'body', searchable => true) \g /dev/null
RESET utilix.internal_ddl;
-- an encrypted bytea column, one value of which is not valid UTF-8 (and holds a NUL byte)
INSERT INTO bi80_t (tenant_id, id, b) VALUES (:ta, 3, '\xff00fe');
SELECT utilix.encrypt_column('bi80_t', 'b') \g /dev/null
RESET utilix.internal_ddl;
CREATE INDEX bi80_t_n ON bi80_t (n);
GRANT SELECT, INSERT, UPDATE, DELETE ON bi80_t TO bi80_app;
SELECT utilix.set_retention('bi80_t', '1 year', 'at') \g /dev/null
-- a protected table without a retention policy
CREATE TABLE bi80_nopol (tenant_id bigint NOT NULL, at timestamptz NOT NULL);
SELECT utilix.protect('bi80_nopol') \g /dev/null
RESET utilix.internal_ddl;
-- a list-partitioned protected table: its partition cannot take a policy or an encrypted column
CREATE TABLE bi80_p (tenant_id bigint NOT NULL, id int NOT NULL, note text, at timestamptz NOT NULL DEFAULT now())
    PARTITION BY LIST (tenant_id);
SELECT format('CREATE TABLE bi80_p1 PARTITION OF bi80_p FOR VALUES IN (%s)', :ta) \gexec
SELECT utilix.protect('bi80_p') \g /dev/null
RESET utilix.internal_ddl;
-- an empty table without a tenant column; a table whose tenant ids name no tenant
CREATE TABLE bi80_empty (id int);
CREATE TABLE bi80_leaky (tenant_id bigint, code text UNIQUE);
CREATE TABLE bi80_badfk (tenant_id bigint, id int);
INSERT INTO bi80_badfk VALUES (999999999, 1);
CREATE SCHEMA bi80_s2;
-- not protected: a plain table with rows, a view, a temporary table, a dropped table's oid
CREATE TABLE bi80_plain_t (tenant_id bigint, id int, note text);
INSERT INTO bi80_plain_t VALUES (:ta, 1, 'x');
CREATE VIEW bi80_v AS SELECT * FROM bi80_plain_t;
CREATE TEMP TABLE bi80_tmp (tenant_id bigint);
CREATE TABLE bi80_gone_t (tenant_id bigint);
SELECT 'bi80_gone_t'::regclass::oid AS gone_oid \gset
DROP TABLE bi80_gone_t;
CREATE ROLE bi80_gone_role NOLOGIN;
SELECT 'bi80_gone_role'::regrole::oid AS gone_role \gset
DROP ROLE bi80_gone_role;

-- users of tenant alpha: an admin (for its own name) and carol, a plain user
SET LOCAL utilix.scrypt_log2n = 10;
SELECT utilix.create_tenant_admin(:ta, 'root80', 'Admin initial pw 80') \g /dev/null
INSERT INTO utilix.admin_network (tenant_id, network, added_by) VALUES (:ta, '10.80.0.0/16', 'bi80');

-- tokens (an issuer mints them); the gone tenant is terminated afterwards
SET LOCAL ROLE bi80_issuer;
SELECT utilix.issue_context(:ta, 'root80', rights => '{admin,audit,read,write}') AS tok_admin,
       utilix.issue_context(:ta, 'carol80', rights => '{read,write}') AS tok_user,
       utilix.issue_context(:ta, 'ghost80', rights => '{read,write}') AS tok_ghost,
       utilix.issue_context(:ta, 'aud80', rights => '{audit}') AS tok_audit,
       utilix.issue_context(:tb, 'rootb80', rights => '{admin,audit,read,write}') AS tok_b_admin,
       utilix.issue_context(:tg, 'gone80', rights => '{admin,audit,read,write}') AS tok_gone,
       utilix.issue_context(:ta, 'short80', ttl => '1 second', rights => '{admin,read}') AS tok_short \gset
RESET ROLE;
SELECT utilix._sign_token(:ta, 'carol80', '1 hour', '{read,write,admin}', NULL, 1) AS tok_pco \gset
-- carol80 exists (created by the admin); her password is known
SELECT utilix.set_context(:'tok_admin') \g /dev/null
SELECT utilix.create_user('carol80', 'Initial pw of C 80', '{read,write}') \g /dev/null
SELECT utilix.create_user('dave80', 'Initial pw of D 80', '{read}') \g /dev/null
SELECT utilix.clear_context() \g /dev/null
SELECT utilix.terminate_tenant(:tg, '1 day') \g /dev/null
-- a forged token: tok_user with its signature's last character changed
SELECT left(:'tok_user', -1) || CASE WHEN right(:'tok_user', 1) = 'A' THEN 'B' ELSE 'A' END AS tok_forged \gset
-- a token whose payload was edited (tenant id) but keeps the old signature
SELECT 'utx1.' || overlay(split_part(:'tok_user', '.', 2) PLACING
                          CASE WHEN substr(split_part(:'tok_user', '.', 2), 12, 1) = 'A' THEN 'B' ELSE 'A' END FROM 12)
       || '.' || split_part(:'tok_user', '.', 3) AS tok_edited \gset

-- values for the encrypted types: armour of a stored value, its raw bytes, malformed ones
CREATE FUNCTION pg_temp.unarmour(a text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(rpad(t, ((length(t) + 3) / 4) * 4, '='), 'base64')
      FROM (SELECT translate(substr(a, 7), '-_', '+/') AS t) s
$$;
SELECT body::text AS armour FROM bi80_t WHERE tenant_id = :ta AND id = 1 \gset
SELECT pg_temp.unarmour(:'armour') AS sealed \gset
SELECT b::text AS armour_b FROM bi80_t WHERE tenant_id = :ta AND id = 3 \gset
-- the sealed value with one ciphertext byte flipped (still well formed)
SELECT overlay(:'sealed'::bytea PLACING decode(lpad(to_hex(get_byte(:'sealed'::bytea, length(:'sealed'::bytea) - 1) # 1), 2, '0'), 'hex')
               FROM length(:'sealed'::bytea)) AS sealed_bad \gset
-- the magic of a sealed value and nothing else, and a header naming tenant 999999999, column 1, key 7
SELECT '\xff5554584501'::bytea AS sealed_short \gset
SELECT ('\xff55545845' || '01' || '00' || lpad(to_hex(999999999), 16, '0') || lpad('1', 16, '0') || '00000007'
        || repeat('00', 12 + 16 + 4))::bytea AS sealed_alien \gset
SELECT column_id AS body_col FROM utilix.encrypted_column WHERE table_name = 'bi80_t' AND column_name = 'body' \gset

-- principals of the sweep: a database role (NULL: the superuser running this
-- file) and a tenant context (NULL: none)
CREATE TEMP TABLE bi80_who (who text PRIMARY KEY, role name, tok text);
INSERT INTO bi80_who VALUES
    ('super', NULL, NULL),
    ('op', 'bi80_op', NULL),
    ('issuer', 'bi80_issuer', NULL),
    ('gw', 'bi80_gw', NULL),
    ('plain', 'bi80_plain', NULL),
    ('app', 'bi80_app', NULL),
    ('app_admin', 'bi80_app', :'tok_admin'),
    ('app_user', 'bi80_app', :'tok_user'),
    ('app_ghost', 'bi80_app', :'tok_ghost'),
    ('app_audit', 'bi80_app', :'tok_audit'),
    ('app_pco', 'bi80_app', :'tok_pco'),
    ('app_b_admin', 'bi80_app', :'tok_b_admin'),
    ('op_admin', 'bi80_op', :'tok_admin');

-- state the sweep's valid calls start from: a bound role, a protected schema, a tenant on hold
SELECT utilix.bind_role('bi80_bound', :ta) \g /dev/null
SELECT utilix.protect_schema('bi80_s') \g /dev/null
SELECT utilix.hold_tenant(:tb, 'bi80 hold') \g /dev/null
-- the header of a spill file ("UTXALOG1", record size 3080, version 1), without
-- the seal that utilix.access_log_spill() adds (never called here: on a primary
-- it would take the spill files the writer has yet to load, see bad_inputs.sh)
SELECT '\x555458414c4f4731080c000001000000' AS spill_header \gset
-- a value the crypto core opens
SELECT utilix.crypto_seal(decode(repeat('00', 32), 'hex'), decode(repeat('00', 12), 'hex'), '\x', '\x01') AS aead_sealed \gset
SELECT password_hash AS carol_hash FROM utilix.app_user WHERE tenant_id = :ta AND login = 'carol80' \gset
SELECT wrapped AS wrapped_ta1 FROM utilix.data_key WHERE tenant_id = :ta AND version = 1 \gset

-- ------------------------------------------------------------------ the harness
-- A fingerprint of everything a refused call must leave as it was: utilix's
-- catalogs, the context, the role, and the settings utilix switches.
CREATE FUNCTION pg_temp.bi80_fp() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM utilix.tenant t),
        (SELECT string_agg(t::text, ',' ORDER BY t.role_name) FROM utilix.role_binding t),
        (SELECT string_agg(t::text, ',' ORDER BY t.schema_name, t.table_name) FROM utilix.protected_table t),
        (SELECT string_agg(t::text, ',' ORDER BY t.schema_name) FROM utilix.protected_schema t),
        (SELECT string_agg(t::text, ',' ORDER BY t.tenant_id, t.version) FROM utilix.data_key t),
        (SELECT string_agg(t::text, ',' ORDER BY t.column_id) FROM utilix.encrypted_column t),
        (SELECT string_agg(t::text, ',' ORDER BY t.tenant_id, t.login) FROM utilix.app_user t),
        (SELECT string_agg(t::text, ',' ORDER BY t.tenant_id, t.network) FROM utilix.admin_network t),
        (SELECT string_agg(t::text, ',' ORDER BY t.schema_name, t.table_name) FROM utilix.retention_policy t),
        (SELECT string_agg(t::text, ',' ORDER BY t.tenant_id, t.schema_name, t.table_name) FROM utilix.tenant_retention t),
        (SELECT string_agg(t::text, ',' ORDER BY t.tenant_id) FROM utilix.legal_hold t),
        (SELECT string_agg(t::text, ',' ORDER BY t.kcv) FROM utilix.key_check t),
        (SELECT string_agg(t::text, ',') FROM utilix.realm t),
        (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM utilix.deletion_certificate t),
        (SELECT count(*) FROM utilix.auth_event), (SELECT count(*) FROM utilix.lifecycle_event),
        (SELECT count(*) FROM utilix.purge_run),
        (SELECT string_agg(format('%s %s', a.attname, format_type(a.atttypid, a.atttypmod)), ',' ORDER BY a.attnum)
           FROM pg_attribute a WHERE a.attrelid = 'bi80_t'::regclass AND a.attnum > 0),
        (SELECT c::text FROM utilix.context_info() c),
        current_user, current_setting('utilix.internal_ddl'),
        utilix._access_log_maintenance(NULL)::text))
$$;

-- One case: as a principal of bi80_who, run q (a SELECT) and give back
-- 'ok' (a value), 'null' (NULL or no row), or 'SQLSTATE: message'.  Every
-- case is undone (a successful one by raising BI080 at its end), so no case
-- depends on another.
CREATE TEMP TABLE bi80_res (who text, q text, result text, detail text, hint text, fp_changed boolean);
CREATE TEMP TABLE bi80_var AS SELECT :ta::bigint AS ta;
CREATE FUNCTION pg_temp.bi80_run(who text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    w record;
    v text;
    res text;
    st text; m text; d text; h text;
    fp0 text := pg_temp.bi80_fp();
BEGIN
    -- failed logins of the sweep must not lock its users (the count lives in shared memory)
    PERFORM utilix._login_reset(v.ta, l) FROM bi80_var v, unnest(ARRAY['carol80', 'root80']) l;
    SELECT * INTO w FROM bi80_who x WHERE x.who = bi80_run.who;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'bi80: unknown principal %', who;
    END IF;
    BEGIN
        IF w.tok IS NOT NULL THEN
            PERFORM utilix.set_context(w.tok);
        END IF;
        IF w.role IS NOT NULL THEN
            EXECUTE format('SET LOCAL ROLE %I', w.role);
        END IF;
        EXECUTE q INTO v;
        res := CASE WHEN v IS NULL THEN 'null' ELSE 'ok' END;
        RAISE EXCEPTION USING ERRCODE = 'BI080', MESSAGE = res;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
        IF st = 'BI080' THEN
            res := m;
        ELSE
            res := st || ': ' || m;
        END IF;
    END;
    INSERT INTO bi80_res (who, q, result, detail, hint, fp_changed)
        VALUES (who, q, res, NULLIF(d, ''), NULLIF(h, ''), fp0 IS DISTINCT FROM pg_temp.bi80_fp());
    RETURN res;
END
$$;

-- two statements in one case: the first, then the result of the second
-- (for a refusal that only shows when the value is used)
CREATE FUNCTION pg_temp.bi80_then(q1 text, q2 text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    EXECUTE q1;
    IF q2 ~* '^\s*select' THEN
        EXECUTE q2 INTO v;
    ELSE
        EXECUTE q2;
        v := 'done';
    END IF;
    RETURN v;
END
$$;

-- ------------------------------------------------------------------ NULL in every argument position
-- For each function with arguments: a principal that may call it and a
-- valid value for every argument; the sweep calls it once per position with
-- that argument NULL (of its declared type) and the others valid.
CREATE TEMP TABLE bi80_fn (fn regprocedure PRIMARY KEY, who text NOT NULL, args text[] NOT NULL);
INSERT INTO bi80_fn VALUES
    ('utilix._log_event(text,bigint,text,text,text,boolean)', 'super', ARRAY['''admin''', :'ta', '''ok''', '''bi80 null sweep''', '''bi80''', 'false']),
    ('utilix._tenant_status(bigint,boolean)', 'super', ARRAY[:'ta', 'false']),
    ('utilix._sign_token(bigint,text,interval,text[],text,integer)', 'super',
        ARRAY[:'ta', '''bi80''', '''1 hour''', '''{read}''', '''public''', '0']),
    ('utilix._check_rights_and_clearance(text[],text)', 'super', ARRAY['''{read}''', '''public''']),
    ('utilix.issue_context(bigint,text,interval,text[],text)', 'issuer',
        ARRAY[:'ta', '''bi80''', '''1 hour''', '''{read}''', '''public''']),
    ('utilix.set_context(text,boolean)', 'plain', ARRAY[quote_literal(:'tok_user'), 'true']),
    ('utilix.create_tenant(text,text)', 'op', ARRAY['''bi80 new''', '''JP''']),
    ('utilix.bind_role(regrole,bigint)', 'op', ARRAY['''bi80_bound''', :'ta']),
    ('utilix.unbind_role(regrole)', 'op', ARRAY['''bi80_bound''']),
    ('utilix._oracle_problems(regclass,name,boolean)', 'super', ARRAY['''bi80_t''', '''tenant_id''', 'true']),
    ('utilix._untrusted_code(regclass)', 'super', ARRAY['''bi80_t''']),
    ('utilix._expr_functions(pg_node_tree)', 'super', ARRAY['(SELECT polqual FROM pg_catalog.pg_policy WHERE polqual IS NOT NULL LIMIT 1)']),
    ('utilix._reach(regclass)', 'super', ARRAY['''bi80_t''']),
    ('utilix._has_rows(regclass)', 'super', ARRAY['''bi80_t''']),
    ('utilix._written_here(xid)', 'super', ARRAY['''42''']),
    ('utilix._exec_as_owner(regclass,text,tid[],boolean)', 'super', ARRAY['''bi80_t''', '''SELECT 1''', 'NULL', 'false']),
    ('utilix._hide_index_statistics(regclass)', 'super', ARRAY['''bi80_t''']),
    ('utilix.protect(regclass,name)', 'op', ARRAY['''bi80_t''', '''tenant_id''']),
    ('utilix.unprotect(regclass)', 'op', ARRAY['''bi80_t''']),
    ('utilix.protect_schema(name,name)', 'op', ARRAY['''bi80_s''', '''tenant_id''']),
    ('utilix.unprotect_schema(name)', 'op', ARRAY['''bi80_s''']),
    ('utilix._integrity_problems(oid[])', 'super', ARRAY['''{}''']),
    ('utilix.crypto_hkdf(bytea,bytea,bytea,integer)', 'op', ARRAY['''\x01''', '''\x02''', '''\x03''', '32']),
    ('utilix.crypto_hmac(bytea,bytea)', 'op', ARRAY['''\x01''', '''\x02''']),
    ('utilix.crypto_seal(bytea,bytea,bytea,bytea)', 'op',
        ARRAY['decode(repeat(''00'', 32), ''hex'')', 'decode(repeat(''00'', 12), ''hex'')', '''\x''', '''\x01''']),
    ('utilix.crypto_open(bytea,bytea,bytea,bytea)', 'op',
        ARRAY['decode(repeat(''00'', 32), ''hex'')', 'decode(repeat(''00'', 12), ''hex'')', '''\x''', quote_literal(:'aead_sealed')]),
    ('utilix.crypto_random(integer)', 'op', ARRAY['16']),
    ('utilix._wrap_new_key(bigint,integer)', 'super', ARRAY[:'ta', '5']),
    ('utilix._ensure_tenant_keys(bigint)', 'super', ARRAY[:'ta']),
    ('utilix.encrypted_text_in(cstring)', 'plain', ARRAY['''x''']),
    ('utilix.encrypted_bytea_in(cstring)', 'plain', ARRAY['''\x01''']),
    ('utilix.encrypted_jsonb_in(cstring)', 'plain', ARRAY['''{}''']),
    ('utilix.encrypted_text_out(utilix.encrypted_text)', 'plain', ARRAY[quote_literal(:'armour')]),
    ('utilix.encrypted_bytea_out(utilix.encrypted_bytea)', 'plain', ARRAY['''\x01''']),
    ('utilix.encrypted_jsonb_out(utilix.encrypted_jsonb)', 'plain', ARRAY['''{}''']),
    ('utilix.decrypt(utilix.encrypted_text)', 'plain', ARRAY[quote_literal(:'armour')]),
    ('utilix.decrypt(utilix.encrypted_bytea)', 'plain', ARRAY['''\x01''']),
    ('utilix.decrypt(utilix.encrypted_jsonb)', 'plain', ARRAY['''{}''']),
    ('utilix._eq(utilix.encrypted_text,text)', 'plain', ARRAY[quote_literal(:'armour'), '''x''']),
    ('utilix._eq(utilix.encrypted_bytea,bytea)', 'plain', ARRAY['''\x01''', '''\x01''']),
    ('utilix._eq(utilix.encrypted_jsonb,jsonb)', 'plain', ARRAY['''{}''', '''{}''']),
    ('utilix._bidx_eq(utilix.encrypted_text,utilix.encrypted_text)', 'plain', ARRAY[quote_literal(:'armour'), quote_literal(:'armour')]),
    ('utilix._bidx_eq(utilix.encrypted_bytea,utilix.encrypted_bytea)', 'plain', ARRAY['''\x01''', '''\x01''']),
    ('utilix._bidx_eq(utilix.encrypted_jsonb,utilix.encrypted_jsonb)', 'plain', ARRAY['''{}''', '''{}''']),
    -- (the hash of a stored searchable value: for a reader of its column, issue 17)
    ('utilix._bidx_hash(utilix.encrypted_text)', 'app_user', ARRAY[quote_literal(:'armour')]),
    ('utilix._bidx_hash(utilix.encrypted_bytea)', 'plain', ARRAY['''\x01''']),
    ('utilix._bidx_hash(utilix.encrypted_jsonb)', 'plain', ARRAY['''{}''']),
    ('utilix._bidx_hash(utilix.blind_probe)', 'app_user', ARRAY[format('utilix._blind_probe(''x''::text, %s)', :body_col)]),
    ('utilix._bidx_match(utilix.encrypted_text,utilix.blind_probe)', 'app_user',
        ARRAY[quote_literal(:'armour'), format('utilix._blind_probe(''alpha body one''::text, %s)', :body_col)]),
    ('utilix._bidx_match(utilix.encrypted_bytea,utilix.blind_probe)', 'plain',
        ARRAY['''\x01''', format('utilix._blind_probe(''x''::text, %s)', :body_col)]),
    ('utilix._bidx_match(utilix.encrypted_jsonb,utilix.blind_probe)', 'plain',
        ARRAY['''{}''', format('utilix._blind_probe(''x''::text, %s)', :body_col)]),
    -- (the probe type's I/O: called by PostgreSQL, no EXECUTE needed)
    ('utilix.blind_probe_in(cstring)', 'super', ARRAY['''x''']),
    ('utilix.blind_probe_out(utilix.blind_probe)', 'super', ARRAY[format('utilix._blind_probe(''x''::text, %s)', :body_col)]),
    ('utilix._blind_probe(text,bigint)', 'app_user', ARRAY['''x''', :'body_col']),
    ('utilix._blind_probe(bytea,bigint)', 'app_user', ARRAY['''\x01''', :'body_col']),
    ('utilix._blind_probe(jsonb,bigint)', 'app_user', ARRAY['''{}''', :'body_col']),
    ('utilix.is_sealed(utilix.encrypted_text)', 'plain', ARRAY[quote_literal(:'armour')]),
    ('utilix.is_sealed(utilix.encrypted_bytea)', 'plain', ARRAY['''\x01''']),
    ('utilix.is_sealed(utilix.encrypted_jsonb)', 'plain', ARRAY['''{}''']),
    ('utilix.key_version(utilix.encrypted_text)', 'plain', ARRAY[quote_literal(:'armour')]),
    ('utilix.key_version(utilix.encrypted_bytea)', 'plain', ARRAY['''\x01''']),
    ('utilix.key_version(utilix.encrypted_jsonb)', 'plain', ARRAY['''{}''']),
    ('utilix._plain(utilix.encrypted_text)', 'super', ARRAY[quote_literal(:'armour')]),
    ('utilix._plain(utilix.encrypted_bytea)', 'super', ARRAY['''\x01''']),
    ('utilix._plain(utilix.encrypted_jsonb)', 'super', ARRAY['''{}''']),
    ('utilix._bidx_unmasked(utilix.encrypted_text)', 'super', ARRAY[quote_literal(:'armour')]),
    ('utilix._bidx_unmasked(utilix.encrypted_bytea)', 'super', ARRAY['''\x01''']),
    ('utilix._bidx_unmasked(utilix.encrypted_jsonb)', 'super', ARRAY['''{}''']),
    ('utilix._leaves(regclass)', 'super', ARRAY['''bi80_p''']),
    ('utilix.encrypt_column(regclass,name,text,boolean,integer)', 'op',
        ARRAY['''bi80_t''', '''j''', '''internal''', 'false', '100']),
    ('utilix.decrypt_column(regclass,name)', 'op', ARRAY['''bi80_t''', '''body''']),
    ('utilix.rotate_tenant_key(bigint)', 'op', ARRAY[:'ta']),
    ('utilix.reencrypt(bigint,integer)', 'op', ARRAY[:'ta', '10']),
    ('utilix.shred_tenant_keys(bigint)', 'op', ARRAY[:'tg']),
    ('utilix._rewrap_key(bigint,integer,bytea)', 'super',
        ARRAY[:'ta', '1', quote_literal(:'wrapped_ta1')]),
    ('utilix._may(text)', 'app_user', ARRAY['''read''']),
    ('utilix.tenant_if_may(text)', 'app_user', ARRAY['''read''']),
    ('utilix._acting_role_is_member(name)', 'super', ARRAY['''utilix_operator''']),
    ('utilix._login_attempt(bigint,text,integer,interval,boolean)', 'super', ARRAY[:'ta', '''bi80-nobody''', '5', '''1 minute''', 'true']),
    ('utilix._login_state(bigint,text)', 'super', ARRAY[:'ta', '''bi80-nobody''']),
    ('utilix._login_lookup(text,text,inet)', 'super', ARRAY['''bi80 alpha''', '''carol80''', '''10.0.0.1''']),
    ('utilix._login_reset(bigint,text)', 'super', ARRAY[:'ta', '''bi80-nobody''']),
    ('utilix._login_reset_at_commit(bigint,text)', 'super', ARRAY[:'ta', '''bi80-nobody''']),
    ('utilix._hide_usage(boolean)', 'super', ARRAY['false']),
    ('utilix._label_rank(text)', 'super', ARRAY['''internal''']),
    ('utilix._clearance_within_ceiling(bigint,text)', 'super', ARRAY[:'ta', '''internal''']),
    ('utilix._check_ceiling(bigint,text)', 'super', ARRAY[:'ta', '''internal''']),
    ('utilix.set_max_clearance(bigint,text)', 'op', ARRAY[:'tb', '''secret''']),
    ('utilix._hash_password(text)', 'super', ARRAY['''Bi80 some password''']),
    ('utilix._verify_password(text,text)', 'super', ARRAY['''Bi80 some password''', quote_literal(:'carol_hash')]),
    ('utilix._hash_is_current(text)', 'super', ARRAY[quote_literal(:'carol_hash')]),
    ('utilix._check_password(text,text)', 'super', ARRAY['''carol80''', '''Bi80 some password''']),
    ('utilix._auth_event(bigint,text,text,text,inet,text)', 'super',
        ARRAY[:'ta', '''bi80''', '''bi80 event''', '''ok''', '''10.80.0.1''', '''bi80 detail''']),
    ('utilix._own_user(bigint,text)', 'super', ARRAY[:'ta', '''carol80''']),
    ('utilix.login(text,text,text,inet)', 'gw', ARRAY['''bi80 alpha''', '''carol80''', '''Initial pw of C 80''', '''10.80.0.1''']),
    ('utilix.change_password(text,text)', 'app_user', ARRAY['''Initial pw of C 80''', '''Next pw of C 80 a''']),
    ('utilix.create_user(text,text,text[],text)', 'app_admin', ARRAY['''erin80''', '''Initial pw of E 80''', '''{read}''', '''public''']),
    ('utilix.disable_user(text)', 'app_admin', ARRAY['''carol80''']),
    ('utilix.enable_user(text)', 'app_admin', ARRAY['''carol80''']),
    ('utilix.drop_user(text)', 'app_admin', ARRAY['''carol80''']),
    ('utilix.reset_password(text,text)', 'app_admin', ARRAY['''carol80''', '''Reset pw of C 80 a''']),
    ('utilix.grant_rights(text,text[])', 'app_admin', ARRAY['''carol80''', '''{audit}''']),
    ('utilix.revoke_rights(text,text[])', 'app_admin', ARRAY['''carol80''', '''{write}''']),
    ('utilix.set_clearance(text,text)', 'app_admin', ARRAY['''carol80''', '''internal''']),
    ('utilix.allow_admin_network(cidr)', 'app_admin', ARRAY['''10.81.0.0/16''']),
    ('utilix.revoke_admin_network(cidr)', 'app_admin', ARRAY['''10.80.0.0/16''']),
    ('utilix.create_tenant_admin(bigint,text,text)', 'op', ARRAY[:'tb', '''rootb80''', '''Initial pw of RB 80''']),
    ('utilix.allow_tenant_admin_network(bigint,cidr)', 'op', ARRAY[:'tb', '''10.82.0.0/16''']),
    ('utilix._lifecycle(bigint,text,text)', 'super', ARRAY[:'ta', '''bi80 event''', '''bi80 detail''']),
    ('utilix._policy_table(regclass)', 'super', ARRAY['''bi80_t''']),
    ('utilix.set_retention(regclass,interval,name)', 'op', ARRAY['''bi80_t''', '''2 years''', '''at''']),
    ('utilix.drop_retention(regclass)', 'op', ARRAY['''bi80_t''']),
    ('utilix.set_tenant_retention(bigint,regclass,interval)', 'op', ARRAY[:'ta', '''bi80_t''', '''2 years''']),
    ('utilix._expired_sql(utilix.retention_policy,name,text)', 'super',
        ARRAY['(SELECT r FROM utilix.retention_policy r WHERE r.table_name = ''bi80_t'')', '''tenant_id''', '''t''']),
    ('utilix._droppable_partitions(utilix.retention_policy)', 'super',
        ARRAY['(SELECT r FROM utilix.retention_policy r WHERE r.table_name = ''bi80_t'')']),
    ('utilix.purge_preview(regclass)', 'op', ARRAY['''bi80_t''']),
    ('utilix._retention_step(utilix.retention_policy,integer,interval)', 'super',
        ARRAY['(SELECT r FROM utilix.retention_policy r WHERE r.table_name = ''bi80_t'')', '10', '''1 second''']),
    ('utilix._lock_for_purge(regclass)', 'super', ARRAY['''bi80_t''']),
    ('utilix._purge_rows(regclass,text,tid[])', 'super', ARRAY['''bi80_t''', '''false''', '''{}''']),
    ('utilix.run_retention(regclass)', 'op', ARRAY['''bi80_t''']),
    ('utilix.hold_tenant(bigint,text)', 'op', ARRAY[:'ta', '''bi80 hold''']),
    ('utilix.release_hold(bigint)', 'op', ARRAY[:'tb']),
    ('utilix.terminate_tenant(bigint,interval)', 'op', ARRAY[:'ta', '''30 days''']),
    ('utilix.cancel_termination(bigint)', 'op', ARRAY[:'tg']),
    ('utilix.export_tenant(bigint)', 'op', ARRAY[:'tg']),
    ('utilix.export_manifest(bigint)', 'op', ARRAY[:'tg']),
    ('utilix._purge_tenant(bigint)', 'super', ARRAY[:'tg']),
    ('utilix._certificate_hash(utilix.deletion_certificate)', 'super',
        ARRAY[format('ROW(1, %s, ''x'', now(), now(), ''{}'', 0, ''{}'', NULL, ''\x'')::utilix.deletion_certificate', :tg)]),
    ('utilix._access_log_partitions(timestamp with time zone,timestamp with time zone)', 'super', ARRAY['now()', 'now()']),
    ('utilix._access_log_maintenance(boolean)', 'super', ARRAY['false']),
    ('utilix._access_log_hash(utilix.access_log)', 'super', ARRAY['jsonb_populate_record(NULL::utilix.access_log, ''{"id": 1, "at": "2024-01-01 00:00:00+00", "kind": "admin", "outcome": "ok", "record_id": "00000000-0000-0000-0000-000000000001"}'')']),
    ('utilix.access_log_canonical(utilix.access_log)', 'super', ARRAY['jsonb_populate_record(NULL::utilix.access_log, ''{"id": 1, "at": "2024-01-01 00:00:00+00", "kind": "admin", "outcome": "ok", "record_id": "00000000-0000-0000-0000-000000000001"}'')']),
    ('utilix._audit_scope(bigint)', 'super', ARRAY[:'ta']),
    ('utilix.verify_access_log(bigint,timestamp with time zone)', 'op', ARRAY[:'ta', 'now()']),
    ('utilix.export_access_log(bigint,timestamp with time zone,timestamp with time zone)', 'op',
        ARRAY[:'ta', 'now() - interval ''1 day''', 'now()']),
    ('utilix.set_access_log(regclass,text)', 'op', ARRAY['''bi80_t''', '''writes''']),
    ('utilix.access_log_flush(integer)', 'plain', ARRAY['10']),
    ('utilix.load_access_log_spill(bytea)', 'op', ARRAY[quote_literal(:'spill_header')]);

-- the calls: the valid one (position 0), then one per NULL position
CREATE TEMP TABLE bi80_nullcase AS
SELECT f.fn, f.who, g.pos,
       CASE WHEN p.proretset THEN 'SELECT count(*) FROM ' ELSE 'SELECT ' END
       || CASE WHEN p.prorettype::regtype::text LIKE 'utilix.encrypted_%' THEN 'CASE WHEN ' ELSE '' END
       || p.oid::regproc::text || '('
       || (SELECT string_agg(CASE WHEN a.i = g.pos THEN 'NULL::' || format_type(p.proargtypes[a.i - 1], NULL) ELSE '(' || f.args[a.i] || ')::' || format_type(p.proargtypes[a.i - 1], NULL) END,
                             ', ' ORDER BY a.i)
             FROM generate_series(1, p.pronargs) a(i))
       || ')'
       || CASE WHEN p.prorettype::regtype::text LIKE 'utilix.encrypted_%' THEN ' IS NULL THEN NULL ELSE 1 END' ELSE '' END AS q,
       p.proisstrict AS strict
  FROM bi80_fn f JOIN pg_proc p ON p.oid = f.fn
 CROSS JOIN LATERAL generate_series(0, p.pronargs) g(pos);

-- What a NULL in each position must give: NULL for a STRICT function; 22004
-- for any other argument that must not be NULL (README: "Arguments that
-- must not be NULL raise 22004"); the exceptions below are arguments where
-- NULL has a meaning (a default, "all", "none"), and internal functions
-- whose callers never pass NULL.
CREATE TEMP TABLE bi80_null_expect (fn regprocedure, pos int, expect text, bug text, PRIMARY KEY (fn, pos));
INSERT INTO bi80_null_expect VALUES
    ('utilix._log_event(text,bigint,text,text,text,boolean)', 2, 'ok', NULL),          -- an event of no tenant
    ('utilix._log_event(text,bigint,text,text,text,boolean)', 4, 'ok', NULL),
    ('utilix._log_event(text,bigint,text,text,text,boolean)', 5, 'ok', NULL),
    ('utilix._log_event(text,bigint,text,text,text,boolean)', 6, 'ok', NULL),          -- NULL on_commit: at once
    ('utilix._tenant_status(bigint,boolean)', 2, 'ok', NULL),
    ('utilix._sign_token(bigint,text,interval,text[],text,integer)', 4, 'ok', NULL),
    ('utilix._sign_token(bigint,text,interval,text[],text,integer)', 5, 'ok', NULL),
    ('utilix._sign_token(bigint,text,interval,text[],text,integer)', 6, 'ok', NULL),
    ('utilix._check_rights_and_clearance(text[],text)', 1, 'ok', NULL),
    ('utilix._check_rights_and_clearance(text[],text)', 2, 'ok', NULL),
    ('utilix.issue_context(bigint,text,interval,text[],text)', 4, 'ok', NULL),  -- the default rights
    ('utilix.issue_context(bigint,text,interval,text[],text)', 5, 'ok', NULL),  -- no clearance
    ('utilix.set_context(text,boolean)', 2, 'ok', NULL),                        -- local, the default
    ('utilix._oracle_problems(regclass,name,boolean)', 1, 'ok', NULL),
    ('utilix._oracle_problems(regclass,name,boolean)', 3, 'ok', NULL),           -- no problem of either kind
    ('utilix._untrusted_code(regclass)', 1, 'ok', NULL),                         -- nothing attached to no table
    ('utilix._hide_index_statistics(regclass)', 1, 'ok', NULL),                  -- no table, no index
    ('utilix._reach(regclass)', 1, 'ok', NULL),                                  -- nothing reached from no table
    ('utilix._exec_as_owner(regclass,text,tid[],boolean)', 3, 'ok', NULL),       -- no arguments for the statement
    ('utilix.set_max_clearance(bigint,text)', 2, 'ok', NULL),                    -- no ceiling
    ('utilix._login_lookup(text,text,inet)', 1, 'ok', NULL),                      -- login() refuses NULL before
    ('utilix._login_lookup(text,text,inet)', 2, 'ok', NULL),
    ('utilix._login_lookup(text,text,inet)', 3, 'ok', NULL),                      -- a unix-socket client
    ('utilix._exec_as_owner(regclass,text,tid[],boolean)', 4, 'ok', NULL),       -- no re-sealing
    ('utilix._integrity_problems(oid[])', 1, 'ok', NULL),                       -- every table
    ('utilix._ensure_tenant_keys(bigint)', 1, 'null', NULL),
    ('utilix.blind_probe_in(cstring)', 0, '0A000', NULL),                      -- a probe is never typed in
    ('utilix._leaves(regclass)', 1, 'ok', NULL),
    ('utilix.encrypt_column(regclass,name,text,boolean,integer)', 3, 'ok', NULL),  -- no label
    ('utilix.encrypt_column(regclass,name,text,boolean,integer)', 4, '22004', 'B5'),
    ('utilix.encrypt_column(regclass,name,text,boolean,integer)', 5, '22004', 'B10'),
    ('utilix.reencrypt(bigint,integer)', 1, 'ok', NULL),                        -- every tenant
    ('utilix.reencrypt(bigint,integer)', 2, '22004', 'B10'),
    ('utilix.unprotect_schema(name)', 1, '22004', 'B6'),
    ('utilix._verify_password(text,text)', 1, 'ok', NULL),                      -- false, after a full scrypt
    ('utilix._verify_password(text,text)', 2, 'ok', NULL),
    ('utilix._auth_event(bigint,text,text,text,inet,text)', 1, 'null', NULL),   -- void
    ('utilix._auth_event(bigint,text,text,text,inet,text)', 2, 'null', NULL),
    ('utilix._auth_event(bigint,text,text,text,inet,text)', 3, '23502', NULL),  -- internal: the catalog's NOT NULL
    ('utilix._auth_event(bigint,text,text,text,inet,text)', 4, '23502', NULL),
    ('utilix._auth_event(bigint,text,text,text,inet,text)', 5, 'null', NULL),
    ('utilix._auth_event(bigint,text,text,text,inet,text)', 6, 'null', NULL),
    ('utilix._own_user(bigint,text)', 1, '22023', NULL),                        -- internal: no such user
    ('utilix.login(text,text,text,inet)', 4, 'ok', NULL),                       -- a gateway may pass NULL
    ('utilix._lifecycle(bigint,text,text)', 1, 'null', NULL),
    ('utilix._lifecycle(bigint,text,text)', 2, '23502', NULL),                  -- internal: the catalog's NOT NULL
    ('utilix._lifecycle(bigint,text,text)', 3, 'null', NULL),
    ('utilix._expired_sql(utilix.retention_policy,name,text)', 3, 'ok', NULL),
    ('utilix.purge_preview(regclass)', 1, 'ok', NULL),                          -- every table
    ('utilix._retention_step(utilix.retention_policy,integer,interval)', 2, 'null', NULL),
    ('utilix._retention_step(utilix.retention_policy,integer,interval)', 3, 'null', NULL),
    ('utilix.run_retention(regclass)', 1, 'ok', NULL),                          -- every table
    ('utilix._purge_rows(regclass,text,tid[])', 3, 'ok', NULL),                 -- no rows
    -- valid calls refused all the same: the tenant was terminated in this
    -- transaction, and an export needs a termination that has committed
    ('utilix.export_tenant(bigint)', 0, '55000', NULL),
    ('utilix.export_manifest(bigint)', 0, '55000', NULL),
    ('utilix._purge_tenant(bigint)', 1, '55000', NULL),                         -- internal: "not terminated"
    ('utilix._certificate_hash(utilix.deletion_certificate)', 1, 'ok', NULL),
    ('utilix._access_log_partitions(timestamp with time zone,timestamp with time zone)', 1, 'ok', NULL),
    ('utilix._access_log_partitions(timestamp with time zone,timestamp with time zone)', 2, 'ok', NULL),
    ('utilix._access_log_maintenance(boolean)', 1, 'ok', NULL),                 -- reads the mark
    ('utilix._audit_scope(bigint)', 1, 'null', NULL),                           -- every tenant
    ('utilix.verify_access_log(bigint,timestamp with time zone)', 1, 'ok', NULL),
    ('utilix.verify_access_log(bigint,timestamp with time zone)', 2, 'ok', NULL),
    ('utilix.set_access_log(regclass,text)', 2, 'ok', NULL),                    -- follow utilix.access_log
    ('utilix.access_log_flush(integer)', 1, 'ok', NULL),                        -- the default timeout
    -- valid calls that are refused all the same: no spill without its seal is valid here
    ('utilix.load_access_log_spill(bytea)', 0, '22023', NULL);

-- ------------------------------------------------------------------ empty, huge and malformed values
-- fn: the function; class: the input class; who: the principal; q: the call;
-- expect: 'ok', 'null' or the SQLSTATE.
CREATE TEMP TABLE bi80_case (n serial, fn text, class text, who text, q text, expect text, bug text);
-- expect is a regular expression over 'ok', 'null' and SQLSTATEs (anchored)
INSERT INTO bi80_case (fn, class, who, q, expect) VALUES
-- the tenant context
('set_context', 'empty token', 'plain', $$SELECT utilix.set_context('')$$, '42501'),
('set_context', 'malformed token utx1.x.y', 'plain', $$SELECT utilix.set_context('utx1.x.y')$$, '42501'),
('set_context', 'token without the prefix', 'plain', $$SELECT utilix.set_context('hello')$$, '42501'),
('set_context', 'huge token (1 MB)', 'plain', $$SELECT utilix.set_context(repeat('x', 1000000))$$, '42501'),
('set_context', 'huge token with the prefix (1 MB)', 'plain', $$SELECT utilix.set_context('utx1.' || repeat('A', 1000000) || '.x')$$, '42501'),
('set_context', 'token with a bad signature', 'plain', format('SELECT utilix.set_context(%L)', :'tok_forged'), '42501'),
('set_context', 'token with an edited payload', 'plain', format('SELECT utilix.set_context(%L)', :'tok_edited'), '42501'),
('set_context', 'expired token', 'plain', format('SELECT utilix.set_context(%L)', :'tok_short'), '42501'),
('set_context', 'token of a terminated tenant', 'plain', format('SELECT utilix.set_context(%L)', :'tok_gone'), '42501'),
('set_context', 'session-wide (is_local false), malformed token', 'plain', $$SELECT utilix.set_context('utx1.x.y', false)$$, '42501'),
('set_config(utilix.context)', 'malformed token through set_config()', 'plain', $$SELECT set_config('utilix.context', 'utx1.x.y', true)$$, '42501'),
('clear_context', 'no context set', 'plain', $$SELECT utilix.clear_context()$$, 'ok'),
('current_tenant', 'no context', 'plain', $$SELECT utilix.current_tenant()$$, '42501'),
('current_tenant', 'expired context in place', 'plain', format($$SELECT utilix.current_tenant() FROM (SELECT set_config('utilix.context', %L, true)) s$$, :'tok_short'), '42501'),
('current_app_user', 'no context', 'plain', $$SELECT utilix.current_app_user()$$, '42501'),
('context_info', 'no context', 'plain', $$SELECT status FROM utilix.context_info()$$, 'ok'),
-- issue_context
('issue_context', 'tenant 0', 'issuer', $$SELECT utilix.issue_context(0, 'x')$$, '22023'),
('issue_context', 'negative tenant', 'issuer', $$SELECT utilix.issue_context(-1, 'x')$$, '22023'),
('issue_context', 'bigint max tenant', 'issuer', $$SELECT utilix.issue_context(9223372036854775807, 'x')$$, '22023'),
('issue_context', 'bigint min tenant', 'issuer', $$SELECT utilix.issue_context(-9223372036854775808, 'x')$$, '22023'),
('issue_context', 'terminated tenant', 'issuer', format($$SELECT utilix.issue_context(%s, 'x')$$, :tg), '55000'),
('issue_context', 'empty app_user', 'issuer', format($$SELECT utilix.issue_context(%s, '')$$, :ta), '22023'),
('issue_context', 'huge app_user (1 MB)', 'issuer', format($$SELECT utilix.issue_context(%s, repeat('x', 1000000))$$, :ta), '22023'),
('issue_context', 'app_user of 256 bytes', 'issuer', format($$SELECT utilix.issue_context(%s, repeat('x', 256))$$, :ta), '22023'),
('issue_context', 'app_user with a control character', 'issuer', format($$SELECT utilix.issue_context(%s, E'a\nb')$$, :ta), '22023'),
('issue_context', 'ttl -1 day', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', interval '-1 day')$$, :ta), '22023'),
('issue_context', 'ttl 0', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', interval '0')$$, :ta), '22023'),
('issue_context', 'ttl above utilix.max_context_ttl (8 days)', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', interval '8 days')$$, :ta), '22023'),
('issue_context', 'huge ttl (1000 years)', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', interval '1000 years')$$, :ta), '22023'),
('issue_context', 'huge ttl (2147483647 months)', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', interval '2147483647 months')$$, :ta), '22023'),
('issue_context', 'huge ttl that wraps the int64 of microseconds: 2147483647 months 4639097239884588032 microseconds (178956970 years; taken for 1 hour)', 'issuer',
    format($$SELECT utilix.issue_context(%s, 'x', interval '2147483647 months 4639097239884588032 microseconds')$$, :ta), '22023'),
('issue_context', 'rights {} (the default rights)', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', rights => '{}')$$, :ta), 'ok'),
('issue_context', 'unknown right', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', rights => '{superpower}')$$, :ta), '22023'),
('issue_context', 'empty right', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', rights => '{""}')$$, :ta), '22023'),
('issue_context', 'NULL element in rights', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', rights => ARRAY['read', NULL])$$, :ta), '22023'),
('issue_context', 'two-dimensional rights', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', rights => '{{read},{write}}')$$, :ta), '22023'),
('issue_context', '10000 rights', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', rights => array_fill('read'::text, ARRAY[10000]))$$, :ta), '54000'),
('issue_context', 'huge right (1 MB)', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', rights => ARRAY[repeat('r', 1000000)])$$, :ta), '22023'),
('issue_context', 'unknown clearance', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', clearance => 'topmost')$$, :ta), '22023'),
('issue_context', 'empty clearance', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', clearance => '')$$, :ta), '22023'),
('issue_context', 'huge clearance (1 MB)', 'issuer', format($$SELECT utilix.issue_context(%s, 'x', clearance => repeat('c', 1000000))$$, :ta), '22023'),
-- tenants and bindings
('create_tenant', 'empty name', 'op', $$SELECT utilix.create_tenant('')$$, '22023'),
('create_tenant', 'huge name (1 MB)', 'op', $$SELECT utilix.create_tenant(repeat('x', 1000000))$$, '22023'),
('create_tenant', 'name of 64 characters', 'op', $$SELECT utilix.create_tenant(repeat('x', 64))$$, '22023'),
('create_tenant', 'name with a quote and a newline', 'op', $$SELECT utilix.create_tenant(E'bi80''\nx')$$, '22023'),
('create_tenant', 'name starting with a space', 'op', $$SELECT utilix.create_tenant(' bi80')$$, '22023'),
('create_tenant', 'lower-case region', 'op', $$SELECT utilix.create_tenant('bi80 r', 'jp')$$, '22023'),
('create_tenant', 'empty region', 'op', $$SELECT utilix.create_tenant('bi80 r', '')$$, '22023'),
('create_tenant', 'huge region (1 MB)', 'op', $$SELECT utilix.create_tenant('bi80 r', repeat('X', 1000000))$$, '22023'),
('create_tenant', 'existing name', 'op', $$SELECT utilix.create_tenant('bi80 alpha')$$, '23505'),
('bind_role', 'superuser role', 'op', format($$SELECT utilix.bind_role('bi80_super', %s)$$, :ta), '42501'),
('bind_role', 'operator role', 'op', format($$SELECT utilix.bind_role('bi80_op', %s)$$, :ta), '42501'),
('bind_role', 'issuer role', 'op', format($$SELECT utilix.bind_role('utilix_issuer', %s)$$, :ta), '42501'),
('bind_role', 'owner of a protected table', 'op', format($$SELECT utilix.bind_role('bi80_owner', %s)$$, :ta), '42501'),
('bind_role', 'unknown tenant', 'op', $$SELECT utilix.bind_role('bi80_bound', 999999999)$$, '22023'),
('bind_role', 'negative tenant', 'op', $$SELECT utilix.bind_role('bi80_bound', -1)$$, '22023'),
('bind_role', 'terminated tenant', 'op', format($$SELECT utilix.bind_role('bi80_bound', %s)$$, :tg), '22023'),
('bind_role', 'unknown role name', 'op', format($$SELECT utilix.bind_role('bi80_no_such_role', %s)$$, :ta), '42704'),
('bind_role', 'oid of a dropped role', 'op', format($$SELECT utilix.bind_role(%s::oid::regrole, %s)$$, :gone_role, :ta), '42704|22023'),
('bind_role', 'role 0', 'op', format($$SELECT utilix.bind_role(0::oid::regrole, %s)$$, :ta), '42704|22023'),
('unbind_role', 'role that is not bound', 'op', $$SELECT utilix.unbind_role('bi80_plain')$$, '22023'),
('unbind_role', 'oid of a dropped role', 'op', format($$SELECT utilix.unbind_role(%s::oid::regrole)$$, :gone_role), '22023'),
-- protection
('protect', 'view', 'op', $$SELECT utilix.protect('bi80_v')$$, '42809'),
('protect', 'temporary table', 'op', $$SELECT utilix.protect('bi80_tmp')$$, '42501'),
('protect', 'utilix catalog', 'op', $$SELECT utilix.protect('utilix.tenant')$$, '42501'),
('protect', 'system catalog', 'op', $$SELECT utilix.protect('pg_catalog.pg_class')$$, '42501'),
('protect', 'oid of a dropped table', 'op', format($$SELECT utilix.protect(%s::oid::regclass)$$, :gone_oid), '42P01'),
('protect', 'oid 0', 'op', $$SELECT utilix.protect(0::oid::regclass)$$, '42P01'),
('protect', 'unknown table name', 'op', $$SELECT utilix.protect('bi80_no_such_table')$$, '42P01'),
('protect', 'tenant column of type text', 'op', $$SELECT utilix.protect('bi80_t', 'body')$$, '42804'),
('protect', 'missing tenant column on a table with rows', 'op', $$SELECT utilix.protect('bi80_plain_t', 'no_such_column')$$, '55000'),
('protect', 'empty tenant column name', 'op', $$SELECT utilix.protect('bi80_plain_t', '')$$, '22023'),
('protect', 'huge tenant column name (1 MB, truncated to 63)', 'op', $$SELECT utilix.protect('bi80_plain_t', repeat('c', 1000000))$$, '55000'),
('protect', 'table with a unique key that does not lead with the tenant column', 'op', $$SELECT utilix.protect('bi80_leaky')$$, '42P16'),
('unprotect', 'table that is not protected', 'op', $$SELECT utilix.unprotect('bi80_plain_t')$$, '22023'),
('unprotect', 'oid of a dropped table', 'op', format($$SELECT utilix.unprotect(%s::oid::regclass)$$, :gone_oid), '22023'),
('protect_schema', 'unknown schema', 'op', $$SELECT utilix.protect_schema('bi80_no_such_schema')$$, '3F000'),
('protect_schema', 'empty schema name', 'op', $$SELECT utilix.protect_schema('')$$, '3F000'),
('protect_schema', 'huge schema name (1 MB)', 'op', $$SELECT utilix.protect_schema(repeat('s', 1000000))$$, '3F000'),
('protect_schema', 'pg_catalog', 'op', $$SELECT utilix.protect_schema('pg_catalog')$$, '42501'),
('protect_schema', 'utilix', 'op', $$SELECT utilix.protect_schema('utilix')$$, '42501'),
('protect_schema', 'empty tenant column name, then a CREATE TABLE in the schema', 'super', $$SELECT pg_temp.bi80_then($q$SELECT utilix.protect_schema('bi80_s2', '')$q$, 'CREATE TABLE bi80_s2.t (id int)')$$, '22023'),
('protect', 'empty tenant column name on an empty table', 'op', $$SELECT utilix.protect('bi80_empty', '')$$, '22023'),
('unprotect_schema', 'schema that is not protected', 'op', $$SELECT utilix.unprotect_schema('public')$$, '22023'),
('unprotect_schema', 'huge schema name (1 MB)', 'op', $$SELECT utilix.unprotect_schema(repeat('s', 1000000))$$, '22023'),
-- master key and crypto core
('adopt_master_key', 'already adopted', 'op', $$SELECT utilix.adopt_master_key()$$, 'ok'),
('crypto_hkdf', 'length 0', 'op', $$SELECT utilix.crypto_hkdf('\x01', '\x', '\x', 0)$$, '22023'),
('crypto_hkdf', 'negative length', 'op', $$SELECT utilix.crypto_hkdf('\x01', '\x', '\x', -1)$$, '22023'),
('crypto_hkdf', 'length 8161', 'op', $$SELECT utilix.crypto_hkdf('\x01', '\x', '\x', 8161)$$, '22023'),
('crypto_hkdf', 'integer max length', 'op', $$SELECT utilix.crypto_hkdf('\x01', '\x', '\x', 2147483647)$$, '22023'),
('crypto_hkdf', 'empty ikm, salt and info', 'op', $$SELECT utilix.crypto_hkdf('\x', '\x', '\x', 32)$$, 'ok'),
('crypto_hkdf', 'huge ikm (1 MB)', 'op', $$SELECT utilix.crypto_hkdf(convert_to(repeat('k', 1000000), 'UTF8'), '\x', '\x', 32)$$, 'ok'),
('crypto_hkdf', 'huge info (1 MB; OpenSSL takes at most 1024 bytes)', 'op', $$SELECT utilix.crypto_hkdf('\x01', '\x', convert_to(repeat('i', 1000000), 'UTF8'), 32)$$, '39000|22023'),
('crypto_hmac', 'empty key and data', 'op', $$SELECT utilix.crypto_hmac('\x', '\x')$$, 'ok'),
('crypto_hmac', 'huge key and data (1 MB)', 'op', $$SELECT utilix.crypto_hmac(convert_to(repeat('k', 1000000), 'UTF8'), convert_to(repeat('d', 1000000), 'UTF8'))$$, 'ok'),
('crypto_seal', 'key of 31 bytes', 'op', $$SELECT utilix.crypto_seal(decode(repeat('00', 31), 'hex'), decode(repeat('00', 12), 'hex'), '\x', '\x01')$$, '22023'),
('crypto_seal', 'empty key', 'op', $$SELECT utilix.crypto_seal('\x', decode(repeat('00', 12), 'hex'), '\x', '\x01')$$, '22023'),
('crypto_seal', 'nonce of 11 bytes', 'op', $$SELECT utilix.crypto_seal(decode(repeat('00', 32), 'hex'), decode(repeat('00', 11), 'hex'), '\x', '\x01')$$, '22023'),
('crypto_seal', 'huge key (1 MB)', 'op', $$SELECT utilix.crypto_seal(convert_to(repeat('k', 1000000), 'UTF8'), decode(repeat('00', 12), 'hex'), '\x', '\x01')$$, '22023'),
('crypto_seal', 'huge plaintext and aad (1 MB)', 'op', $$SELECT length(utilix.crypto_seal(decode(repeat('00', 32), 'hex'), decode(repeat('00', 12), 'hex'), convert_to(repeat('a', 1000000), 'UTF8'), convert_to(repeat('p', 1000000), 'UTF8')))$$, 'ok'),
('crypto_open', 'empty sealed value', 'op', $$SELECT utilix.crypto_open(decode(repeat('00', 32), 'hex'), decode(repeat('00', 12), 'hex'), '\x', '\x')$$, '22000'),
('crypto_open', 'sealed value shorter than the tag', 'op', $$SELECT utilix.crypto_open(decode(repeat('00', 32), 'hex'), decode(repeat('00', 12), 'hex'), '\x', decode(repeat('00', 15), 'hex'))$$, '22000'),
('crypto_open', 'tampered sealed value', 'op', $$SELECT utilix.crypto_open(decode(repeat('00', 32), 'hex'), decode(repeat('00', 12), 'hex'), '\x', decode(repeat('00', 40), 'hex'))$$, '22000'),
('crypto_open', 'huge garbage (1 MB)', 'op', $$SELECT utilix.crypto_open(decode(repeat('00', 32), 'hex'), decode(repeat('00', 12), 'hex'), '\x', convert_to(repeat('g', 1000000), 'UTF8'))$$, '22000'),
('crypto_open', 'nonce of 13 bytes', 'op', $$SELECT utilix.crypto_open(decode(repeat('00', 32), 'hex'), decode(repeat('00', 13), 'hex'), '\x', decode(repeat('00', 40), 'hex'))$$, '22023'),
('crypto_random', 'negative length', 'op', $$SELECT utilix.crypto_random(-1)$$, '22023'),
('crypto_random', 'length 1048577', 'op', $$SELECT utilix.crypto_random(1048577)$$, '22023'),
('crypto_random', 'integer min length', 'op', $$SELECT utilix.crypto_random(-2147483648)$$, '22023'),
('crypto_random', 'length 0', 'op', $$SELECT utilix.crypto_random(0)$$, 'ok'),
-- column encryption (operators)
('encrypt_column', 'table that is not protected', 'op', $$SELECT utilix.encrypt_column('bi80_plain_t', 'note')$$, '55000'),
('encrypt_column', 'a partition', 'op', $$SELECT utilix.encrypt_column('bi80_p1', 'note')$$, '42809'),
('encrypt_column', 'view', 'op', $$SELECT utilix.encrypt_column('bi80_v', 'note')$$, '55000'),
('encrypt_column', 'oid of a dropped table', 'op', format($$SELECT utilix.encrypt_column(%s::oid::regclass, 'note')$$, :gone_oid), '55000'),
('encrypt_column', 'unknown column', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'no_such_column')$$, '42703'),
('encrypt_column', 'empty column name', 'op', $$SELECT utilix.encrypt_column('bi80_t', '')$$, '42703'),
('encrypt_column', 'the tenant column', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'tenant_id')$$, '22023'),
('encrypt_column', 'integer column', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'id')$$, '42804'),
('encrypt_column', 'column already encrypted', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'body')$$, '55000'),
('encrypt_column', 'column in an index', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'tag')$$, '55000'),
('encrypt_column', 'unknown label', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'j', 'topmost')$$, '22023'),
('encrypt_column', 'empty label', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'j', '')$$, '22023'),
('encrypt_column', 'huge label (1 MB)', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'j', repeat('l', 1000000))$$, '22023'),
('encrypt_column', 'batch_size 0', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'j', batch_size => 0)$$, '22023'),
('encrypt_column', 'batch_size integer min', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'j', batch_size => -2147483648)$$, '22023'),
('encrypt_column', 'batch_size integer max', 'op', $$SELECT utilix.encrypt_column('bi80_t', 'j', batch_size => 2147483647)$$, 'ok'),
('decrypt_column', 'column that is not encrypted', 'op', $$SELECT utilix.decrypt_column('bi80_t', 'j')$$, '22023'),
('decrypt_column', 'table that is not protected', 'op', $$SELECT utilix.decrypt_column('bi80_plain_t', 'note')$$, '22023'),
('decrypt_column', 'oid of a dropped table', 'op', format($$SELECT utilix.decrypt_column(%s::oid::regclass, 'note')$$, :gone_oid), '22023'),
('rotate_tenant_key', 'unknown tenant', 'op', $$SELECT utilix.rotate_tenant_key(999999999)$$, '22023'),
('rotate_tenant_key', 'bigint min tenant', 'op', $$SELECT utilix.rotate_tenant_key(-9223372036854775808)$$, '22023'),
('rotate_tenant_key', 'terminated tenant', 'op', format($$SELECT utilix.rotate_tenant_key(%s)$$, :tg), '55000'),
('reencrypt', 'batch_size 0', 'op', $$SELECT utilix.reencrypt(NULL, 0)$$, '22023'),
('reencrypt', 'negative batch_size', 'op', $$SELECT utilix.reencrypt(NULL, -5)$$, '22023'),
('reencrypt', 'unknown tenant', 'op', $$SELECT utilix.reencrypt(999999999)$$, 'ok'),
('reencrypt', 'integer max batch_size', 'op', $$SELECT utilix.reencrypt(NULL, 2147483647)$$, 'ok'),
('shred_tenant_keys', 'active tenant', 'op', format($$SELECT utilix.shred_tenant_keys(%s)$$, :ta), '55000'),
('shred_tenant_keys', 'unknown tenant', 'op', $$SELECT utilix.shred_tenant_keys(999999999)$$, '22023'),
('shred_tenant_keys', 'bigint max tenant', 'op', $$SELECT utilix.shred_tenant_keys(9223372036854775807)$$, '22023'),
-- the encrypted types (PUBLIC)
('encrypted_text (input)', 'malformed armour', 'plain', $$SELECT 'utxe1:not-armour'::utilix.encrypted_text IS NULL$$, '22P02'),
('encrypted_text (input)', 'armour prefix only', 'plain', $$SELECT 'utxe1:'::utilix.encrypted_text IS NULL$$, '22P02'),
('encrypted_text (input)', 'huge malformed armour (1 MB)', 'plain', format('SELECT %L::utilix.encrypted_text IS NULL', 'utxe1:' || repeat('A', 1000000)), '22P02'),
('encrypted_text (input)', 'armour-like text cast from text (a pending value, not armour)', 'plain', $$SELECT ('utxe1:' || repeat('A', 100))::utilix.encrypted_text::text$$, 'ok'),
('encrypted_text (input)', 'empty text', 'plain', $$SELECT ''::utilix.encrypted_text::text$$, 'ok'),
('encrypted_bytea (input)', 'malformed bytea', 'plain', $$SELECT '\xzz'::utilix.encrypted_bytea IS NULL$$, '22P02'),
('encrypted_jsonb (input)', 'malformed json', 'plain', $$SELECT '{"ssn": "bi80-secret-0042"'::utilix.encrypted_jsonb IS NULL$$, '22P02'),
('encrypted_jsonb (input)', 'huge malformed json (1 MB)', 'plain', $$SELECT ('{"a": "' || repeat('j', 1000000))::utilix.encrypted_jsonb IS NULL$$, '22P02'),
('decrypt(encrypted_text)', 'armour, no context (operator view)', 'plain', format($$SELECT utilix.decrypt(%L::utilix.encrypted_text)$$, :'armour'), 'ok'),
('decrypt(encrypted_text)', 'armour of another tenant''s value', 'app_b_admin', format($$SELECT utilix.decrypt(%L::utilix.encrypted_text) LIKE 'utxe1:%%'$$, :'armour'), 'ok'),
('decrypt(encrypted_bytea)', 'magic only (malformed sealed value)', 'plain', format($$SELECT utilix.decrypt(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_short'), 'XX001'),
('decrypt(encrypted_bytea)', 'tampered sealed value, reader of its tenant', 'app_user', format($$SELECT utilix.decrypt(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_bad'), 'XX001'),
('decrypt(encrypted_bytea)', 'sealed value naming an unknown tenant', 'plain', format($$SELECT utilix.decrypt(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_alien'), 'null'),
('decrypt(encrypted_jsonb)', 'armour of an encrypted text column read as encrypted_jsonb, reader of its tenant', 'app_user', format($$SELECT utilix.decrypt(%L::utilix.encrypted_jsonb) IS NULL$$, :'armour'), '42804'),
('encrypted_jsonb (output)', 'armour of an encrypted text column read as encrypted_jsonb, reader of its tenant', 'app_user', format($$SELECT %L::utilix.encrypted_jsonb::text$$, :'armour'), '42804'),
('decrypt(encrypted_text)', 'armour of an encrypted bytea column (not UTF-8, a NUL byte) read as encrypted_text, reader', 'app_user', format($$SELECT octet_length(utilix.decrypt(%L::utilix.encrypted_text))$$, :'armour_b'), '42804'),
('decrypt(encrypted_bytea)', 'armour of an encrypted text column read as encrypted_bytea, reader', 'app_user', format($$SELECT utilix.decrypt(%L::utilix.encrypted_bytea)$$, :'armour'), '42804'),
('_eq(encrypted_bytea,bytea)', 'tampered sealed value (leakproof: false)', 'app_user', format($$SELECT utilix._eq(%L::bytea::utilix.encrypted_bytea, '\x01') OR NULL$$, :'sealed_bad'), 'null'),
('_eq(encrypted_text,text)', 'huge plain operand (1 MB)', 'app_user', format($$SELECT utilix._eq(%L::utilix.encrypted_text, repeat('x', 1000000))$$, :'armour'), 'ok'),
('_bidx_eq(encrypted_bytea,encrypted_bytea)', 'garbage bytes', 'plain', $$SELECT utilix._bidx_eq('\xff5554585001'::bytea::utilix.encrypted_bytea, '\x00'::bytea::utilix.encrypted_bytea)$$, 'ok'),
('_bidx_hash(encrypted_bytea)', 'probe magic, wrong length', 'plain', $$SELECT utilix._bidx_hash('\xff5554585001'::bytea::utilix.encrypted_bytea)$$, 'ok'),
('_bidx_hash(encrypted_text)', 'stored value, a role that may not read it (issue 17)', 'plain', format($$SELECT utilix._bidx_hash(%L::utilix.encrypted_text)$$, :'armour'), '42501'),
('_bidx_hash(encrypted_text)', 'stored value, another tenant''s context (issue 17)', 'app_b_admin', format($$SELECT utilix._bidx_hash(%L::utilix.encrypted_text)$$, :'armour'), '42501'),
('_bidx_eq(encrypted_text,encrypted_text)', 'a stored value with itself, a role that may not read it (false)', 'plain', format($$SELECT utilix._bidx_eq(%1$L::utilix.encrypted_text, %1$L::utilix.encrypted_text) OR NULL$$, :'armour'), 'null'),
('_bidx_eq(encrypted_text,encrypted_text)', 'a stored value with itself, a reader', 'app_user', format($$SELECT utilix._bidx_eq(%1$L::utilix.encrypted_text, %1$L::utilix.encrypted_text) OR NULL$$, :'armour'), 'ok'),
('blind_probe (input)', 'any text', 'plain', $$SELECT 'x'::utilix.blind_probe IS NULL$$, '0A000'),
('blind_probe (input)', 'armour', 'plain', format($$SELECT %L::utilix.blind_probe IS NULL$$, :'armour'), '0A000'),
('_blind_probe(text,bigint)', 'no context', 'plain', format($$SELECT utilix._blind_probe('x'::text, %s) IS NULL$$, :body_col), 'ok'),
('_blind_probe(text,bigint)', 'unknown column id', 'app_user', $$SELECT utilix._blind_probe('x'::text, -1) IS NULL$$, 'ok'),
('_blind_probe(jsonb,bigint)', 'no context (value not printed: see bad_inputs.sh)', 'plain', $$SELECT utilix._blind_probe('{}'::jsonb, 1) IS NULL$$, 'ok'),
('_blind_probe(bytea,bigint)', 'huge value (1 MB)', 'app_user', format($$SELECT utilix._blind_probe(convert_to(repeat('b', 1000000), 'UTF8'), %s) IS NULL$$, :body_col), 'ok'),
('is_sealed(encrypted_bytea)', 'empty value', 'plain', $$SELECT utilix.is_sealed(''::bytea::utilix.encrypted_bytea)$$, 'ok'),
('is_sealed(encrypted_bytea)', 'magic only', 'plain', format($$SELECT utilix.is_sealed(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_short'), 'ok'),
('key_version(encrypted_bytea)', 'magic only', 'plain', format($$SELECT utilix.key_version(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_short'), 'null'),
('_plain(encrypted_bytea)', 'magic only', 'super', format($$SELECT utilix._plain(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_short'), 'XX001'),
('_plain(encrypted_bytea)', 'tampered sealed value', 'super', format($$SELECT utilix._plain(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_bad'), 'XX001'),
('_plain(encrypted_bytea)', 'sealed value naming an unknown tenant', 'super', format($$SELECT utilix._plain(%L::bytea::utilix.encrypted_bytea)$$, :'sealed_alien'), '55000'),
-- application users
('login', 'unknown tenant', 'plain', $$SELECT utilix.login('bi80 nowhere', 'carol80', 'Initial pw of C 80')$$, 'null'),
('login', 'empty tenant, login and password', 'plain', $$SELECT utilix.login('', '', '')$$, 'null'),
('login', 'huge password (1 MB)', 'plain', $$SELECT utilix.login('bi80 alpha', 'carol80', repeat('p', 1000000))$$, 'null'),
('login', 'huge login (1 MB)', 'plain', $$SELECT utilix.login('bi80 alpha', repeat('l', 1000000), 'Initial pw of C 80')$$, 'null'),
('login', 'client_addr passed by a role that is not a gateway', 'plain', $$SELECT utilix.login('bi80 alpha', 'carol80', 'Initial pw of C 80', '10.80.0.1')$$, 'null'),
('login', 'admin from outside its admin networks (gateway)', 'gw', $$SELECT utilix.login('bi80 alpha', 'root80', 'Admin initial pw 80', '192.0.2.1')$$, 'null'),
('login', 'terminated tenant', 'gw', $$SELECT utilix.login('bi80 gone', 'gone80', 'Admin initial pw 80', '10.80.0.1')$$, 'null'),
('change_password', 'no context', 'plain', $$SELECT utilix.change_password('Initial pw of C 80', 'Next pw of C 80 b')$$, '42501'),
('change_password', 'context of no application user', 'app_ghost', $$SELECT utilix.change_password('Initial pw of C 80', 'Next pw of C 80 b')$$, '42501'),
('change_password', 'new password too short', 'app_user', $$SELECT utilix.change_password('Initial pw of C 80', 'short')$$, '22023'),
('change_password', 'huge new password (1 MB)', 'app_user', $$SELECT utilix.change_password('Initial pw of C 80', repeat('p', 1000000))$$, '22023'),
('change_password', 'new password with a control character', 'app_user', $$SELECT utilix.change_password('Initial pw of C 80', E'Next pw of C\t80 c')$$, '22023'),
('change_password', 'new password containing the login', 'app_user', $$SELECT utilix.change_password('Initial pw of C 80', 'xx carol80 yy zz')$$, '22023'),
('change_password', 'new password equal to the current one', 'app_user', $$SELECT utilix.change_password('Initial pw of C 80', 'Initial pw of C 80')$$, '22023'),
('change_password', 'wrong current password (NULL and a warning)', 'app_user', $$SELECT utilix.change_password('wrong current pw 80', 'Next pw of C 80 d')$$, 'null'),
('change_password', 'huge wrong current password (1 MB)', 'app_user', $$SELECT utilix.change_password(repeat('w', 1000000), 'Next pw of C 80 d')$$, 'null'),
('create_user', 'invalid login (empty)', 'app_admin', $$SELECT utilix.create_user('', 'Initial pw of E 80')$$, '22023'),
('create_user', 'invalid login (huge, 1 MB)', 'app_admin', $$SELECT utilix.create_user(repeat('e', 1000000), 'Initial pw of E 80')$$, '22023'),
('create_user', 'invalid login (SQL text)', 'app_admin', $$SELECT utilix.create_user('x''; DROP TABLE bi80_t; --', 'Initial pw of E 80')$$, '22023'),
('create_user', 'password too short', 'app_admin', $$SELECT utilix.create_user('erin80', 'short')$$, '22023'),
('create_user', 'huge password (1 MB)', 'app_admin', $$SELECT utilix.create_user('erin80', repeat('p', 1000000))$$, '22023'),
('create_user', 'password with a C1 control character (U+0085)', 'app_admin', $$SELECT utilix.create_user('erin80', E'Initial\u0085pw of E 80')$$, '22023'),
('create_user', 'unknown right', 'app_admin', $$SELECT utilix.create_user('erin80', 'Initial pw of E 80', '{superpower}')$$, '22023'),
('create_user', 'NULL element in rights', 'app_admin', $$SELECT utilix.create_user('erin80', 'Initial pw of E 80', ARRAY['read', NULL])$$, '22023'),
('create_user', '10000 rights', 'app_admin', $$SELECT utilix.create_user('erin80', 'Initial pw of E 80', array_fill('read'::text, ARRAY[10000]))$$, 'ok'),
('create_user', 'unknown clearance', 'app_admin', $$SELECT utilix.create_user('erin80', 'Initial pw of E 80', '{read}', 'topmost')$$, '22023'),
('create_user', 'existing login', 'app_admin', $$SELECT utilix.create_user('carol80', 'Initial pw of E 80')$$, '23505'),
('disable_user', 'unknown user', 'app_admin', $$SELECT utilix.disable_user('nobody80')$$, '22023'),
('disable_user', 'empty login', 'app_admin', $$SELECT utilix.disable_user('')$$, '22023'),
('disable_user', 'huge login (1 MB)', 'app_admin', $$SELECT utilix.disable_user(repeat('l', 1000000))$$, '22023'),
('disable_user', 'user of another tenant', 'app_b_admin', $$SELECT utilix.disable_user('carol80')$$, '22023'),
('enable_user', 'unknown user', 'app_admin', $$SELECT utilix.enable_user('nobody80')$$, '22023'),
('drop_user', 'unknown user', 'app_admin', $$SELECT utilix.drop_user('nobody80')$$, '22023'),
('drop_user', 'the admin itself', 'app_admin', $$SELECT utilix.drop_user('root80')$$, '55000'),
('drop_user', 'user of another tenant', 'app_b_admin', $$SELECT utilix.drop_user('carol80')$$, '22023'),
('reset_password', 'unknown user', 'app_admin', $$SELECT utilix.reset_password('nobody80', 'Reset pw of C 80 b')$$, '22023'),
('reset_password', 'password too short', 'app_admin', $$SELECT utilix.reset_password('carol80', 'short')$$, '22023'),
('reset_password', 'huge password (1 MB)', 'app_admin', $$SELECT utilix.reset_password('carol80', repeat('p', 1000000))$$, '22023'),
('grant_rights', 'unknown right', 'app_admin', $$SELECT utilix.grant_rights('carol80', '{superpower}')$$, '22023'),
('grant_rights', 'empty rights', 'app_admin', $$SELECT utilix.grant_rights('carol80', '{}')$$, 'ok'),
('grant_rights', '10000 rights', 'app_admin', $$SELECT utilix.grant_rights('carol80', array_fill('audit'::text, ARRAY[10000]))$$, 'ok'),
('grant_rights', 'unknown user', 'app_admin', $$SELECT utilix.grant_rights('nobody80', '{read}')$$, '22023'),
('grant_rights', 'two-dimensional rights', 'app_admin', $$SELECT utilix.grant_rights('carol80', '{{read},{write}}')$$, '22023'),
('revoke_rights', 'two-dimensional rights', 'app_admin', $$SELECT utilix.revoke_rights('carol80', '{{read},{write}}')$$, 'ok|22023'),
('revoke_rights', 'unknown right', 'app_admin', $$SELECT utilix.revoke_rights('carol80', '{superpower}')$$, '22023'),
('revoke_rights', 'NULL element in rights', 'app_admin', $$SELECT utilix.revoke_rights('carol80', ARRAY[NULL::text])$$, '22023'),
('set_clearance', 'unknown clearance', 'app_admin', $$SELECT utilix.set_clearance('carol80', 'topmost')$$, '22023'),
('set_clearance', 'empty clearance', 'app_admin', $$SELECT utilix.set_clearance('carol80', '')$$, '22023'),
('set_clearance', 'huge clearance (1 MB)', 'app_admin', $$SELECT utilix.set_clearance('carol80', repeat('c', 1000000))$$, '22023'),
('allow_admin_network', 'malformed network (text)', 'app_admin', $$SELECT utilix.allow_admin_network('not a network')$$, '22P02'),
('allow_admin_network', 'host bits set (10.80.0.1/8)', 'app_admin', $$SELECT utilix.allow_admin_network('10.80.0.1/8')$$, '22P02'),
('allow_admin_network', 'malformed network through a text cast', 'app_admin', $$SELECT utilix.allow_admin_network('300.1.2.3/8'::text::cidr)$$, '22P02'),
('allow_admin_network', 'network already allowed', 'app_admin', $$SELECT utilix.allow_admin_network('10.80.0.0/16')$$, 'ok'),
('revoke_admin_network', 'network not in the list', 'app_admin', $$SELECT utilix.revoke_admin_network('192.0.2.0/24')$$, '22023'),
('revoke_admin_network', 'malformed network', 'app_admin', $$SELECT utilix.revoke_admin_network('10.80/33')$$, '22P02'),
('create_tenant_admin', 'unknown tenant', 'op', $$SELECT utilix.create_tenant_admin(999999999, 'x80', 'Initial pw of X 80')$$, '22023'),
('create_tenant_admin', 'terminated tenant', 'op', format($$SELECT utilix.create_tenant_admin(%s, 'x80', 'Initial pw of X 80')$$, :tg), '22023'),
('create_tenant_admin', 'invalid login', 'op', format($$SELECT utilix.create_tenant_admin(%s, 'bad login!', 'Initial pw of X 80')$$, :tb), '22023'),
('create_tenant_admin', 'password too short', 'op', format($$SELECT utilix.create_tenant_admin(%s, 'x80', 'short')$$, :tb), '22023'),
('create_tenant_admin', 'existing login', 'op', format($$SELECT utilix.create_tenant_admin(%s, 'root80', 'Initial pw of X 80')$$, :ta), '23505'),
('allow_tenant_admin_network', 'unknown tenant', 'op', $$SELECT utilix.allow_tenant_admin_network(999999999, '10.0.0.0/8')$$, '22023'),
('allow_tenant_admin_network', 'terminated tenant', 'op', format($$SELECT utilix.allow_tenant_admin_network(%s, '10.0.0.0/8')$$, :tg), '22023'),
('allow_tenant_admin_network', 'malformed network', 'op', format($$SELECT utilix.allow_tenant_admin_network(%s, 'ten.0.0.0/8')$$, :tb), '22P02'),
-- retention and offboarding
('set_retention', 'keep -1 day', 'op', $$SELECT utilix.set_retention('bi80_t', interval '-1 day', 'at')$$, '22023'),
('set_retention', 'keep 0', 'op', $$SELECT utilix.set_retention('bi80_t', interval '0', 'at')$$, '22023'),
('set_retention', 'keep 1 month -31 days (negative in days)', 'op', $$SELECT utilix.set_retention('bi80_t', interval '1 month -31 days', 'at')$$, '22023'),
('set_retention', 'huge keep (10000 years), then purge_preview()', 'op', $$SELECT pg_temp.bi80_then($q$SELECT utilix.set_retention('bi80_t', interval '10000 years', 'at')$q$, 'SELECT count(*) FROM utilix.purge_preview()')$$, '22023|22008'),
('set_retention', 'huge keep (10000 years), then run_retention()', 'op', $$SELECT pg_temp.bi80_then($q$SELECT utilix.set_retention('bi80_t', interval '10000 years', 'at')$q$, 'SELECT count(*) FROM utilix.run_retention()')$$, '22023|22008'),
('set_retention', 'huge keep (10000 years), the call alone', 'op', $$SELECT utilix.set_retention('bi80_t', interval '10000 years', 'at')$$, '22023|22008'),
('set_retention', 'table that is not protected', 'op', $$SELECT utilix.set_retention('bi80_plain_t', '1 year', 'at')$$, '55000'),
('set_retention', 'a partition', 'op', $$SELECT utilix.set_retention('bi80_p1', '1 year', 'at')$$, '42809'),
('set_retention', 'oid of a dropped table', 'op', format($$SELECT utilix.set_retention(%s::oid::regclass, '1 year', 'at')$$, :gone_oid), '55000'),
('set_retention', 'unknown column', 'op', $$SELECT utilix.set_retention('bi80_t', '1 year', 'no_such_column')$$, '42703'),
('set_retention', 'column of type text', 'op', $$SELECT utilix.set_retention('bi80_t', '1 year', 'j')$$, '42804'),
('drop_retention', 'table without a policy', 'op', $$SELECT utilix.drop_retention('bi80_nopol')$$, '22023'),
('drop_retention', 'table that is not protected', 'op', $$SELECT utilix.drop_retention('bi80_plain_t')$$, '55000'),
('set_tenant_retention', 'keep -1 day', 'op', format($$SELECT utilix.set_tenant_retention(%s, 'bi80_t', interval '-1 day')$$, :ta), '22023'),
('set_tenant_retention', 'unknown tenant', 'op', $$SELECT utilix.set_tenant_retention(999999999, 'bi80_t', '1 year')$$, '22023'),
('set_tenant_retention', 'table without a policy', 'op', format($$SELECT utilix.set_tenant_retention(%s, 'bi80_nopol', '1 year')$$, :ta), '55000'),
('set_tenant_retention', 'huge keep (10000 years), the call alone', 'op', format($$SELECT utilix.set_tenant_retention(%s, 'bi80_t', interval '10000 years')$$, :ta), '22023|22008'),
('set_tenant_retention', 'huge keep (10000 years), then purge_preview()', 'op', format($$SELECT pg_temp.bi80_then($q$SELECT utilix.set_tenant_retention(%s, 'bi80_t', interval '10000 years')$q$, 'SELECT count(*) FROM utilix.purge_preview()')$$, :ta), '22023|22008'),
('purge_preview', 'table that is not protected', 'op', $$SELECT count(*) FROM utilix.purge_preview('bi80_plain_t')$$, '55000'),
('purge_preview', 'a partition', 'op', $$SELECT count(*) FROM utilix.purge_preview('bi80_p1')$$, '42809'),
('run_retention', 'table without a policy', 'op', $$SELECT count(*) FROM utilix.run_retention('bi80_nopol')$$, '22023'),
('run_retention', 'oid of a dropped table', 'op', format($$SELECT count(*) FROM utilix.run_retention(%s::oid::regclass)$$, :gone_oid), '55000'),
('hold_tenant', 'empty reason', 'op', format($$SELECT utilix.hold_tenant(%s, '')$$, :ta), '22004'),
('hold_tenant', 'blank reason', 'op', format($$SELECT utilix.hold_tenant(%s, '   ')$$, :ta), '22004'),
('hold_tenant', 'huge reason (1 MB)', 'op', format($$SELECT utilix.hold_tenant(%s, repeat('r', 1000000))$$, :ta), 'ok'),
('hold_tenant', 'unknown tenant', 'op', $$SELECT utilix.hold_tenant(999999999, 'bi80')$$, '22023'),
('release_hold', 'tenant not on hold', 'op', format($$SELECT utilix.release_hold(%s)$$, :ta), '22023'),
('terminate_tenant', 'grace -1 day', 'op', format($$SELECT utilix.terminate_tenant(%s, interval '-1 day')$$, :ta), '22023'),
('terminate_tenant', 'grace 0', 'op', format($$SELECT utilix.terminate_tenant(%s, interval '0')$$, :ta), '22023'),
('terminate_tenant', 'huge grace (1000000 years)', 'op', format($$SELECT utilix.terminate_tenant(%s, interval '1000000 years')$$, :ta), '22008'),
('terminate_tenant', 'unknown tenant', 'op', $$SELECT utilix.terminate_tenant(999999999)$$, '22023'),
('terminate_tenant', 'tenant already terminated', 'op', format($$SELECT utilix.terminate_tenant(%s)$$, :tg), '55000'),
('cancel_termination', 'active tenant', 'op', format($$SELECT utilix.cancel_termination(%s)$$, :ta), '55000'),
('cancel_termination', 'unknown tenant', 'op', $$SELECT utilix.cancel_termination(999999999)$$, '22023'),
('export_tenant', 'active tenant', 'op', format($$SELECT count(*) FROM utilix.export_tenant(%s)$$, :ta), '55000'),
('export_tenant', 'unknown tenant', 'op', $$SELECT count(*) FROM utilix.export_tenant(-1)$$, '22023'),
('export_manifest', 'active tenant', 'op', format($$SELECT count(*) FROM utilix.export_manifest(%s)$$, :ta), '55000'),
-- the access history
('verify_access_log', 'since infinity', 'op', $$SELECT count(*) FROM utilix.verify_access_log(NULL, 'infinity')$$, 'ok'),
('verify_access_log', 'since -infinity', 'op', $$SELECT count(*) FROM utilix.verify_access_log(NULL, '-infinity')$$, 'ok'),
('verify_access_log', 'unknown tenant', 'op', $$SELECT count(*) FROM utilix.verify_access_log(999999999)$$, 'ok'),
('verify_access_log', 'no context, no operator', 'plain', $$SELECT count(*) FROM utilix.verify_access_log()$$, '42501'),
('verify_access_log', 'context without the audit right', 'app_user', $$SELECT count(*) FROM utilix.verify_access_log()$$, '42501'),
('verify_access_log', 'auditor of another tenant', 'app_audit', format($$SELECT count(*) FROM utilix.verify_access_log(%s)$$, :tb), '42501'),
('verify_access_log', 'password-change-only token', 'app_pco', $$SELECT count(*) FROM utilix.verify_access_log()$$, '42501'),
('export_access_log', 'range that ends before it starts', 'op', format($$SELECT count(*) FROM utilix.export_access_log(%s, now(), now() - interval '1 second')$$, :ta), '22023'),
('export_access_log', 'infinite range', 'op', format($$SELECT count(*) FROM utilix.export_access_log(%s, '-infinity', 'infinity')$$, :ta), 'ok'),
('export_access_log', 'bigint min tenant', 'op', $$SELECT count(*) FROM utilix.export_access_log(-9223372036854775808, '-infinity', 'infinity')$$, 'ok'),
('export_access_log', 'no context, no operator', 'plain', format($$SELECT count(*) FROM utilix.export_access_log(%s, '-infinity', 'infinity')$$, :ta), '42501'),
('export_access_log', 'auditor of another tenant', 'app_audit', format($$SELECT count(*) FROM utilix.export_access_log(%s, '-infinity', 'infinity')$$, :tb), '42501'),
('access_log_canonical', 'row of NULLs', 'plain', $$SELECT utilix.access_log_canonical(ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::utilix.access_log)$$, 'ok'),
('access_log_canonical', 'huge fields (1 MB)', 'plain', $$SELECT length(utilix.access_log_canonical(jsonb_populate_record(NULL::utilix.access_log, jsonb_build_object('query', repeat('q', 1000000), 'at', 'infinity'))))$$, 'ok'),
('access_log_flush', 'negative timeout', 'plain', $$SELECT utilix.access_log_flush(-1)$$, 'ok'),
('access_log_flush', 'integer min timeout', 'plain', $$SELECT utilix.access_log_flush(-2147483648)$$, 'ok'),
('set_access_log', 'unknown mode', 'op', $$SELECT utilix.set_access_log('bi80_t', 'bogus')$$, '22023'),
('set_access_log', 'empty mode', 'op', $$SELECT utilix.set_access_log('bi80_t', '')$$, '22023'),
('set_access_log', 'huge mode (1 MB)', 'op', $$SELECT utilix.set_access_log('bi80_t', repeat('m', 1000000))$$, '22023'),
('set_access_log', 'table that is not protected', 'op', $$SELECT utilix.set_access_log('bi80_plain_t', 'off')$$, '55000'),
('set_access_log', 'oid of a dropped table', 'op', format($$SELECT utilix.set_access_log(%s::oid::regclass, 'off')$$, :gone_oid), '55000'),
('load_access_log_spill', 'empty input', 'op', $$SELECT utilix.load_access_log_spill('\x')$$, '22023'),
('load_access_log_spill', 'one byte', 'op', $$SELECT utilix.load_access_log_spill('\x00')$$, '22023'),
('load_access_log_spill', 'huge garbage (1 MB)', 'op', $$SELECT utilix.load_access_log_spill(convert_to(repeat('g', 1000000), 'UTF8'))$$, '22023'),
('load_access_log_spill', 'a header without its seal', 'op', format($$SELECT utilix.load_access_log_spill(%L::bytea)$$, :'spill_header'), '22023'),
('load_access_log_spill', 'header, a partial record, a seal', 'op', format($$SELECT utilix.load_access_log_spill(%L::bytea || '\x00'::bytea || decode(repeat('00', 32), 'hex'))$$, :'spill_header'), '22023'),
('load_access_log_spill', 'header, a record of zeros, a forged seal', 'op', format($$SELECT utilix.load_access_log_spill(%L::bytea || decode(repeat('00', 3080 + 32), 'hex'))$$, :'spill_header'), 'XX001'),
('load_access_log_spill', 'header of another record size', 'op', format($$SELECT utilix.load_access_log_spill(overlay(%L::bytea PLACING '\x01000000'::bytea FROM 9) || decode(repeat('00', 32), 'hex'))$$, :'spill_header'), '22023'),
-- internal functions, called by the superuser with bad input
('_log_event', 'statement kind (select)', 'super', $$SELECT utilix._log_event('select', NULL, 'ok')$$, '22023'),
('_log_event', 'unknown outcome', 'super', $$SELECT utilix._log_event('admin', NULL, 'maybe')$$, '22023'),
('_log_event', 'huge kind (1 MB)', 'super', $$SELECT utilix._log_event(repeat('k', 1000000), NULL, 'ok')$$, '22023'),
('_log_event', 'huge detail and app_user (1 MB, truncated)', 'super', $$SELECT utilix._log_event('admin', NULL, 'ok', 'bi80 huge ' || repeat('d', 1000000), repeat('u', 1000000))$$, 'ok'),
('_tenant_status', 'unknown tenant', 'super', $$SELECT utilix._tenant_status(999999999)$$, '22023'),
('_sign_token', 'tenant 0', 'super', $$SELECT utilix._sign_token(0, 'x', '1 hour', NULL, NULL, 0)$$, '22023'),
('_sign_token', 'ttl -1 day', 'super', format($$SELECT utilix._sign_token(%s, 'x', '-1 day', NULL, NULL, 0)$$, :ta), '22023'),
('_sign_token', 'huge ttl that wraps the int64 of microseconds (taken for 1 hour)', 'super', format($$SELECT utilix._sign_token(%s, 'x', interval '2147483647 months 4639097239884588032 microseconds', NULL, NULL, 0)$$, :ta), '22023'),
('_sign_token', '33 rights', 'super', format($$SELECT utilix._sign_token(%s, 'x', '1 hour', array_fill('read'::text, ARRAY[33]), NULL, 0)$$, :ta), '54000'),
('_sign_token', 'NULL element in rights', 'super', format($$SELECT utilix._sign_token(%s, 'x', '1 hour', ARRAY['read', NULL], NULL, 0)$$, :ta), '22004'),
('_sign_token', 'upper-case right', 'super', format($$SELECT utilix._sign_token(%s, 'x', '1 hour', '{READ}', NULL, 0)$$, :ta), '22023'),
('_sign_token', 'clearance of 64 characters', 'super', format($$SELECT utilix._sign_token(%s, 'x', '1 hour', NULL, repeat('c', 64), 0)$$, :ta), '22023'),
('_sign_token', 'integer max flags', 'super', format($$SELECT utilix._sign_token(%s, 'x', '1 hour', NULL, NULL, 2147483647)$$, :ta), 'ok'),
('_check_rights_and_clearance', 'unknown right', 'super', $$SELECT utilix._check_rights_and_clearance('{superpower}', NULL)$$, '22023'),
('_oracle_problems', 'oid of a dropped table', 'super', format($$SELECT count(*) FROM utilix._oracle_problems(%s::oid::regclass, 'tenant_id')$$, :gone_oid), 'ok'),
('_integrity_problems', '10000 oids', 'super', $$SELECT count(*) FROM utilix._integrity_problems(array_fill(0::oid, ARRAY[10000]))$$, 'ok'),
('_wrap_new_key', 'tenant 0', 'super', $$SELECT utilix._wrap_new_key(0, 1)$$, '22023'),
('_wrap_new_key', 'negative version', 'super', format($$SELECT utilix._wrap_new_key(%s, -1)$$, :ta), '22023'),
('_ensure_tenant_keys', 'unknown tenant', 'super', $$SELECT utilix._ensure_tenant_keys(999999999)$$, 'null'),
('_rewrap_key', 'wrapped key of 59 bytes', 'super', format($$SELECT utilix._rewrap_key(%s, 1, decode(repeat('00', 59), 'hex'))$$, :ta), 'XX001'),
('_rewrap_key', 'wrapped key of 60 random bytes', 'super', format($$SELECT utilix._rewrap_key(%s, 1, decode(repeat('00', 60), 'hex'))$$, :ta), 'XX001'),
('_rewrap_key', 'key of another tenant', 'super', format($$SELECT utilix._rewrap_key(%s, 1, (SELECT wrapped FROM utilix.data_key WHERE tenant_id = %s AND version = 1))$$, :tb, :ta), 'XX001'),
('_may', 'no context', 'plain', $$SELECT utilix._may('read')$$, '42501'),
('_may', 'huge right (1 MB)', 'app_user', $$SELECT utilix._may(repeat('r', 1000000))$$, 'ok'),
('tenant_if_may', 'no context', 'plain', $$SELECT utilix.tenant_if_may('read')$$, '42501'),
('tenant_if_may', 'huge right (1 MB)', 'app_user', $$SELECT utilix.tenant_if_may(repeat('r', 1000000))$$, 'null'),
('tenant_if_may', 'right of 64 characters that starts with read', 'app_user', $$SELECT utilix.tenant_if_may('read' || repeat('x', 60))$$, 'null'),
('_acting_role_is_member', 'unknown role (huge name)', 'super', $$SELECT utilix._acting_role_is_member(repeat('r', 1000000))$$, 'ok'),
('_login_attempt', 'lockout that overflows the clock', 'super', format($$SELECT utilix._login_attempt(%s, 'bi80-overflow', 1, interval '1000000 years', true)$$, :ta), '22008'),
('_login_attempt', 'negative lockout', 'super', format($$SELECT utilix._login_attempt(%s, 'bi80-overflow', 1, interval '-1 minute', true)$$, :ta), '22023'),
('_login_attempt', 'huge login (1 MB)', 'super', format($$SELECT utilix._login_attempt(%s, repeat('l', 1000000), 5, '1 minute', true)$$, :ta), 'ok'),
('_login_state', 'another tenant''s user, from an admin context', 'app_admin', format($$SELECT (utilix._login_state(%s, 'rootb80')).failures$$, :tb), 'null'),
('_login_state', 'no context', 'plain', format($$SELECT (utilix._login_state(%s, 'carol80')).failures$$, :ta), 'null'),
('login_failure_table', 'from an operator', 'op', $$SELECT count(*) FROM utilix.login_failure_table()$$, 'ok'),
('set_max_clearance', 'unknown clearance', 'op', format($$SELECT utilix.set_max_clearance(%s, 'topmost')$$, :tb), '22023'),
('set_max_clearance', 'unknown tenant', 'op', $$SELECT utilix.set_max_clearance(999999999, 'secret')$$, '22023'),
('set_max_clearance', 'terminated tenant', 'op', format($$SELECT utilix.set_max_clearance(%s, 'secret')$$, :tg), '22023'),
('set_max_clearance', 'from a tenant admin', 'app_admin', format($$SELECT utilix.set_max_clearance(%s, 'secret')$$, :ta), '42501'),
('_hash_password', 'empty password', 'super', $$SELECT utilix._hash_password('')$$, 'ok'),
('_verify_password', 'malformed stored hash', 'super', $$SELECT utilix._verify_password('x', '$scrypt$ln=99,r=1,p=1$AAAA$AAAA')$$, 'ok'),
('_hash_is_current', 'malformed stored hash', 'super', $$SELECT utilix._hash_is_current('garbage')$$, 'ok'),
('_check_password', 'huge password (1 MB)', 'super', $$SELECT utilix._check_password('x', repeat('p', 1000000))$$, '22023'),
('_own_user', 'unknown user', 'super', format($$SELECT utilix._own_user(%s, 'nobody80')$$, :ta), '22023'),
('_require_admin', 'no context', 'super', $$SELECT utilix._require_admin()$$, '42501'),
('_policy_table', 'table that is not protected', 'super', $$SELECT utilix._policy_table('bi80_plain_t')$$, '55000'),
('_access_log_partitions', 'more than ten years', 'super', $$SELECT utilix._access_log_partitions(now(), now() + interval '3661 days')$$, '22008'),
('_access_log_partitions', 'infinite range', 'super', $$SELECT utilix._access_log_partitions('-infinity', 'infinity')$$, '22008'),
('_access_log_partitions', 'range that ends before it starts', 'super', $$SELECT utilix._access_log_partitions(now(), now() - interval '10 days')$$, 'ok'),
('_audit_scope', 'no context', 'super', format($$SELECT utilix._audit_scope(%s)$$, :ta), 'ok'),
('_purge_tenant', 'active tenant', 'super', format($$SELECT utilix._purge_tenant(%s)$$, :ta), '55000'),
('_purge_tenant', 'unknown tenant', 'super', $$SELECT utilix._purge_tenant(999999999)$$, '55000'),
('_leaves', 'oid of a dropped table', 'super', format($$SELECT count(*) FROM utilix._leaves(%s::oid::regclass)$$, :gone_oid), 'ok'),
('_invalidate_cache', 'called directly', 'super', $$SELECT utilix._invalidate_cache()$$, '39P01'),
('_seal_row', 'called directly', 'plain', $$SELECT utilix._seal_row()$$, '39P01'),
('_guard_tenant', 'called directly', 'plain', $$SELECT utilix._guard_tenant()$$, '39P01'),
('_check_rights', 'called directly', 'plain', $$SELECT utilix._check_rights()$$, '39P01'),
('_check_references', 'called directly', 'super', $$SELECT utilix._check_references()$$, '0A000'),
('_on_ddl_end', 'called directly', 'super', $$SELECT utilix._on_ddl_end()$$, '0A000'),
('_on_sql_drop', 'called directly', 'super', $$SELECT utilix._on_sql_drop()$$, '0A000'),
('_key_check_dedup', 'called directly', 'super', $$SELECT utilix._key_check_dedup()$$, '0A000'),
('_access_log_append_only', 'called directly', 'super', $$SELECT utilix._access_log_append_only()$$, '0A000'),
('_access_log_chain_guard', 'called directly', 'super', $$SELECT utilix._access_log_chain_guard()$$, '0A000'),
('_eq_support', 'internal argument from SQL', 'super', $$SELECT utilix._eq_support(NULL::internal)$$, '42846');

UPDATE bi80_case SET bug = 'B3' WHERE class LIKE 'huge ttl that wraps%';
UPDATE bi80_case SET bug = 'B4' WHERE fn = 'bind_role' AND class IN ('oid of a dropped role', 'role 0');
UPDATE bi80_case SET bug = 'B2' WHERE class LIKE 'armour of an encrypted % read as %' AND expect <> 'ok|22...|XX001';
UPDATE bi80_case SET bug = 'B7' WHERE class LIKE 'huge keep (10000 years)%';
UPDATE bi80_case SET bug = 'B8' WHERE class LIKE 'empty tenant column name%';
UPDATE bi80_case SET bug = 'B9' WHERE fn = 'grant_rights' AND class = 'two-dimensional rights';

-- ------------------------------------------------------------------ wrong principals
-- Every function of the schema, by who may call it (README, "Reference: SQL
-- functions and views", and 90_grants.sql).  Everything not listed for
-- PUBLIC must refuse a role without EXECUTE with 42501 "permission denied
-- for function", whatever its arguments (all NULL here).
CREATE TEMP TABLE bi80_public (fn regprocedure PRIMARY KEY);
INSERT INTO bi80_public
SELECT p.oid FROM pg_proc p
 WHERE p.pronamespace = 'utilix'::regnamespace
   AND (p.proname IN ('set_context', 'clear_context', 'current_tenant', 'current_app_user', 'context_info',
                      '_guard_tenant', '_seal_row', '_check_rights', '_may', 'tenant_if_may',
                      'encrypted_text_in', 'encrypted_text_out', 'encrypted_bytea_in', 'encrypted_bytea_out',
                      'encrypted_jsonb_in', 'encrypted_jsonb_out', 'decrypt', '_eq', '_bidx_eq', '_bidx_hash',
                      '_bidx_match', '_blind_probe', 'is_sealed', 'key_version', '_login_state',
                      'login', 'change_password', 'create_user', 'disable_user', 'enable_user', 'drop_user',
                      'reset_password', 'grant_rights', 'revoke_rights', 'set_clearance',
                      'allow_admin_network', 'revoke_admin_network',
                      'verify_access_log', 'export_access_log', 'access_log_canonical', 'access_log_flush'));
CREATE TEMP TABLE bi80_grantee (fn regprocedure PRIMARY KEY, grantee text NOT NULL);
INSERT INTO bi80_grantee
SELECT p.oid, CASE WHEN p.proname = 'issue_context' THEN 'issuer' ELSE 'op' END
  FROM pg_proc p
 WHERE p.pronamespace = 'utilix'::regnamespace
   AND p.proname IN ('issue_context', 'create_tenant', 'bind_role', 'unbind_role', 'protect', 'unprotect',
                     'protect_schema', 'unprotect_schema', 'master_key_status', 'adopt_master_key',
                     'crypto_hkdf', 'crypto_hmac', 'crypto_seal', 'crypto_open', 'crypto_random',
                     'encrypt_column', 'decrypt_column', 'rotate_tenant_key', 'reencrypt', 'shred_tenant_keys',
                     'rewrap_keys', 'create_tenant_admin', 'allow_tenant_admin_network', 'set_max_clearance',
                     'login_failure_table',
                     'set_retention', 'drop_retention', 'set_tenant_retention', 'purge_preview', 'run_retention',
                     'hold_tenant', 'release_hold', 'terminate_tenant', 'cancel_termination', 'export_tenant',
                     'export_manifest', 'purge_due_tenants', 'verify_certificates',
                     'set_access_log', 'access_log_spill', 'load_access_log_spill', 'run_access_log_maintenance',
                     '_access_log_status');

-- a call of each function (a set-returning one in FROM): with the valid
-- arguments of the NULL sweep, or else every argument NULL.  (A STRICT
-- function called with a NULL constant is folded to NULL by the planner
-- before any privilege check: that is PostgreSQL's, and harmless.)
CREATE TEMP TABLE bi80_refused AS
SELECT p.oid::regprocedure AS fn, g.grantee,
       CASE WHEN p.proretset THEN 'SELECT count(*) FROM ' ELSE 'SELECT ' END
       || CASE WHEN p.prorettype::regtype::text LIKE 'utilix.encrypted_%' THEN 'CASE WHEN ' ELSE '' END
       || p.oid::regproc::text || '('
       || coalesce((SELECT string_agg(CASE WHEN p.proisstrict THEN '(' || f.args[i] || ')' ELSE 'NULL' END || '::' || format_type(t, NULL), ', ' ORDER BY i)
                      FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)), '')
       || ')'
       || CASE WHEN p.prorettype::regtype::text LIKE 'utilix.encrypted_%' THEN ' IS NULL THEN NULL ELSE 1 END' ELSE '' END AS q
  FROM pg_proc p LEFT JOIN bi80_grantee g ON g.fn = p.oid LEFT JOIN bi80_fn f ON f.fn = p.oid
 WHERE p.pronamespace = 'utilix'::regnamespace
   AND p.oid NOT IN (SELECT fn FROM bi80_public)
   AND NOT ('internal'::regtype = ANY (p.proargtypes::regtype[]));

-- The tenant admin functions (PUBLIC; the admin right of the context is
-- checked inside): without a context, with an operator role and no context,
-- with a context that lacks the admin right (a user, an auditor), and with a
-- password-change-only token, every one refuses with 42501.
CREATE TEMP TABLE bi80_admin_fn (fn text PRIMARY KEY, q text NOT NULL);
INSERT INTO bi80_admin_fn VALUES
    ('create_user', $$SELECT utilix.create_user('erin80', 'Initial pw of E 80')$$),
    ('disable_user', $$SELECT utilix.disable_user('dave80')$$),
    ('enable_user', $$SELECT utilix.enable_user('dave80')$$),
    ('drop_user', $$SELECT utilix.drop_user('dave80')$$),
    ('reset_password', $$SELECT utilix.reset_password('dave80', 'Reset pw of D 80 a')$$),
    ('grant_rights', $$SELECT utilix.grant_rights('dave80', '{admin}')$$),
    ('revoke_rights', $$SELECT utilix.revoke_rights('dave80', '{read}')$$),
    ('set_clearance', $$SELECT utilix.set_clearance('dave80', 'secret')$$),
    ('allow_admin_network', $$SELECT utilix.allow_admin_network('0.0.0.0/0')$$),
    ('revoke_admin_network', $$SELECT utilix.revoke_admin_network('10.80.0.0/16')$$);
CREATE TEMP TABLE bi80_admin_who (who text PRIMARY KEY, what text);
INSERT INTO bi80_admin_who VALUES
    ('plain', 'no context'), ('op', 'an operator, no context'), ('app_user', 'a context without the admin right'),
    ('app_audit', 'an auditor''s context'), ('app_pco', 'a password-change-only token');

-- ------------------------------------------------------------------ extreme values in every argument position
-- For each function of the NULL sweep and each argument position: the
-- extreme values of the argument's type (empty, huge, out of range,
-- malformed), the other arguments valid.  Exact SQLSTATEs are asserted in
-- the cases above; here every result must be clean (see the invariants).
CREATE TEMP TABLE bi80_extreme (typ regtype, label text, expr text);
INSERT INTO bi80_extreme VALUES
    ('bigint', '0', '0'), ('bigint', '-1', '-1'),
    ('bigint', 'bigint max', '9223372036854775807'), ('bigint', 'bigint min', '-9223372036854775808'),
    ('integer', '0', '0'), ('integer', '-1', '-1'),
    ('integer', 'integer max', '2147483647'), ('integer', 'integer min', '-2147483648'),
    ('text', 'empty', ''''''), ('text', '1 MB', 'repeat(''x'', 1000000)'),
    ('text', 'control characters', 'E''\x01\n\x7f'''), ('text', 'token-like', '''utx1.x.y'''),
    ('name', 'empty', ''''''), ('name', '1 MB (truncated to 63)', 'repeat(''n'', 1000000)'),
    ('bytea', 'empty', '''\x'''), ('bytea', '1 MB', 'convert_to(repeat(''b'', 1000000), ''UTF8'')'),
    ('text[]', 'empty', '''{}'''), ('text[]', '10000 elements', 'array_fill(''read''::text, ARRAY[10000])'),
    ('text[]', 'NULL element', 'ARRAY[NULL::text]'), ('text[]', 'two-dimensional', '''{{read},{write}}'''),
    ('oid[]', 'empty', '''{}'''), ('oid[]', '10000 elements', 'array_fill(0::oid, ARRAY[10000])'),
    ('interval', '-1 day', '''-1 day'''), ('interval', '0', '''0'''), ('interval', '1000000 years', '''1000000 years'''),
    ('timestamptz', 'infinity', '''infinity'''), ('timestamptz', '-infinity', '''-infinity'''),
    ('regclass', 'oid of a dropped table', :'gone_oid' || '::oid'), ('regclass', 'view', '''bi80_v'''),
    ('regclass', 'table that is not protected', '''bi80_plain_t'''), ('regclass', 'utilix catalog', '''utilix.tenant'''),
    ('regrole', 'oid of a dropped role', :'gone_role' || '::oid'), ('regrole', 'superuser', '''bi80_super'''),
    ('cidr', 'every IPv4 address', '''0.0.0.0/0'''), ('cidr', 'every IPv6 address', '''::/0'''),
    ('inet', 'IPv6 loopback', '''::1'''),
    ('cstring', 'empty', ''''''), ('cstring', '1 MB', 'repeat(''c'', 1000000)'),
    ('utilix.encrypted_text', 'empty', '''''::text'), ('utilix.encrypted_text', '1 MB', 'repeat(''e'', 1000000)'),
    ('utilix.encrypted_bytea', 'empty', '''\x''::bytea'), ('utilix.encrypted_bytea', 'magic only', quote_literal(:'sealed_short') || '::bytea'),
    ('utilix.encrypted_bytea', 'tampered sealed value', quote_literal(:'sealed_bad') || '::bytea'),
    ('utilix.encrypted_jsonb', 'empty object', '''{}''::jsonb'), ('utilix.encrypted_jsonb', '1 MB', 'to_jsonb(repeat(''j'', 1000000))'),
    ('jsonb', '1 MB', 'to_jsonb(repeat(''j'', 1000000))'),
    ('utilix.retention_policy', 'row of NULLs', 'ROW(NULL, NULL, NULL, NULL, NULL, NULL)'),
    ('utilix.retention_policy', 'policy of a dropped table', 'ROW(''public'', ''bi80_no_such_table'', ''at'', ''1 year'', now(), ''x'')'),
    ('utilix.deletion_certificate', 'row of NULLs', 'ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)'),
    ('utilix.access_log', 'row of NULLs', 'ROW(' || array_to_string(array_fill('NULL'::text, ARRAY[21]), ', ') || ')');

CREATE TEMP TABLE bi80_xcase AS
SELECT f.fn, f.who, g.pos, x.label,
       CASE WHEN p.proretset THEN 'SELECT count(*) FROM ' ELSE 'SELECT ' END
       || CASE WHEN p.prorettype::regtype::text LIKE 'utilix.encrypted_%' THEN 'CASE WHEN ' ELSE '' END
       || p.oid::regproc::text || '('
       || (SELECT string_agg('(' || CASE WHEN a.i = g.pos THEN x.expr ELSE f.args[a.i] END || ')::'
                             || format_type(p.proargtypes[a.i - 1], NULL), ', ' ORDER BY a.i)
             FROM generate_series(1, p.pronargs) a(i))
       || ')'
       || CASE WHEN p.prorettype::regtype::text LIKE 'utilix.encrypted_%' THEN ' IS NULL THEN NULL ELSE 1 END' ELSE '' END AS q
  FROM bi80_fn f JOIN pg_proc p ON p.oid = f.fn
 CROSS JOIN LATERAL generate_series(1, p.pronargs) g(pos)
  JOIN bi80_extreme x ON x.typ = p.proargtypes[g.pos - 1]
 -- a flush waits for the writer up to its timeout: no huge timeouts
 WHERE NOT (f.fn = 'utilix.access_log_flush(integer)'::regprocedure AND x.label = 'integer max')
   -- the statement _exec_as_owner runs comes from utilix's own code: a syntax
   -- error quoting a malformed one is its answer (superusers only may call it)
   AND NOT (f.fn = 'utilix._exec_as_owner(regclass,text,tid[],boolean)'::regprocedure AND g.pos = 2);

-- ------------------------------------------------------------------ the sweep
SELECT pg_sleep(1.1) \g /dev/null          -- tok_short has expired now
CREATE TEMP TABLE bi80_fp0 AS SELECT pg_temp.bi80_fp() AS fp;
CREATE FUNCTION pg_temp.bi80_class(r text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN r IN ('ok', 'null') THEN r ELSE split_part(r, ':', 1) END
$$;
CREATE TEMP TABLE bi80_null_out AS
    SELECT c.*, (SELECT p.proargnames[c.pos] FROM pg_proc p WHERE p.oid = c.fn) AS argname,
           coalesce(e.expect, CASE WHEN c.pos = 0 THEN NULL WHEN c.strict THEN 'null' ELSE '22004' END) AS expect, e.bug,
           pg_temp.bi80_run(c.who, c.q) AS result
      FROM bi80_nullcase c LEFT JOIN bi80_null_expect e ON e.fn = c.fn AND e.pos = c.pos
     ORDER BY c.fn::text, c.pos;
CREATE TEMP TABLE bi80_case_out AS
    SELECT c.*, pg_temp.bi80_run(c.who, c.q) AS result FROM bi80_case c ORDER BY c.n;
CREATE TEMP TABLE bi80_refused_out AS
    SELECT r.fn, w.who, pg_temp.bi80_run(w.who, r.q) AS result,
           format('42501: permission denied for function %s', (SELECT p.proname FROM pg_proc p WHERE p.oid = r.fn)) AS want
      FROM bi80_refused r
      CROSS JOIN (VALUES (1, 'plain'), (2, 'app_admin'), (3, 'gw'), (4, 'issuer'), (5, 'op')) w(k, who)
     WHERE w.who IS DISTINCT FROM r.grantee
     ORDER BY r.fn::text, w.k;
CREATE TEMP TABLE bi80_admin_out AS
    SELECT f.fn, w.who, w.what, pg_temp.bi80_run(w.who, f.q) AS result
      FROM bi80_admin_fn f CROSS JOIN bi80_admin_who w ORDER BY f.fn, w.who;
CREATE TEMP TABLE bi80_x_out AS
    SELECT x.*, pg_temp.bi80_run(x.who, x.q) AS result FROM bi80_xcase x ORDER BY x.fn::text, x.pos, x.label;

-- the fixed tests below: partial changes (12), the invariants (9), the session (3)
SELECT plan((SELECT count(*) FROM bi80_null_out)::int + (SELECT count(*) FROM bi80_case_out)::int
            + (SELECT count(DISTINCT fn) FROM bi80_refused_out)::int + (SELECT count(*) FROM bi80_admin_fn)::int
            + (SELECT count(DISTINCT fn) FROM bi80_x_out)::int + 12 + 9 + 4);

-- ------------------------------------------------------------------ NULL in every position
SELECT CASE WHEN pos = 0 AND expect IS NULL
            THEN matches(pg_temp.bi80_class(result), '^(ok|null)$', format('%s: the valid call of the sweep is accepted', fn))
            WHEN pos = 0
            THEN is(pg_temp.bi80_class(result), expect, format('%s: the call of the sweep gives %s', fn, expect))
            ELSE is(pg_temp.bi80_class(result), expect,
                    format('%s: NULL %s gives %s%s', fn, coalesce(argname, '$' || pos), expect,
                           CASE WHEN bug IS NOT NULL THEN ' (doc/bad-inputs.md ' || bug || ')' ELSE '' END)) END
  FROM (SELECT * FROM bi80_null_out ORDER BY fn::text, pos) s;

-- ------------------------------------------------------------------ empty, huge, malformed values; contexts
SELECT matches(pg_temp.bi80_class(result), '^(' || expect || ')$',
               format('%s: %s (%s) gives %s%s', fn, class, who, expect,
                      CASE WHEN bug IS NOT NULL THEN ' (doc/bad-inputs.md ' || bug || ')' ELSE '' END))
  FROM (SELECT * FROM bi80_case_out ORDER BY n) s;

-- ------------------------------------------------------------------ wrong principals
SELECT is(got, want, format('%s: 42501 "permission denied for function" for %s', fn, whos))
  FROM (SELECT fn, array_agg(result ORDER BY who) AS got, array_agg(want ORDER BY who) AS want,
               string_agg(who, ', ' ORDER BY who) AS whos
          FROM bi80_refused_out GROUP BY fn ORDER BY fn::text) s;
SELECT is(got, array_fill('42501'::text, ARRAY[cardinality(got)]),
          format('%s: 42501 for %s', fn, whats))
  FROM (SELECT fn, array_agg(pg_temp.bi80_class(result) ORDER BY who) AS got,
               string_agg(what, ', ' ORDER BY who) AS whats
          FROM bi80_admin_out GROUP BY fn ORDER BY fn) s;

-- ------------------------------------------------------------------ extreme values: every result clean
-- clean: no XX000 (nor another XX but XX001, a damaged value), no bare
-- P0001, no syntax error of generated SQL (42601), no array error (2202E),
-- no NOT NULL violation of a catalog (23502) outside internal functions
SELECT is(bad, '{}'::text[],
          format('%s: %s extreme values in %s argument positions, every result clean', fn, n, npos))
  FROM (SELECT fn, count(*) AS n, count(DISTINCT pos) AS npos,
               coalesce(array_agg(format('$%s %s: %s', pos, label, left(result, 120)) ORDER BY pos, label)
                          FILTER (WHERE result ~ '^(XX00[02-9]|XX0[1-9].|P0001|42601|2202E|42883): '
                                     OR (result ~ '^23502: ' AND fn::text !~ '^utilix\._(auth_event|lifecycle)\(')),
                        '{}') AS bad
          FROM bi80_x_out GROUP BY fn ORDER BY fn::text) s;

-- ------------------------------------------------------------------ never a partial change
-- protect() that fails late (the foreign key to utilix.tenant, after the
-- column was altered): the table is as it was
SELECT throws_ok($$SELECT utilix.protect('bi80_badfk')$$, '23503', NULL,
                 'protect(): a table whose tenant ids name no tenant is refused (23503)');
SELECT is((SELECT format('%s %s %s', a.attnotnull, a.atthasdef, c.relrowsecurity)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE a.attrelid = 'bi80_badfk'::regclass AND a.attname = 'tenant_id'),
          'f f f',
          '... and leaves no trace: the tenant column is neither NOT NULL nor defaulted, no row level security');
SELECT is((SELECT count(*) FROM utilix.protected_table WHERE relid = 'bi80_badfk'::regclass), 0::bigint,
          '... and the table is not recorded as protected');
-- encrypt_column() that fails after changing the column's type
SELECT throws_ok($$SELECT utilix.encrypt_column('bi80_t', 'j', searchable => NULL)$$, NULL::char(5), NULL,
                 'encrypt_column(searchable => NULL) is refused');
SELECT is((SELECT format_type(a.atttypid, a.atttypmod) || ' ' || (SELECT count(*) FROM utilix.encrypted_column e
                                                                  WHERE e.table_name = 'bi80_t' AND e.column_name = 'j')
             FROM pg_attribute a WHERE a.attrelid = 'bi80_t'::regclass AND a.attname = 'j'),
          'jsonb 0', '... and the column keeps its type, unregistered');
-- terminate_tenant() with a grace period past the calendar
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s, interval '1000000 years')$$, :ta), '22008', NULL,
                 'terminate_tenant(): a grace period past the end of time is refused (22008)');
SELECT is((SELECT status FROM utilix.tenant WHERE id = :ta), 'active', '... and the tenant stays active');
-- a refused token leaves the context that was set before
SELECT utilix.set_context(:'tok_user') \g /dev/null
SELECT throws_ok($$SELECT utilix.set_context('utx1.x.y')$$, '42501', 'invalid tenant context token',
                 'set_context(): a malformed token is refused while another context is set');
SELECT is((SELECT app_user || ' ' || status FROM utilix.context_info()), 'carol80 valid',
          '... and the context set before is still in force');
SELECT utilix.clear_context() \g /dev/null
-- the failed-login counter in shared memory (no rollback undoes it)
SELECT utilix._login_reset(:ta, 'bi80-ovf') \g /dev/null
SELECT throws_ok(format($$SELECT utilix._login_attempt(%s, 'bi80-ovf', 1, interval '1000000 years', true)$$, :ta), '22008', NULL,
                 '_login_attempt(): a lockout past the end of time is refused (22008)');
SELECT is(utilix._login_attempt(:ta, 'bi80-ovf', 100, '1 minute', true), true, '... and counted nothing');
SELECT is((utilix._login_state(:ta, 'bi80-ovf')).failures, 1,
          '... (the next attempt is the first) (doc/bad-inputs.md B13)');
SELECT utilix._login_reset(:ta, 'bi80-ovf') \g /dev/null
SELECT is(current_setting('utilix.internal_ddl'), 'off', 'after the refused calls, utilix.internal_ddl is off');

-- ------------------------------------------------------------------ invariants over the whole sweep
SELECT is(array(SELECT format('%s as %s', left(q, 100), who) FROM bi80_res WHERE fp_changed ORDER BY q), '{}'::text[],
          'no call of the sweep left anything changed: catalogs, context, role, settings');
SELECT is((SELECT fp FROM bi80_fp0), pg_temp.bi80_fp(), 'the catalogs are as they were before the sweep');
SELECT is(array(SELECT DISTINCT left(q, 120) || ' -> ' || left(result, 80) FROM bi80_res WHERE result ~ '^XX000: ' ORDER BY 1),
          '{}'::text[], 'no call of the sweep gives XX000 (internal error) (doc/bad-inputs.md B2)');
SELECT is(array(SELECT DISTINCT left(q, 120) FROM bi80_res
                 WHERE concat_ws(' ', result, detail, hint) ~ 'utx1\.[A-Za-z0-9_-]{20}' ORDER BY 1),
          '{}'::text[], 'no message, detail or hint of the sweep shows a token');
SELECT is(array(SELECT DISTINCT left(q, 120) FROM bi80_res
                 WHERE concat_ws(' ', result, detail, hint) ~* '(pw of|initial pw|bi80-secret)' ORDER BY 1),
          '{}'::text[], 'no message, detail or hint of the sweep shows a password or a value of an encrypted column');
SELECT is(array(SELECT DISTINCT substring(q FROM 'utilix\.([a-z_]+)\(') FROM bi80_res
                 WHERE greatest(length(result), length(detail), length(hint)) > 2000 ORDER BY 1),
          '{}'::text[], 'no message echoes a 1 MB input back (doc/bad-inputs.md B11)');
SELECT is(array(SELECT DISTINCT pg_temp.bi80_class(result) FROM bi80_res
                 WHERE result ~ '^[0-9A-Z]{5}: ' AND (length(result) < 10 OR result ~ '^P0001') ORDER BY 1),
          '{}'::text[], 'every refusal has a SQLSTATE of its own and a message');
SELECT is(array(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'utilix'::regnamespace AND has_function_privilege('bi80_plain', p.oid, 'EXECUTE')
                 ORDER BY 1),
          array(SELECT fn::text FROM bi80_public ORDER BY 1),
          'PUBLIC may execute exactly the functions README grants it');
SELECT is(array(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'utilix'::regnamespace
                   AND p.oid NOT IN (SELECT fn FROM bi80_fn UNION SELECT fn FROM bi80_refused)
                   AND NOT EXISTS (SELECT 1 FROM bi80_case c WHERE c.q ~ ('utilix\.' || p.proname || '\('))
                 ORDER BY 1),
          '{}'::text[], 'every function of the schema was called by the sweep');

-- ------------------------------------------------------------------ never a crash
SELECT is((SELECT 1), 1, 'SELECT 1 still works in this session');
SELECT is(pg_backend_pid(), :pid0, 'the session is the one that started the file');
SELECT is(pg_postmaster_start_time(), :'pm_start'::timestamptz, 'the server did not restart (no backend crashed)');

SELECT * FROM finish();
ROLLBACK;
