-- utilix walkthrough: a small metering service with two tenants (and, from
-- section 18, a third one whose contract ends).
\set VERBOSITY verbose
\set SHOW_CONTEXT never

\echo
\echo '=== 1. Superuser: install utilix, create the principals'
CREATE EXTENSION utilix;
SELECT extversion FROM pg_extension WHERE extname = 'utilix';

CREATE ROLE ops LOGIN IN ROLE utilix_operator;          -- platform operator (the provider's DBA)
CREATE ROLE login_service LOGIN IN ROLE utilix_issuer;  -- the application's login service
CREATE ROLE metering_owner LOGIN;                       -- owns the application's tables
CREATE ROLE meter_app LOGIN;                            -- what the application connects as
CREATE ROLE acme_reports LOGIN;                         -- a reporting tool of one tenant
CREATE ROLE web_gateway LOGIN IN ROLE utilix_gateway;   -- the login endpoint behind a proxy (section 19)
CREATE SCHEMA metering AUTHORIZATION metering_owner;

\echo
\echo '=== 2. Table owner: the schema. Every key leads with tenant_id.'
\connect - metering_owner
CREATE TABLE metering.site (
    tenant_id bigint  NOT NULL,
    site_id   integer NOT NULL,
    name      text    NOT NULL,
    PRIMARY KEY (tenant_id, site_id)
);
CREATE TABLE metering.meter (
    tenant_id bigint  NOT NULL,
    meter_id  integer NOT NULL,
    site_id   integer NOT NULL,
    serial    text    NOT NULL,
    kind      text    NOT NULL CHECK (kind IN ('electricity', 'gas', 'water')),
    PRIMARY KEY (tenant_id, meter_id),
    UNIQUE (tenant_id, serial),
    FOREIGN KEY (tenant_id, site_id) REFERENCES metering.site
);
CREATE TABLE metering.reading (
    tenant_id bigint        NOT NULL,
    meter_id  integer       NOT NULL,
    read_at   timestamptz   NOT NULL,
    value     numeric(12,3) NOT NULL,
    PRIMARY KEY (tenant_id, meter_id, read_at),
    FOREIGN KEY (tenant_id, meter_id) REFERENCES metering.meter
) PARTITION BY RANGE (read_at);
CREATE TABLE metering.reading_2025_04 PARTITION OF metering.reading
    FOR VALUES FROM ('2025-04-01 00:00+00') TO ('2025-05-01 00:00+00');
CREATE TABLE metering.reading_2025_05 PARTITION OF metering.reading
    FOR VALUES FROM ('2025-05-01 00:00+00') TO ('2025-06-01 00:00+00');
-- This one is wrong on purpose: its key does not lead with tenant_id.
CREATE TABLE metering.gateway (
    serial    text PRIMARY KEY,
    tenant_id bigint NOT NULL,
    site_id   integer NOT NULL
);
GRANT USAGE ON SCHEMA metering TO meter_app, acme_reports;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA metering TO meter_app;
GRANT SELECT ON ALL TABLES IN SCHEMA metering TO acme_reports;
-- operators name the tables they protect, so they need to see the schema
GRANT USAGE ON SCHEMA metering TO utilix_operator;

\echo
\echo '=== 3. Operator: two tenants, then protect the tables'
\connect - ops
SELECT utilix.create_tenant('acme', 'JP') AS acme \gset
SELECT utilix.create_tenant('globex', 'JP') AS globex \gset
SELECT id, name, status, data_region FROM utilix.tenants ORDER BY id;

-- referencing tables first: a foreign key into a protected table must come
-- from a protected table
SELECT utilix.protect('metering.reading'),   -- with each of its partitions
       utilix.protect('metering.meter'),
       utilix.protect('metering.site');

-- protect() refuses a table whose unique key would tell one tenant that
-- another tenant already holds a serial number:
\set ON_ERROR_STOP 0
SELECT utilix.protect('metering.gateway');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif

\echo
\echo '=== 4. Table owner: fix the key; owning a table does not let you weaken it'
\connect - metering_owner
ALTER TABLE metering.gateway DROP CONSTRAINT gateway_pkey,
                             ADD PRIMARY KEY (tenant_id, serial);
\set ON_ERROR_STOP 0
ALTER TABLE metering.site NO FORCE ROW LEVEL SECURITY;
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif

\echo
\echo '=== 5. Superuser: next month''s partition is protected as it is created'
\connect - postgres
CREATE TABLE metering.reading_2025_06 PARTITION OF metering.reading
    FOR VALUES FROM ('2025-06-01 00:00+00') TO ('2025-07-01 00:00+00');

\echo
\echo '=== 6. Operator: the inventory of protected tables and the master key'
\connect - ops
SELECT utilix.protect('metering.gateway');
SELECT table_name, partition_of, tenant_column, rls_forced, tenant_policy, guard_trigger
  FROM utilix.protected_tables ORDER BY table_name::text;
SELECT utilix.master_key_status();
-- The reporting tool of acme logs in directly, without tokens: bind its role.
SELECT utilix.bind_role('acme_reports', :acme);

\echo
\echo '=== 7. Login service: mint short-lived context tokens (kept in psql variables)'
\connect - login_service
SELECT utilix.issue_context(:acme, 'alice@acme', '10 minutes', '{read,write}') AS acme_tok \gset
SELECT utilix.issue_context(:globex, 'bob@globex', '10 minutes', '{read,write}') AS globex_tok \gset
SELECT utilix.issue_context(:acme, 'alice@acme', '1 second') AS short_tok \gset

\echo
\echo '=== 8. Application: without a tenant context, protected tables fail closed'
\connect - meter_app
\set ON_ERROR_STOP 0
SELECT count(*) FROM metering.reading;
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif

\echo
\echo '=== 9. Application: one transaction per request, context set first'
BEGIN;
SELECT utilix.set_context(:'acme_tok');
-- tenant_id is filled in from the context
INSERT INTO metering.site (site_id, name) VALUES (1, 'Osaka plant'), (2, 'Kobe office');
INSERT INTO metering.meter (meter_id, site_id, serial, kind)
    VALUES (1, 1, 'EM-1001', 'electricity'), (2, 2, 'GM-2001', 'gas');
-- every 6 hours from 28 April to 3 May: rows land in two partitions
INSERT INTO metering.reading (meter_id, read_at, value)
    SELECT m, timestamptz '2025-04-28 00:00+00' + i * interval '6 hours', m * 10 + i % 4
      FROM generate_series(1, 2) AS m, generate_series(0, 20) AS i;
COMMIT;
-- The context ended with the transaction (SET LOCAL semantics):
SELECT tenant, status FROM utilix.context_info();

BEGIN;
SELECT utilix.set_context(:'globex_tok');
-- The same site ids and serial numbers as acme: keys are per tenant, so no
-- conflict, and no hint that acme uses them too.
INSERT INTO metering.site (site_id, name) VALUES (1, 'Nagoya depot');
INSERT INTO metering.meter (meter_id, site_id, serial, kind) VALUES (1, 1, 'EM-1001', 'electricity');
INSERT INTO metering.reading (meter_id, read_at, value)
    SELECT 1, t, 10 FROM generate_series(timestamptz '2025-05-30 00:00+00', '2025-06-02 00:00+00', '1 day') AS t;
COMMIT;

\echo
\echo '=== 10. Each tenant sees only its own rows'
BEGIN;
SELECT utilix.set_context(:'acme_tok');
SELECT tenant, app_user, rights, expires_at - issued_at AS lifetime, status FROM utilix.context_info();
SELECT s.name AS site, m.serial, count(r.*) AS readings, sum(r.value) AS total
  FROM metering.site s
  JOIN metering.meter m USING (tenant_id, site_id)
  LEFT JOIN metering.reading r USING (tenant_id, meter_id)
 GROUP BY 1, 2 ORDER BY 1, 2;
-- Asking for the other tenant's rows by name finds nothing:
SELECT count(*) AS globex_rows_seen FROM metering.site WHERE tenant_id = :globex;
COMMIT;

BEGIN;
SELECT utilix.set_context(:'globex_tok');
SELECT s.name AS site, m.serial, count(r.*) AS readings, sum(r.value) AS total
  FROM metering.site s
  JOIN metering.meter m USING (tenant_id, site_id)
  LEFT JOIN metering.reading r USING (tenant_id, meter_id)
 GROUP BY 1, 2 ORDER BY 1, 2;
COMMIT;

\echo
\echo '=== 11. What acme cannot do, even with a valid context'
BEGIN;
SELECT utilix.set_context(:'acme_tok');
SAVEPOINT attempt;
-- write a row into globex
\set ON_ERROR_STOP 0
INSERT INTO metering.site (tenant_id, site_id, name) VALUES (:globex, 9, 'planted');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
ROLLBACK TO SAVEPOINT attempt;
-- move one of its own rows over to globex
\set ON_ERROR_STOP 0
UPDATE metering.site SET tenant_id = :globex WHERE site_id = 2;
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
ROLLBACK TO SAVEPOINT attempt;
-- count everyone's rows through a plan
\set ON_ERROR_STOP 0
EXPLAIN SELECT * FROM metering.reading WHERE meter_id = 1;
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
ROLLBACK;

\echo
\echo '=== 11b. Table owner: a migration over tenants'' rows; nothing in it can read them'
\connect - metering_owner
-- what migrations do every day goes through
ALTER TABLE metering.site ADD COLUMN opened date;
CREATE INDEX site_name ON metering.site (tenant_id, name);
ALTER TABLE metering.site ADD CONSTRAINT site_name_length CHECK (length(name) < 200) NOT VALID;
-- a check validated over every tenant's rows answers questions about them
\set ON_ERROR_STOP 0
ALTER TABLE metering.site ADD CONSTRAINT probe CHECK (name <> 'Osaka plant');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
-- so does an index over an expression (and its statistics in pg_stats)
\set ON_ERROR_STOP 0
CREATE INDEX site_lower_name ON metering.site ((lower(name)));
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
-- and a trigger of the owner's would see each tenant's new rows in its session
CREATE FUNCTION metering.note_site() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN RAISE NOTICE 'new site %', NEW.name; RETURN NEW; END$$;
\set ON_ERROR_STOP 0
CREATE TRIGGER note_site BEFORE INSERT ON metering.site FOR EACH ROW EXECUTE FUNCTION metering.note_site();
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
DROP FUNCTION metering.note_site();
\connect - meter_app

\echo
\echo '=== 12. Tokens cannot be forged, edited or used after they expire'
\set ON_ERROR_STOP 0
SET utilix.context = 'utx1.forged.sig';
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
-- Rewrite the tenant id inside acme's real token to globex's id:
SELECT format('utx1.%s.%s',
              rtrim(translate(encode(set_byte(decode(rpad(translate(payload, '-_', '+/'),
                                                          (length(payload) + 3) / 4 * 4, '='), 'base64'),
                                              8, :globex), 'base64'), E'+/\n', '-_'), '='),
              signature) AS edited_tok
  FROM (SELECT split_part(:'acme_tok', '.', 2) AS payload,
               split_part(:'acme_tok', '.', 3) AS signature) AS t \gset
\set ON_ERROR_STOP 0
SELECT utilix.set_context(:'edited_tok');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
-- A second later, the token minted for one second has expired:
\! sleep 1.2
\set ON_ERROR_STOP 0
SELECT utilix.set_context(:'short_tok');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif

\echo
\echo '=== 13. A role bound to a tenant: acme''s reporting tool, no token needed'
\connect - acme_reports
SELECT tenant, app_user, bound_role, status FROM utilix.context_info();
SELECT tenant_id, count(*) AS readings FROM metering.reading GROUP BY 1;


\echo
\echo '=== 14. Column encryption: the operator encrypts two columns of a new table'
\connect - metering_owner
CREATE TABLE metering.customer (
    tenant_id   bigint  NOT NULL,
    customer_id integer NOT NULL,
    name        text    NOT NULL,
    email       text,
    PRIMARY KEY (tenant_id, customer_id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON metering.customer TO meter_app;

\connect - ops
SELECT utilix.protect('metering.customer');
SELECT utilix.encrypt_column('metering.customer', 'name');
-- searchable: each value also carries a blind index, so equality lookups use an index
SELECT utilix.encrypt_column('metering.customer', 'email', searchable => true);
SELECT table_name, column_name, plain_type, label, searchable FROM utilix.encrypted_columns ORDER BY column_name;

\connect - postgres
-- The equality operator of the encrypted types lives in schema utilix.  With
-- utilix on the application role's search_path, "email = $1" uses the blind
-- index; without it, PostgreSQL decrypts every row to compare.
ALTER ROLE meter_app SET search_path = "$user", public, utilix;

\echo
\echo '=== 15. Application: the SQL does not change (INSERT, COPY FROM, UPDATE, SELECT)'
\connect - meter_app
BEGIN;
SELECT utilix.set_context(:'acme_tok');
INSERT INTO metering.customer (customer_id, name, email)
    VALUES (1, 'Hanako Yamada', 'hanako@example.jp');
-- COPY FROM into a protected table works too (PostgreSQL alone refuses it under row level security)
COPY metering.customer (customer_id, name, email) FROM STDIN;
2	Taro Suzuki	taro@example.jp
3	Keiko Tanaka	keiko@example.jp
\.
UPDATE metering.customer SET email = 'h.yamada@example.jp' WHERE customer_id = 1;
SELECT customer_id, name, email FROM metering.customer ORDER BY customer_id;
-- an equality lookup on the searchable column (answered through the blind index)
SELECT customer_id, name FROM metering.customer WHERE email = 'taro@example.jp';
COMMIT;

BEGIN;
SELECT utilix.set_context(:'globex_tok');
-- the same e-mail address in another tenant: another key, another blind index
INSERT INTO metering.customer (customer_id, name, email) VALUES (1, 'Ichiro Kato', 'taro@example.jp');
SELECT customer_id, name, email FROM metering.customer;
COMMIT;

\echo
\echo '=== 16. Superuser without a context (an operator at work, pg_dump): armour, never plaintext'
\connect - postgres
SELECT tenant_id, customer_id, name, utilix.key_version(name) AS key_version
  FROM metering.customer ORDER BY 1, 2;
\echo
\echo '--- pg_dump --data-only --table=metering.customer, first lines of its COPY block (cut at 120 characters):'
\! "$PGBIN/pg_dump" --data-only --table=metering.customer utilix_demo | grep -A4 '^COPY ' | cut -c1-120

\echo
\echo '=== 17. Operator: rotate acme''s data key and re-encrypt its values online'
\connect - ops
SELECT utilix.rotate_tenant_key(:acme) AS new_version;
-- re-seals values under older versions; a call that does not fill its batch
-- retires the old version (its wrapped key is deleted).  Repeat until 0.
SELECT utilix.reencrypt(:acme) AS resealed;
SELECT utilix.reencrypt(:acme) AS resealed;
SELECT tenant_id, version, state FROM utilix.data_keys ORDER BY 1, 2;

\echo
\echo '=== 18. A third tenant ends its contract: its keys are shredded'
\connect - ops
SELECT utilix.create_tenant('initech', 'JP') AS initech \gset
\connect - login_service
SELECT utilix.issue_context(:initech, 'peter@initech', '10 minutes', '{read,write}') AS initech_tok \gset
\connect - meter_app
BEGIN;
SELECT utilix.set_context(:'initech_tok');
INSERT INTO metering.customer (customer_id, name, email) VALUES (1, 'Peter Gibbons', 'peter@initech.example');
SELECT customer_id, name, email FROM metering.customer;
COMMIT;

\connect - ops
-- Its contexts stop working at once.  The worker would purge its rows after
-- the grace period; the keys can be shredded now, which makes the encrypted
-- columns unreadable at once, also in every later backup.
SELECT utilix.terminate_tenant(:initech, grace => '30 days') > now() AS purge_scheduled;
-- the data key and the blind-index root (version 0, not listed in data_keys)
SELECT utilix.shred_tenant_keys(:initech) AS keys_destroyed;
SELECT tenant_id, version, state, destroyed_at IS NOT NULL AS destroyed
  FROM utilix.data_keys WHERE tenant_id = :initech;
\connect - postgres
-- utilix._plain() is the internal decryption that skips the context check
-- (reencrypt and decrypt_column use it; a superuser can call it).  For a
-- shredded tenant there is no key left to decrypt with:
\set ON_ERROR_STOP 0
SELECT utilix._plain(name) FROM metering.customer WHERE tenant_id = :initech;
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
-- The row itself stays until the tenant is purged, as ciphertext nothing can open:
SELECT tenant_id, customer_id, left(name::text, 40) || '...' AS name
  FROM metering.customer WHERE tenant_id = :initech;

\echo
\echo '=== 19. Tenant administration: the operator creates acme''s first admin'
\connect - postgres
-- DEMO ONLY: cheaper password hashes (scrypt N = 2^12 instead of the default
-- 2^15), so that the logins below are fast.  The setting is superuser-only and
-- the walkthrough uses several sessions, so it is set for the database rather
-- than with SET utilix.scrypt_log2n = 12 in one session.  Never lower it in production.
ALTER DATABASE utilix_demo SET utilix.scrypt_log2n = 12;
\connect - ops
SHOW utilix.scrypt_log2n;
SELECT utilix.create_tenant_admin(:acme, 'admin@acme', 'Temporary-Pass-4711');
\connect - postgres
-- Admins log in only from their tenant's admin networks, and only a tenant
-- admin can call utilix.allow_admin_network().  The first range is therefore
-- put in by a superuser, as agreed with the customer:
INSERT INTO utilix.admin_network (tenant_id, network, added_by)
    VALUES (:acme, '10.1.0.0/16', 'operator (customer onboarding)');

\echo
\echo '=== 20. The admin logs in through the gateway, from 10.1.2.3, and must change its password'
\connect - meter_app
-- An ordinary role cannot claim a client address; only utilix_gateway members can.
SELECT utilix.login('acme', 'admin@acme', 'Temporary-Pass-4711', '10.1.2.3') IS NULL AS refused \gset
\if :refused \echo 'login returned NULL: refused' \else \echo 'UNEXPECTED: a non-gateway role passed a client address' \endif
\connect - web_gateway
SELECT utilix.login('acme', 'admin@acme', 'Temporary-Pass-4711', '10.1.2.3') AS admin_tok \gset
\connect - meter_app
BEGIN;
SELECT utilix.set_context(:'admin_tok');
SELECT tenant, app_user, rights, status FROM utilix.context_info();
-- a password-change-only token carries no usable right
\set ON_ERROR_STOP 0
SELECT utilix.create_user('carol@acme', 'Start-Here-Pass-0815', '{read}');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
ROLLBACK;
BEGIN;
SELECT utilix.set_context(:'admin_tok');
-- returns a full token
SELECT utilix.change_password('Temporary-Pass-4711', 'Sakura-Harbour-Lantern-9') AS admin_tok \gset
COMMIT;

\echo
\echo '=== 21. The admin adds a network and registers a read-only user'
BEGIN;
SELECT utilix.set_context(:'admin_tok');
SELECT tenant, app_user, rights, status FROM utilix.context_info();
SELECT utilix.allow_admin_network('10.2.0.0/16');
SELECT utilix.create_user('carol@acme', 'Start-Here-Pass-0815', '{read}');
SELECT login, status, rights, clearance, must_change FROM utilix.users ORDER BY login;
SELECT network, added_by FROM utilix.admin_networks ORDER BY network;
COMMIT;

\echo
\echo '=== 22. The read-only user: first login, forced password change, reads but cannot write'
\connect - web_gateway
SELECT utilix.login('acme', 'carol@acme', 'Start-Here-Pass-0815', '192.0.2.55') AS carol_tok \gset
\connect - meter_app
BEGIN;
SELECT utilix.set_context(:'carol_tok');
SELECT app_user, rights, status FROM utilix.context_info();
-- until the password is changed, protected tables show no rows
SELECT count(*) AS sites_visible FROM metering.site;
SELECT utilix.change_password('Start-Here-Pass-0815', 'Quiet-River-Stone-42') AS carol_tok \gset
COMMIT;
BEGIN;
SELECT utilix.set_context(:'carol_tok');
SELECT app_user, rights, status FROM utilix.context_info();
SELECT site_id, name FROM metering.site ORDER BY site_id;
\set ON_ERROR_STOP 0
INSERT INTO metering.site (site_id, name) VALUES (3, 'Kyoto lab');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
ROLLBACK;

\echo
\echo '=== 23. The admin, with the right password, from an address outside its networks'
\connect - web_gateway
-- login() returns NULL with a WARNING rather than raising an error, so that the
-- attempt is recorded (and a wrong password counted towards the lockout): an
-- error would roll both back.
SELECT utilix.login('acme', 'admin@acme', 'Sakura-Harbour-Lantern-9', '198.51.100.7') IS NULL AS refused \gset
\if :refused \echo 'login returned NULL: refused' \else \echo 'UNEXPECTED: the admin logged in from outside its networks' \endif
\connect - meter_app
BEGIN;
SELECT utilix.set_context(:'admin_tok');
-- what the admin sees of its tenant's logins and administration
SELECT login, event, outcome, client_addr, actor, detail FROM utilix.auth_events ORDER BY at;
COMMIT;

\echo
\echo '=== 23b. Guesses at carol''s password, made in a transaction that is rolled back, still lock her'
\connect - meter_app
BEGIN;
SET LOCAL client_min_messages = error;
SELECT count(*) AS refused_guesses
  FROM generate_series(1, 5) g WHERE utilix.login('acme', 'carol@acme', 'Guess-number-' || g) IS NULL;
ROLLBACK;
-- each attempt was counted before its password was checked: the rollback undid nothing
SELECT utilix.login('acme', 'carol@acme', 'Quiet-River-Stone-42') IS NULL AS refused \gset
\if :refused \echo 'the right password was refused: carol is locked' \else \echo 'UNEXPECTED: a locked user logged in' \endif
BEGIN;
SELECT utilix.set_context(:'admin_tok');
SELECT login, failed_attempts, locked_until IS NOT NULL AS locked FROM utilix.users WHERE login = 'carol@acme';
SELECT utilix.enable_user('carol@acme');
COMMIT;

\echo
\echo '=== 23c. The operator caps acme''s clearances; its admin cannot raise itself above the ceiling'
\connect - ops
SELECT utilix.set_max_clearance(:acme, 'internal');
SELECT name, max_clearance FROM utilix.tenants WHERE id = :acme;
\connect - meter_app
BEGIN;
SELECT utilix.set_context(:'admin_tok');
\set ON_ERROR_STOP 0
SELECT utilix.set_clearance('admin@acme', 'secret');
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
ROLLBACK;

\echo
\echo '=== 24. Retention: readings are kept one year; whole monthly partitions go'
\connect - ops
SELECT utilix.set_retention('metering.reading', '1 year', 'read_at');
SELECT * FROM utilix.retention_policies;
-- what a run would remove, removing nothing
SELECT * FROM utilix.purge_preview('metering.reading');
-- the worker does this every utilix.purge_naptime seconds, in short transactions
SELECT * FROM utilix.run_retention('metering.reading');
SELECT kind, table_name, rows_removed, partitions_dropped, outcome FROM utilix.purge_runs;

\echo
\echo '=== 25. Offboarding: a fourth tenant ends its contract, is exported, purged and certified'
\connect - ops
SELECT utilix.create_tenant('hooli', 'JP') AS hooli \gset
\connect - login_service
SELECT utilix.issue_context(:hooli, 'gavin@hooli', '10 minutes', '{read,write}') AS hooli_tok \gset
\connect - meter_app
BEGIN;
SELECT utilix.set_context(:'hooli_tok');
INSERT INTO metering.site (site_id, name) VALUES (1, 'Palo Alto campus');
INSERT INTO metering.customer (customer_id, name, email) VALUES (1, 'Gavin Belson', 'gavin@hooli.example');
COMMIT;
\connect - ops
-- DEMO ONLY: a grace period of one second instead of 30 days
SELECT utilix.terminate_tenant(:hooli, grace => '1 second') IS NOT NULL AS terminated;
-- the copy handed over to the customer: one JSON document per row, encrypted columns decrypted
SELECT table_name, row_data FROM utilix.export_tenant(:hooli) ORDER BY 1;
SELECT * FROM utilix.export_manifest(:hooli);
SELECT pg_sleep(1.1);
-- the worker calls this; here the operator does, to show it
SELECT utilix.purge_due_tenants() AS tenants_purged;
SELECT tenant_name, tables, keys_destroyed, verification, left(hash, 16) || '...' AS hash
  FROM utilix.deletion_certificates;
SELECT * FROM utilix.verify_certificates();
SELECT id, name, status FROM utilix.tenants ORDER BY id;

\echo
\echo '=== 26. Access history: every statement above on a protected table was recorded'
\connect - meter_app
-- a forgetful client: no context; refused, and the refusal is recorded
\set ON_ERROR_STOP 0
SELECT count(*) FROM metering.customer;
\set ON_ERROR_STOP 1 \if :ERROR \else \echo 'UNEXPECTED: the statement above was not refused' \endif
-- a rolled-back change is recorded too: the record left the transaction when the statement ended
BEGIN;
SELECT utilix.set_context(:'acme_tok');
UPDATE metering.site SET name = name WHERE site_id = 1;
ROLLBACK;
-- records are written by a background writer within milliseconds; wait for it here
SELECT utilix.access_log_flush() AS written;
-- acme's admin (rights admin, audit) reads acme's history, and nobody else's
BEGIN;
SELECT utilix.set_context(:'admin_tok');
SELECT at::time(0) AS at, app_user, kind, tables, outcome
  FROM utilix.access_history WHERE kind IN ('select', 'update', 'insert', 'login') LIMIT 8;
SELECT count(*) FILTER (WHERE tenant_id <> :acme) AS other_tenants_records FROM utilix.access_history;
COMMIT;
\connect - ops
-- the operator sees the denied attempt among the security events
SELECT kind, detail FROM utilix.security_events WHERE kind = 'select denied' ORDER BY at DESC LIMIT 3;
SELECT tenant_id, records, ok FROM utilix.verify_access_log(:acme);
\connect - postgres
-- DEMO ONLY: a superuser disables the append-only trigger and rewrites one record
SET session_replication_role = replica;
UPDATE utilix.access_log SET app_user = 'nobody'
 WHERE id = (SELECT min(id) FROM utilix.access_log WHERE tenant_id = :acme AND kind = 'select');
RESET session_replication_role;
\connect - ops
SELECT tenant_id, records, ok, broken_at, problem FROM utilix.verify_access_log(:acme);

\echo
\echo '=== Done.'
