-- utilix install script, part 50: application users, passwords, rights, privileged access.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'utilix_gateway') THEN
        CREATE ROLE utilix_gateway NOLOGIN;
    END IF;
END
$roles$;
COMMENT ON ROLE utilix_gateway IS 'utilix: the login service behind a pool, which may pass the end user''s client address to utilix.login()';

CREATE TABLE utilix.app_user (
    tenant_id       bigint NOT NULL REFERENCES utilix.tenant (id),
    login           text NOT NULL CHECK (login ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$'),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    password_hash   text NOT NULL,
    must_change     boolean NOT NULL DEFAULT true,
    rights          text[] NOT NULL DEFAULT '{read}',
    clearance       text NOT NULL DEFAULT 'public',
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_login      timestamptz,
    PRIMARY KEY (tenant_id, login)
);
COMMENT ON TABLE utilix.app_user IS
    'application users of each tenant; password hashes are salted scrypt and readable by no tenant principal';
REVOKE ALL ON utilix.app_user FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.app_user', '');

CREATE TABLE utilix.admin_network (
    tenant_id  bigint NOT NULL REFERENCES utilix.tenant (id),
    network    cidr NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    added_by   text NOT NULL,
    PRIMARY KEY (tenant_id, network)
);
COMMENT ON TABLE utilix.admin_network IS 'address ranges from which a tenant''s admins may log in';
REVOKE ALL ON utilix.admin_network FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.admin_network', '');

CREATE TABLE utilix.auth_event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    tenant_id   bigint,
    login       text,
    event       text NOT NULL,
    outcome     text NOT NULL,
    client_addr inet,
    actor       text,
    db_role     name NOT NULL DEFAULT SESSION_USER,
    detail      text,
    pad         text
);
COMMENT ON COLUMN utilix.auth_event.pad IS
    'blanks that give every refused login''s record the same size, so that the WAL it writes does not tell the reasons apart';
COMMENT ON TABLE utilix.auth_event IS
    'every login attempt and every user administration action (UTC time from the database clock)';
REVOKE ALL ON utilix.auth_event FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.auth_event', '');

CREATE FUNCTION utilix._acting_role_is_member(role name) RETURNS boolean
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'utilix_acting_role_is_member';
COMMENT ON FUNCTION utilix._acting_role_is_member(name) IS
    'internal: is the role the caller acts as (after SET ROLE, before SECURITY DEFINER) a member of this role';

CREATE FUNCTION utilix._login_attempt(tenant bigint, login text, max_failures integer, lockout interval,
                                      eligible boolean) RETURNS boolean
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'utilix_login_attempt';
COMMENT ON FUNCTION utilix._login_attempt(bigint, text, integer, interval, boolean) IS
    'internal: counts a login attempt in shared memory before its password is checked (no rollback undoes it); false when the user is locked or the attempt is not eligible';
CREATE FUNCTION utilix._login_state(tenant bigint, login text, OUT failures integer, OUT locked_until timestamptz)
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'utilix_login_state';
COMMENT ON FUNCTION utilix._login_state(bigint, text) IS
    'internal: recent failures and running lockout of a user (for a superuser or an admin context of its tenant; NULLs otherwise)';
CREATE FUNCTION utilix._login_reset(tenant bigint, login text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'utilix_login_reset';
COMMENT ON FUNCTION utilix._login_reset(bigint, text) IS 'internal: clears the shared-memory failure count of a user';
CREATE FUNCTION utilix._login_reset_at_commit(tenant bigint, login text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'utilix_login_reset_at_commit';
COMMENT ON FUNCTION utilix._login_reset_at_commit(bigint, text) IS
    'internal: clears the shared-memory failure count of a user when the transaction commits (an unlock that is rolled back unlocks nothing)';
CREATE FUNCTION utilix._hide_usage(begin boolean) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'utilix_hide_usage';
COMMENT ON FUNCTION utilix._hide_usage(boolean) IS
    'internal: true saves the buffer and WAL usage counters of the backend, false puts them back (what login() reads is not shown)';
CREATE FUNCTION utilix.login_failure_table(OUT share_full boolean, OUT table_full boolean,
                                           OUT capacity integer, OUT refused_full bigint)
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'utilix_login_failure_table';
COMMENT ON FUNCTION utilix.login_failure_table() IS
    'operator: whether some tenant''s share of the login lockout table is full, whether the whole table is, its capacity, and attempts refused since the start for want of room';

CREATE FUNCTION utilix._hash_password(password text) RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'utilix_hash_password';
COMMENT ON FUNCTION utilix._hash_password(text) IS 'internal: a salted scrypt hash with the current parameters';
CREATE FUNCTION utilix._verify_password(password text, stored text) RETURNS boolean
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'utilix_verify_password';
COMMENT ON FUNCTION utilix._verify_password(text, text) IS
    'internal: constant-time check; costs a full scrypt even without a stored hash';
CREATE FUNCTION utilix._hash_is_current(stored text) RETURNS boolean
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'utilix_hash_is_current';
COMMENT ON FUNCTION utilix._hash_is_current(text) IS 'internal: was the hash made with the current scrypt parameters';
CREATE FUNCTION utilix._check_password(login text, password text) RETURNS void
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'utilix_check_password';
COMMENT ON FUNCTION utilix._check_password(text, text) IS 'internal: the password policy (22023 with the reason)';

CREATE FUNCTION utilix._auth_event(tenant bigint, login text, event text, outcome text,
                                   client_addr inet, detail text DEFAULT NULL) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET track_counts = on
    AS $$
    -- the access log first: it keeps the attempt even if the insert below
    -- fails (a read-only transaction) or this transaction rolls back
    SELECT utilix._log_event(CASE WHEN event IN ('login', 'change password') THEN 'login' ELSE 'admin' END,
                             tenant, CASE WHEN outcome = 'denied' THEN 'denied' ELSE 'ok' END,
                             event || CASE WHEN detail IS NULL THEN ''
                                           WHEN event = 'login' AND outcome = 'denied'
                                           THEN ': ' || rpad(detail, 19 + CASE WHEN tenant IS NULL THEN 8 ELSE 0 END)
                                           ELSE ': ' || detail END,
                             left(login, 64));
    -- a refused login's record has one size whatever the reason (the
    -- longest, "address not allowed", is 19 characters; a record without a
    -- tenant is 8 bytes shorter), in the table and in the access log
    INSERT INTO utilix.auth_event (tenant_id, login, event, outcome, client_addr, actor, detail, pad)
    VALUES (tenant, left(login, 64), event, outcome, client_addr,
            (SELECT c.app_user FROM utilix.context_info() c), detail,
            CASE WHEN event = 'login' AND outcome = 'denied'
                 THEN repeat(' ', greatest(0, 19 - octet_length(detail)) + CASE WHEN tenant IS NULL THEN 8 ELSE 0 END) END);
$$;
COMMENT ON FUNCTION utilix._auth_event(bigint, text, text, text, inet, text) IS 'internal: records a login or an admin action';

-- Clearance ceilings.  A tenant admin gives clearances; without a ceiling
-- it could raise its own to the highest label.  An operator sets the
-- ceiling per tenant; grants above it are refused and tokens from login()
-- carry at most the ceiling, so lowering it takes effect at the next login.
CREATE FUNCTION utilix._label_rank(label text) RETURNS integer
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
    AS $$ SELECT array_position(string_to_array(replace(current_setting('utilix.labels'), ' ', ''), ','), label) $$;
COMMENT ON FUNCTION utilix._label_rank(text) IS 'internal: position of a label in utilix.labels (1 is the lowest), NULL when unknown';

CREATE FUNCTION utilix._clearance_within_ceiling(tenant bigint, clearance text) RETURNS text
    LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    ceiling text;
    labels text[] := string_to_array(replace(current_setting('utilix.labels'), ' ', ''), ',');
BEGIN
    SELECT t.max_clearance INTO ceiling FROM utilix.tenant t WHERE t.id = tenant;
    IF ceiling IS NULL THEN
        RETURN clearance;
    END IF;
    -- a ceiling no longer among the labels holds the lowest one
    IF utilix._label_rank(ceiling) IS NULL THEN
        RETURN labels[1];
    END IF;
    -- a clearance no longer among the labels holds the lowest one too:
    -- were the label added back, it must not come back above the ceiling
    IF utilix._label_rank(clearance) IS NULL THEN
        RETURN labels[1];
    END IF;
    IF utilix._label_rank(clearance) > utilix._label_rank(ceiling) THEN
        RETURN ceiling;
    END IF;
    RETURN clearance;
END
$$;
COMMENT ON FUNCTION utilix._clearance_within_ceiling(bigint, text) IS
    'internal: the lower of a clearance and the tenant''s ceiling';

CREATE FUNCTION utilix._check_ceiling(tenant bigint, clearance text) RETURNS void
    LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF utilix._clearance_within_ceiling(tenant, clearance) IS DISTINCT FROM clearance THEN
        RAISE EXCEPTION 'clearance "%" is above the ceiling of the tenant', left(clearance, 64)
            USING ERRCODE = '42501',
                  DETAIL = format('The ceiling is "%s".', (SELECT t.max_clearance FROM utilix.tenant t WHERE t.id = tenant)),
                  HINT = 'An operator sets the ceiling with utilix.set_max_clearance().';
    END IF;
END
$$;
COMMENT ON FUNCTION utilix._check_ceiling(bigint, text) IS 'internal: 42501 for a clearance above the tenant''s ceiling';

CREATE FUNCTION utilix.set_max_clearance(tenant bigint, clearance text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    old text;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'tenant must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM utilix._check_rights_and_clearance(NULL, clearance);
    SELECT t.max_clearance INTO old FROM utilix.tenant t WHERE t.id = tenant AND t.status = 'active' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist or is not active', tenant USING ERRCODE = '22023';
    END IF;
    UPDATE utilix.tenant t SET max_clearance = clearance WHERE t.id = tenant;
    PERFORM utilix._auth_event(tenant, NULL, 'set max clearance', 'ok', inet_client_addr(),
                               format('%s -> %s (operator %s)', COALESCE(old, 'none'), COALESCE(clearance, 'none'), session_user));
END
$$;
COMMENT ON FUNCTION utilix.set_max_clearance(bigint, text) IS
    'operator: the highest clearance the tenant''s admins may give and its tokens carry (NULL: no ceiling); effective at each user''s next login';

-- The context of a tenant admin, or 42501.
CREATE FUNCTION utilix._require_admin() RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix.current_tenant();
BEGIN
    IF NOT utilix._may('admin') THEN
        RAISE EXCEPTION 'the current context has no admin right'
            USING ERRCODE = '42501', HINT = 'Tenant user administration needs a context with the admin right.';
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION utilix._require_admin() IS 'internal: the tenant of an admin context, or 42501';

-- A refused attempt, whatever the reason (unknown tenant or user, disabled,
-- locked, wrong password, admin outside its networks), runs the same
-- statements on the same tables, takes the same locks, costs one scrypt and
-- writes nothing but its record: nothing a caller can observe in the same
-- transaction (pg_locks, pg_stat_xact_*, sequences, notices, timing) tells
-- the reasons apart.  The lookups are not counted in the statistics views
-- (utilix._login_lookup runs with track_counts off; the row counts of
-- utilix.app_user would tell whether the user exists), nor are the calls of
-- the functions login() uses (track_functions); the record it writes is
-- counted as usual, so that autovacuum and ANALYZE still see utilix.auth_event
-- grow.  Failures are counted in shared memory before the
-- password is checked (utilix._login_attempt), so no rollback undoes a guess
-- and no row of utilix.app_user is locked by an attempt.
CREATE FUNCTION utilix._login_lookup(tenant_name text, login text, client_addr inet,
                                     OUT tenant_id bigint, OUT user_login text, OUT status text, OUT rights text[],
                                     OUT clearance text, OUT must_change boolean, OUT password_hash text,
                                     OUT net_ok boolean)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET track_counts = off
    SET debug_print_parse = off SET debug_print_rewritten = off SET debug_print_plan = off SET jit = off
    AS $$
DECLARE
    want text := login;
BEGIN
    SELECT x.id INTO tenant_id FROM utilix.tenant x WHERE x.name = tenant_name AND x.status = 'active';
    SELECT a.login, a.status, a.rights, a.clearance, a.must_change, a.password_hash
      INTO user_login, status, rights, clearance, must_change, password_hash
      FROM utilix.app_user a WHERE a.tenant_id = _login_lookup.tenant_id AND a.login = want;
    -- asked for every attempt, so that it shows nothing about the user
    net_ok := EXISTS (SELECT 1 FROM utilix.admin_network n
                       WHERE n.tenant_id = _login_lookup.tenant_id AND client_addr <<= n.network);
END
$$;
COMMENT ON FUNCTION utilix._login_lookup(text, text, inet) IS
    'internal: the tenant, user and admin-network check of a login attempt, read without counting in the statistics views';

CREATE FUNCTION utilix._login_touch(tenant bigint, login text, password text) RETURNS void
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp SET track_counts = on
    AS $$
    -- bookkeeping only: skipped, not waited for, while another transaction holds the row
    UPDATE utilix.app_user a SET last_login = now(),
           password_hash = CASE WHEN utilix._hash_is_current(a.password_hash) THEN a.password_hash
                                ELSE utilix._hash_password(password) END
     WHERE a.ctid = (SELECT b.ctid FROM utilix.app_user b WHERE b.tenant_id = tenant AND b.login = _login_touch.login
                     FOR NO KEY UPDATE SKIP LOCKED);
$$;
COMMENT ON FUNCTION utilix._login_touch(bigint, text, text) IS
    'internal: last_login and a rehash after a successful login, skipped while another transaction holds the row';

-- Refusing in a read-only transaction or on a standby, before anything is
-- looked up: there the record could not be written, and an error raised by
-- the first write (an insert for a refusal, an update for a success) would
-- tell a right password from a wrong one without a trace.
CREATE FUNCTION utilix._require_writable(what text) RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean THEN
        PERFORM utilix._log_event('login', NULL, 'denied', what || ': read-only transaction or standby', NULL);
        RAISE EXCEPTION '% needs a read-write transaction on the primary', what USING ERRCODE = '25006';
    END IF;
END
$$;
COMMENT ON FUNCTION utilix._require_writable(text) IS
    'internal: 25006 in a read-only transaction or on a standby, recorded in the access log';

CREATE FUNCTION utilix.login(tenant_name text, login text, password text,
                             client_addr inet DEFAULT inet_client_addr())
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET track_counts = off SET track_functions = 'none'
    SET debug_print_parse = off SET debug_print_rewritten = off SET debug_print_plan = off SET jit = off
    AS $$
DECLARE
    tid bigint;
    u record;
    eligible boolean;
    counted boolean;
    ok boolean;
    reason text;
    max_failures integer := current_setting('utilix.login_max_failures')::integer;
    lockout interval := current_setting('utilix.login_lockout_minutes')::interval;
    ttl interval := current_setting('utilix.login_ttl')::interval;
BEGIN
    IF tenant_name IS NULL OR login IS NULL OR password IS NULL THEN
        RAISE EXCEPTION 'tenant, login and password must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM utilix._require_writable('utilix.login()');
    IF client_addr IS DISTINCT FROM inet_client_addr()
       AND NOT utilix._acting_role_is_member('utilix_gateway') THEN
        -- a warning, not an error: the attempt must stay on record
        PERFORM utilix._auth_event(NULL, login, 'login', 'denied', inet_client_addr(),
                                   'client_addr passed by a role that is not a gateway');
        RAISE WARNING 'only a utilix_gateway role may pass another client address'
            USING ERRCODE = '42501';
        RETURN NULL;
    END IF;
    -- no password of the policy is longer, no login either: refused
    -- unchecked, before anything is looked up
    IF octet_length(password) > 1024 OR octet_length(login) > 63 THEN
        PERFORM utilix._auth_event(NULL, login, 'login', 'denied', client_addr, 'too long');
        RAISE WARNING 'login failed' USING ERRCODE = '28P01',
            DETAIL = 'The tenant, login or password is wrong, or the user may not log in now.';
        RETURN NULL;
    END IF;
    PERFORM utilix._hide_usage(true);
    -- From here to the answer, every attempt runs the same statements, so
    -- that no reason shows in what a session can observe.
    SELECT * INTO u FROM utilix._login_lookup(tenant_name, login, client_addr);
    tid := u.tenant_id;
    -- whether the password may be checked at all: the user exists and is
    -- active, and an admin is inside its networks (outside, it is refused
    -- before its password is looked at or counted)
    eligible := u.user_login IS NOT NULL AND u.status = 'active' AND NOT ('admin' = ANY (u.rights) AND NOT u.net_ok);
    counted := utilix._login_attempt(coalesce(tid, 0), coalesce(u.user_login, ''), max_failures, lockout, eligible);
    reason := CASE WHEN u.user_login IS NULL THEN 'unknown user'
                   WHEN u.status <> 'active' THEN 'disabled'
                   WHEN 'admin' = ANY (u.rights) AND NOT u.net_ok THEN 'address not allowed'
                   WHEN NOT counted THEN 'locked' END;
    -- always one scrypt, against a dummy hash when the password is not checked
    ok := utilix._verify_password(password, CASE WHEN reason IS NULL THEN u.password_hash END);
    reason := CASE WHEN reason IS NULL AND NOT ok THEN 'wrong password' ELSE reason END;

    IF reason IS NOT NULL THEN
        PERFORM utilix._auth_event(tid, login, 'login', 'denied', client_addr, reason);
        PERFORM utilix._hide_usage(false);
        RAISE WARNING 'login failed' USING ERRCODE = '28P01',
            DETAIL = 'The tenant, login or password is wrong, or the user may not log in now.';
        RETURN NULL;
    END IF;

    -- on record first (its access-log part at once): a rehash below that
    -- is cancelled or fails must not hide a right password
    PERFORM utilix._auth_event(tid, login, 'login', CASE WHEN u.must_change THEN 'password change required' ELSE 'ok' END,
                               client_addr);
    PERFORM utilix._login_touch(tid, u.user_login, password);
    -- cleared last: a success that fails on the way leaves its attempt counted
    PERFORM utilix._login_reset(tid, u.user_login);
    RETURN utilix._sign_token(tid, u.user_login, ttl, u.rights, utilix._clearance_within_ceiling(tid, u.clearance),
                              CASE WHEN u.must_change THEN 1 ELSE 0 END);
END
$$;
COMMENT ON FUNCTION utilix.login(text, text, text, inet) IS
    'checks a password and returns a context token, or NULL with a warning (28P01); counts failures and locks; admins only from their tenant''s networks';

CREATE FUNCTION utilix.change_password(old_password text, new_password text) RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET debug_print_parse = off SET debug_print_rewritten = off SET debug_print_plan = off SET jit = off
    AS $$
DECLARE
    t bigint := utilix.current_tenant();
    me text := utilix.current_app_user();
    u record;
    new_hash text;
BEGIN
    IF old_password IS NULL OR new_password IS NULL THEN
        RAISE EXCEPTION 'passwords must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM utilix._require_writable('utilix.change_password()');
    -- everything that needs no secret comes first: an error after the old
    -- password was checked would confirm it and leave no record
    PERFORM utilix._check_password(me, new_password);
    IF new_password = old_password THEN
        RAISE EXCEPTION 'the new password must differ from the current one' USING ERRCODE = '22023';
    END IF;
    SELECT a.rights, a.clearance, a.password_hash INTO u
      FROM utilix.app_user a WHERE a.tenant_id = t AND a.login = me AND a.status = 'active';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the current context is not an application user' USING ERRCODE = '42501';
    END IF;
    -- the new hash before the check, so that what follows a right password
    -- is as quick as what follows a wrong one (a statement_timeout between
    -- them would tell them apart, with nothing on record)
    new_hash := utilix._hash_password(new_password);
    -- counted like a login attempt, before the password is checked
    IF octet_length(old_password) > 1024
       OR NOT utilix._login_attempt(t, me, current_setting('utilix.login_max_failures')::integer,
                                    current_setting('utilix.login_lockout_minutes')::interval, true) THEN
        PERFORM utilix._verify_password(old_password, NULL);
        PERFORM utilix._auth_event(t, me, 'change password', 'denied', inet_client_addr(), 'locked');
        RAISE WARNING 'the user is locked' USING ERRCODE = '28P01';
        RETURN NULL;
    END IF;
    IF NOT utilix._verify_password(old_password, u.password_hash) THEN
        PERFORM utilix._auth_event(t, me, 'change password', 'denied', inet_client_addr(), 'wrong current password');
        RAISE WARNING 'the current password is wrong' USING ERRCODE = '28P01';
        RETURN NULL;
    END IF;
    -- on record at once, through any error or cancellation that follows
    PERFORM utilix._log_event('login', t, 'ok', 'change password: current password verified', me);
    -- changes only the hash the old password was checked against
    UPDATE utilix.app_user a SET password_hash = new_hash, must_change = false,
           updated_at = now()
     WHERE a.tenant_id = t AND a.login = me AND a.status = 'active' AND a.password_hash = u.password_hash;
    IF NOT FOUND THEN
        -- on record before the error: the access log keeps it
        PERFORM utilix._auth_event(t, me, 'change password', 'denied', inet_client_addr(), 'changed meanwhile');
        RAISE EXCEPTION 'the password was changed or the user disabled meanwhile' USING ERRCODE = '40001',
            HINT = 'Log in again with the current password.';
    END IF;
    PERFORM utilix._auth_event(t, me, 'change password', 'ok', inet_client_addr());
    -- the caller proved the password: its count goes now, like a login's
    PERFORM utilix._login_reset(t, me);
    RETURN utilix._sign_token(t, me, current_setting('utilix.login_ttl')::interval,
                              u.rights, utilix._clearance_within_ceiling(t, u.clearance), 0);
END
$$;
COMMENT ON FUNCTION utilix.change_password(text, text) IS
    'the current user changes its password (also with a password-change-only token); returns a full token, or NULL with a warning (28P01) for a wrong current password';

CREATE FUNCTION utilix.create_user(login text, initial_password text, rights text[] DEFAULT '{read}',
                                   clearance text DEFAULT 'public') RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    IF login IS NULL OR initial_password IS NULL OR rights IS NULL OR clearance IS NULL THEN
        RAISE EXCEPTION 'login, password, rights and clearance must not be null' USING ERRCODE = '22004';
    END IF;
    IF login !~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid login name' USING ERRCODE = '22023',
            DETAIL = 'A login is 1 to 63 characters: letters, digits, ".", "_", "@" and "-", starting with a letter or digit.';
    END IF;
    PERFORM utilix._check_rights_and_clearance(rights, clearance);
    PERFORM utilix._check_ceiling(t, clearance);
    PERFORM utilix._check_password(login, initial_password);
    IF EXISTS (SELECT 1 FROM utilix.app_user a WHERE a.tenant_id = t AND a.login = create_user.login) THEN
        RAISE EXCEPTION 'user "%" already exists', left(login, 64) USING ERRCODE = '23505';
    END IF;
    INSERT INTO utilix.app_user (tenant_id, login, password_hash, rights, clearance)
    VALUES (t, login, utilix._hash_password(initial_password), ARRAY(SELECT DISTINCT unnest(rights) ORDER BY 1), clearance);
    PERFORM utilix._auth_event(t, login, 'create user', 'ok', inet_client_addr(), array_to_string(rights, ','));
END
$$;
COMMENT ON FUNCTION utilix.create_user(text, text, text[], text) IS
    'tenant admin: registers a user of its own tenant; the password must be changed at first login';

-- The row of a user of the admin's own tenant, locked, or 22023.
CREATE FUNCTION utilix._own_user(t bigint, login text) RETURNS utilix.app_user
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    u utilix.app_user;
BEGIN
    IF login IS NULL THEN
        RAISE EXCEPTION 'login must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO u FROM utilix.app_user a WHERE a.tenant_id = t AND a.login = _own_user.login FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user "%" does not exist', left(login, 64) USING ERRCODE = '22023';
    END IF;
    RETURN u;
END
$$;
COMMENT ON FUNCTION utilix._own_user(bigint, text) IS 'internal: a user of the given tenant, or 22023';

CREATE FUNCTION utilix.disable_user(login text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    PERFORM utilix._own_user(t, login);
    UPDATE utilix.app_user a SET status = 'disabled', updated_at = now() WHERE a.tenant_id = t AND a.login = disable_user.login;
    PERFORM utilix._auth_event(t, login, 'disable user', 'ok', inet_client_addr());
END
$$;
COMMENT ON FUNCTION utilix.disable_user(text) IS 'tenant admin: the user can no longer log in';

CREATE FUNCTION utilix.enable_user(login text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    PERFORM utilix._own_user(t, login);
    UPDATE utilix.app_user a SET status = 'active', updated_at = now()
     WHERE a.tenant_id = t AND a.login = enable_user.login;
    PERFORM utilix._login_reset_at_commit(t, login);
    PERFORM utilix._auth_event(t, login, 'enable user', 'ok', inet_client_addr());
END
$$;
COMMENT ON FUNCTION utilix.enable_user(text) IS 'tenant admin: re-enables (and unlocks) a user';

CREATE FUNCTION utilix.drop_user(login text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    PERFORM utilix._own_user(t, login);
    IF login = utilix.current_app_user() THEN
        RAISE EXCEPTION 'an admin cannot drop itself' USING ERRCODE = '55000';
    END IF;
    DELETE FROM utilix.app_user a WHERE a.tenant_id = t AND a.login = drop_user.login;
    PERFORM utilix._auth_event(t, login, 'drop user', 'ok', inet_client_addr());
END
$$;
COMMENT ON FUNCTION utilix.drop_user(text) IS 'tenant admin: removes a user of its tenant';

CREATE FUNCTION utilix.reset_password(login text, new_initial text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    PERFORM utilix._own_user(t, login);
    PERFORM utilix._check_password(login, new_initial);
    UPDATE utilix.app_user a SET password_hash = utilix._hash_password(new_initial), must_change = true,
           updated_at = now()
     WHERE a.tenant_id = t AND a.login = reset_password.login;
    PERFORM utilix._login_reset_at_commit(t, login);
    PERFORM utilix._auth_event(t, login, 'reset password', 'ok', inet_client_addr());
END
$$;
COMMENT ON FUNCTION utilix.reset_password(text, text) IS
    'tenant admin: sets a new initial password, to be changed at next login; unlocks the user';

CREATE FUNCTION utilix.grant_rights(login text, rights text[]) RETURNS text[]
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
    result text[];
BEGIN
    PERFORM utilix._own_user(t, login);
    IF rights IS NULL THEN
        RAISE EXCEPTION 'rights must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM utilix._check_rights_and_clearance(rights, NULL);
    UPDATE utilix.app_user a SET rights = ARRAY(SELECT DISTINCT x FROM unnest(a.rights || grant_rights.rights) x ORDER BY 1),
           updated_at = now()
     WHERE a.tenant_id = t AND a.login = grant_rights.login RETURNING a.rights INTO result;
    PERFORM utilix._auth_event(t, login, 'grant rights', 'ok', inet_client_addr(), array_to_string(rights, ','));
    RETURN result;
END
$$;
COMMENT ON FUNCTION utilix.grant_rights(text, text[]) IS 'tenant admin: adds rights (effective at the user''s next token)';

CREATE FUNCTION utilix.revoke_rights(login text, rights text[]) RETURNS text[]
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
    result text[];
BEGIN
    PERFORM utilix._own_user(t, login);
    IF rights IS NULL THEN
        RAISE EXCEPTION 'rights must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM utilix._check_rights_and_clearance(rights, NULL);
    UPDATE utilix.app_user a SET rights = ARRAY(SELECT x FROM unnest(a.rights) x WHERE x <> ALL (revoke_rights.rights) ORDER BY 1),
           updated_at = now()
     WHERE a.tenant_id = t AND a.login = revoke_rights.login RETURNING a.rights INTO result;
    PERFORM utilix._auth_event(t, login, 'revoke rights', 'ok', inet_client_addr(), array_to_string(rights, ','));
    RETURN result;
END
$$;
COMMENT ON FUNCTION utilix.revoke_rights(text, text[]) IS 'tenant admin: removes rights (effective at the user''s next token)';

CREATE FUNCTION utilix.set_clearance(login text, clearance text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    PERFORM utilix._own_user(t, login);
    IF clearance IS NULL THEN
        RAISE EXCEPTION 'clearance must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM utilix._check_rights_and_clearance(NULL, clearance);
    PERFORM utilix._check_ceiling(t, clearance);
    UPDATE utilix.app_user a SET clearance = set_clearance.clearance, updated_at = now()
     WHERE a.tenant_id = t AND a.login = set_clearance.login;
    PERFORM utilix._auth_event(t, login, 'set clearance', 'ok', inet_client_addr(), clearance);
END
$$;
COMMENT ON FUNCTION utilix.set_clearance(text, text) IS 'tenant admin: sets a user''s clearance (a level of utilix.labels)';

CREATE FUNCTION utilix.allow_admin_network(network cidr) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    IF network IS NULL THEN
        RAISE EXCEPTION 'network must not be null' USING ERRCODE = '22004';
    END IF;
    INSERT INTO utilix.admin_network (tenant_id, network, added_by)
    VALUES (t, network, utilix.current_app_user()) ON CONFLICT DO NOTHING;
    PERFORM utilix._auth_event(t, utilix.current_app_user(), 'allow admin network', 'ok', inet_client_addr(), network::text);
END
$$;
COMMENT ON FUNCTION utilix.allow_admin_network(cidr) IS 'tenant admin: admins of its tenant may log in from this range';

CREATE FUNCTION utilix.revoke_admin_network(network cidr) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint := utilix._require_admin();
BEGIN
    IF network IS NULL THEN
        RAISE EXCEPTION 'network must not be null' USING ERRCODE = '22004';
    END IF;
    DELETE FROM utilix.admin_network n WHERE n.tenant_id = t AND n.network = revoke_admin_network.network;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'network % is not allowed for admins', network USING ERRCODE = '22023';
    END IF;
    PERFORM utilix._auth_event(t, utilix.current_app_user(), 'revoke admin network', 'ok', inet_client_addr(), network::text);
END
$$;
COMMENT ON FUNCTION utilix.revoke_admin_network(cidr) IS 'tenant admin: removes an address range for admin logins';

CREATE FUNCTION utilix.create_tenant_admin(tenant bigint, login text, initial_password text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF tenant IS NULL OR login IS NULL OR initial_password IS NULL THEN
        RAISE EXCEPTION 'tenant, login and password must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM utilix.tenant t WHERE t.id = tenant AND t.status = 'active') THEN
        RAISE EXCEPTION 'tenant % does not exist or is not active', tenant USING ERRCODE = '22023';
    END IF;
    IF login !~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid login name' USING ERRCODE = '22023';
    END IF;
    PERFORM utilix._check_password(login, initial_password);
    IF EXISTS (SELECT 1 FROM utilix.app_user a WHERE a.tenant_id = tenant AND a.login = create_tenant_admin.login) THEN
        RAISE EXCEPTION 'user "%" already exists', left(login, 64) USING ERRCODE = '23505';
    END IF;
    INSERT INTO utilix.app_user (tenant_id, login, password_hash, rights)
    VALUES (tenant, login, utilix._hash_password(initial_password), '{admin,audit,read,write}');
    PERFORM utilix._auth_event(tenant, login, 'create tenant admin', 'ok', inet_client_addr(), session_user);
END
$$;
COMMENT ON FUNCTION utilix.create_tenant_admin(bigint, text, text) IS
    'operator: creates a tenant''s first admin (rights admin, audit, read, write; password change at first login)';

CREATE FUNCTION utilix.allow_tenant_admin_network(tenant bigint, network cidr) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF tenant IS NULL OR network IS NULL THEN
        RAISE EXCEPTION 'tenant and network must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM utilix.tenant t WHERE t.id = tenant AND t.status = 'active') THEN
        RAISE EXCEPTION 'tenant % does not exist or is not active', tenant USING ERRCODE = '22023';
    END IF;
    INSERT INTO utilix.admin_network (tenant_id, network, added_by)
    VALUES (tenant, network, 'operator ' || session_user) ON CONFLICT DO NOTHING;
    PERFORM utilix._auth_event(tenant, NULL, 'allow admin network', 'ok', inet_client_addr(), network::text);
END
$$;
COMMENT ON FUNCTION utilix.allow_tenant_admin_network(bigint, cidr) IS
    'operator: the first address range a new tenant''s admins may log in from (later ones the tenant admin adds)';

-- Views for tenant admins: their own tenant only, and never a hash.
CREATE VIEW utilix.users WITH (security_barrier) AS
    SELECT a.login, a.status, a.rights, a.clearance, a.must_change, (a.s).failures AS failed_attempts,
           (a.s).locked_until, a.created_at, a.updated_at, a.last_login
      FROM (SELECT a.*, utilix._login_state(a.tenant_id, a.login) AS s
              FROM utilix.app_user a
             WHERE a.tenant_id = utilix.current_tenant() AND utilix._may('admin') OFFSET 0) a;
COMMENT ON VIEW utilix.users IS 'tenant admin: the users of its tenant with rights, clearance, status and last login';

CREATE VIEW utilix.admin_networks WITH (security_barrier) AS
    SELECT n.network, n.added_at, n.added_by FROM utilix.admin_network n
     WHERE n.tenant_id = utilix.current_tenant() AND utilix._may('admin');
COMMENT ON VIEW utilix.admin_networks IS 'tenant admin: address ranges its admins may log in from';

CREATE VIEW utilix.auth_events WITH (security_barrier) AS
    SELECT e.at, e.login, e.event, e.outcome, e.client_addr, e.actor, e.detail FROM utilix.auth_event e
     WHERE e.tenant_id = utilix.current_tenant() AND (utilix._may('admin') OR utilix._may('audit'));
COMMENT ON VIEW utilix.auth_events IS 'tenant admin or auditor: logins and user administration of its tenant, newest last';
COMMENT ON SEQUENCE utilix.auth_event_id_seq IS 'ids of auth events';
