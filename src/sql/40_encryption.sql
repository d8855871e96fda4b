-- utilix install script, part 40: per-tenant data keys and column encryption.

CREATE TABLE utilix.data_key (
    tenant_id    bigint NOT NULL REFERENCES utilix.tenant (id),
    version      integer NOT NULL CHECK (version >= 0),
    wrapped      bytea CHECK (wrapped IS NULL OR pg_catalog.length(wrapped) = 60),
    state        text NOT NULL DEFAULT 'active'
                 CHECK (state IN ('active', 'retiring', 'retired', 'destroyed')),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at   timestamptz,
    destroyed_at timestamptz,
    PRIMARY KEY (tenant_id, version),
    CHECK ((wrapped IS NULL) = (state IN ('retired', 'destroyed')))
);
COMMENT ON TABLE utilix.data_key IS
    'per-tenant data keys, stored only wrapped under the master key; version 0 is the blind-index root';
REVOKE ALL ON utilix.data_key FROM PUBLIC;
CREATE TRIGGER data_key_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON utilix.data_key
    FOR EACH STATEMENT EXECUTE FUNCTION utilix._invalidate_cache();
SELECT pg_catalog.pg_extension_config_dump('utilix.data_key', '');

CREATE FUNCTION utilix._wrap_new_key(tenant bigint, version integer) RETURNS bytea
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'utilix_wrap_new_key';
COMMENT ON FUNCTION utilix._wrap_new_key(bigint, integer) IS 'internal: a fresh random data key, wrapped';

CREATE FUNCTION utilix._random_id() RETURNS bigint
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'utilix_random_id';
COMMENT ON FUNCTION utilix._random_id() IS 'internal: a random positive bigint';

-- Creates a tenant's blind-index root and first data key when missing;
-- returns the active version (NULL for a tenant that is not active).
CREATE FUNCTION utilix._ensure_tenant_keys(tenant bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v integer;
BEGIN
    SELECT max(k.version) INTO v FROM utilix.data_key k
     WHERE k.tenant_id = tenant AND k.version > 0 AND k.state = 'active';
    IF v IS NOT NULL THEN
        RETURN v;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM utilix.tenant t WHERE t.id = tenant AND t.status = 'active') THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM utilix.data_key k WHERE k.tenant_id = tenant AND k.state = 'destroyed') THEN
        RETURN NULL;
    END IF;
    INSERT INTO utilix.data_key (tenant_id, version, wrapped)
        VALUES (tenant, 0, utilix._wrap_new_key(tenant, 0)),
               (tenant, 1, utilix._wrap_new_key(tenant, 1))
        ON CONFLICT DO NOTHING;
    SELECT max(k.version) INTO v FROM utilix.data_key k
     WHERE k.tenant_id = tenant AND k.version > 0 AND k.state = 'active';
    RETURN v;
END
$$;
COMMENT ON FUNCTION utilix._ensure_tenant_keys(bigint) IS
    'internal: creates a tenant''s keys on first use and returns its active key version';

CREATE TABLE utilix.encrypted_column (
    column_id    bigint PRIMARY KEY,
    schema_name  name NOT NULL,
    table_name   name NOT NULL,
    column_name  name NOT NULL,
    relid        oid NOT NULL,
    attnum       smallint NOT NULL,
    plain_type   text NOT NULL CHECK (plain_type IN ('text', 'bytea', 'jsonb')),
    label        text,
    searchable   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by   name NOT NULL DEFAULT SESSION_USER,
    UNIQUE (schema_name, table_name, column_name)
);
COMMENT ON TABLE utilix.encrypted_column IS
    'encrypted columns; column_id is random, stable across renames, dumps and restores, and bound into every ciphertext';
REVOKE ALL ON utilix.encrypted_column FROM PUBLIC;
CREATE TRIGGER encrypted_column_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON utilix.encrypted_column
    FOR EACH STATEMENT EXECUTE FUNCTION utilix._invalidate_cache();
SELECT pg_catalog.pg_extension_config_dump('utilix.encrypted_column', '');

CREATE FUNCTION utilix._seal_row() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'utilix_seal_row';
COMMENT ON FUNCTION utilix._seal_row() IS
    'internal: BEFORE row trigger that seals plaintext under the row''s tenant and checks written-back ciphertext';

-- The three encrypted types share their C functions but not their I/O.
CREATE TYPE utilix.encrypted_text;
CREATE TYPE utilix.encrypted_bytea;
CREATE TYPE utilix.encrypted_jsonb;

CREATE FUNCTION utilix.encrypted_text_in(cstring) RETURNS utilix.encrypted_text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_enc_in_text';
CREATE FUNCTION utilix.encrypted_text_out(utilix.encrypted_text) RETURNS cstring
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_enc_out_text';
CREATE FUNCTION utilix.encrypted_bytea_in(cstring) RETURNS utilix.encrypted_bytea
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_enc_in_bytea';
CREATE FUNCTION utilix.encrypted_bytea_out(utilix.encrypted_bytea) RETURNS cstring
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_enc_out_bytea';
CREATE FUNCTION utilix.encrypted_jsonb_in(cstring) RETURNS utilix.encrypted_jsonb
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_enc_in_jsonb';
CREATE FUNCTION utilix.encrypted_jsonb_out(utilix.encrypted_jsonb) RETURNS cstring
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_enc_out_jsonb';
COMMENT ON FUNCTION utilix.encrypted_text_in(cstring) IS 'input: plaintext, or armoured ciphertext (utxe1:...) written back unchanged';
COMMENT ON FUNCTION utilix.encrypted_text_out(utilix.encrypted_text) IS 'output: plaintext for a context of the value''s tenant with enough clearance, armour otherwise';
COMMENT ON FUNCTION utilix.encrypted_bytea_in(cstring) IS 'input: plaintext bytea, or armoured ciphertext';
COMMENT ON FUNCTION utilix.encrypted_bytea_out(utilix.encrypted_bytea) IS 'output: plaintext for a context of the value''s tenant with enough clearance, armour otherwise';
COMMENT ON FUNCTION utilix.encrypted_jsonb_in(cstring) IS 'input: plaintext json, or armoured ciphertext';
COMMENT ON FUNCTION utilix.encrypted_jsonb_out(utilix.encrypted_jsonb) IS 'output: plaintext for a context of the value''s tenant with enough clearance, armour otherwise';

CREATE TYPE utilix.encrypted_text (INPUT = utilix.encrypted_text_in, OUTPUT = utilix.encrypted_text_out,
    INTERNALLENGTH = VARIABLE, STORAGE = extended, CATEGORY = 'U');
CREATE TYPE utilix.encrypted_bytea (INPUT = utilix.encrypted_bytea_in, OUTPUT = utilix.encrypted_bytea_out,
    INTERNALLENGTH = VARIABLE, STORAGE = extended, CATEGORY = 'U');
CREATE TYPE utilix.encrypted_jsonb (INPUT = utilix.encrypted_jsonb_in, OUTPUT = utilix.encrypted_jsonb_out,
    INTERNALLENGTH = VARIABLE, STORAGE = extended, CATEGORY = 'U');
COMMENT ON TYPE utilix.encrypted_text IS 'text stored as AES-256-GCM ciphertext bound to its tenant and column';
COMMENT ON TYPE utilix.encrypted_bytea IS 'bytea stored as AES-256-GCM ciphertext bound to its tenant and column';
COMMENT ON TYPE utilix.encrypted_jsonb IS 'jsonb stored as AES-256-GCM ciphertext bound to its tenant and column';

-- Plain values become pending encrypted values without any conversion;
-- the seal trigger seals them.  Reading back decrypts (or gives armour).
CREATE FUNCTION utilix.decrypt(utilix.encrypted_text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_decrypt_value';
CREATE FUNCTION utilix.decrypt(utilix.encrypted_bytea) RETURNS bytea
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_decrypt_value';
CREATE FUNCTION utilix.decrypt(utilix.encrypted_jsonb) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_decrypt_value';
COMMENT ON FUNCTION utilix.decrypt(utilix.encrypted_text) IS 'plaintext for a context that may read it, armour otherwise';
COMMENT ON FUNCTION utilix.decrypt(utilix.encrypted_bytea) IS 'plaintext for a context that may read it, NULL otherwise';
COMMENT ON FUNCTION utilix.decrypt(utilix.encrypted_jsonb) IS 'plaintext for a context that may read it, NULL otherwise';
CREATE CAST (text AS utilix.encrypted_text) WITHOUT FUNCTION AS ASSIGNMENT;
CREATE CAST (bytea AS utilix.encrypted_bytea) WITHOUT FUNCTION AS ASSIGNMENT;
CREATE CAST (jsonb AS utilix.encrypted_jsonb) WITHOUT FUNCTION AS ASSIGNMENT;
CREATE CAST (utilix.encrypted_text AS text) WITH FUNCTION utilix.decrypt(utilix.encrypted_text) AS IMPLICIT;
CREATE CAST (utilix.encrypted_bytea AS bytea) WITH FUNCTION utilix.decrypt(utilix.encrypted_bytea) AS IMPLICIT;
CREATE CAST (utilix.encrypted_jsonb AS jsonb) WITH FUNCTION utilix.decrypt(utilix.encrypted_jsonb) AS IMPLICIT;

-- Equality with a plain value: decrypts each value, unless a blind index answers it.
-- LEAKPROOF (so that row level security lets it be an index condition): it
-- reads a value only for a context of that value's tenant, and for any other
-- value, or a malformed one, it answers false without raising.
CREATE FUNCTION utilix._eq_support(internal) RETURNS internal
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'utilix_enc_eq_support';
COMMENT ON FUNCTION utilix._eq_support(internal) IS
    'internal: planner support that turns equality on a searchable column into a blind-index lookup';
CREATE FUNCTION utilix._eq(utilix.encrypted_text, text) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE SUPPORT utilix._eq_support
    AS 'MODULE_PATHNAME', 'utilix_enc_eq_plain';
CREATE FUNCTION utilix._eq(utilix.encrypted_bytea, bytea) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE SUPPORT utilix._eq_support
    AS 'MODULE_PATHNAME', 'utilix_enc_eq_plain';
CREATE FUNCTION utilix._eq(utilix.encrypted_jsonb, jsonb) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE SUPPORT utilix._eq_support
    AS 'MODULE_PATHNAME', 'utilix_enc_eq_plain';
COMMENT ON FUNCTION utilix._eq(utilix.encrypted_text, text) IS 'internal: encrypted = plain';
COMMENT ON FUNCTION utilix._eq(utilix.encrypted_bytea, bytea) IS 'internal: encrypted = plain';
COMMENT ON FUNCTION utilix._eq(utilix.encrypted_jsonb, jsonb) IS 'internal: encrypted = plain';
CREATE OPERATOR utilix.= (LEFTARG = utilix.encrypted_text, RIGHTARG = text, FUNCTION = utilix._eq,
    RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR utilix.= (LEFTARG = utilix.encrypted_bytea, RIGHTARG = bytea, FUNCTION = utilix._eq,
    RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR utilix.= (LEFTARG = utilix.encrypted_jsonb, RIGHTARG = jsonb, FUNCTION = utilix._eq,
    RESTRICT = eqsel, JOIN = eqjoinsel);
COMMENT ON OPERATOR utilix.= (utilix.encrypted_text, text) IS 'decrypting equality (blind index when searchable)';
COMMENT ON OPERATOR utilix.= (utilix.encrypted_bytea, bytea) IS 'decrypting equality (blind index when searchable)';
COMMENT ON OPERATOR utilix.= (utilix.encrypted_jsonb, jsonb) IS 'decrypting equality (blind index when searchable)';

-- Blind index: a hash index on the (tenant, column, HMAC) inside each value.
-- Equality is reading: every function here answers only for a session that
-- may read the values compared (a context of their tenant whose clearance
-- reaches the column's label) or whose role is outside row level security;
-- _bidx_eq and _bidx_match answer false otherwise (LEAKPROOF, never an
-- error), _bidx_hash called from SQL raises 42501.  They are STABLE, not
-- IMMUTABLE: the answer depends on the context, so no plan may fold it and
-- no index expression may store it.
--
-- The blind index is searched only with probes (utilix.blind_probe), which
-- only utilix._blind_probe() makes, for a context that may read the column:
-- the operator family holds the one operator =# (encrypted, blind_probe),
-- so that no stored value (a guess written for the purpose) can serve as
-- the key of an index search and count its equals in the statistics.
CREATE TYPE utilix.blind_probe;
CREATE FUNCTION utilix.blind_probe_in(cstring) RETURNS utilix.blind_probe
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_blind_probe_in';
CREATE FUNCTION utilix.blind_probe_out(utilix.blind_probe) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_blind_probe_out';
CREATE TYPE utilix.blind_probe (INPUT = utilix.blind_probe_in, OUTPUT = utilix.blind_probe_out,
    INTERNALLENGTH = VARIABLE, STORAGE = plain, CATEGORY = 'U');
COMMENT ON FUNCTION utilix.blind_probe_in(cstring) IS 'input: refused, a probe is made by utilix._blind_probe() only';
COMMENT ON FUNCTION utilix.blind_probe_out(utilix.blind_probe) IS 'output: a fixed text, never the probe';
COMMENT ON TYPE utilix.blind_probe IS 'internal: what a blind index is searched for, made by utilix._blind_probe() for a context that may read the column';

CREATE FUNCTION utilix._bidx_eq(utilix.encrypted_text, utilix.encrypted_text) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_eq';
CREATE FUNCTION utilix._bidx_eq(utilix.encrypted_bytea, utilix.encrypted_bytea) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_eq';
CREATE FUNCTION utilix._bidx_eq(utilix.encrypted_jsonb, utilix.encrypted_jsonb) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_eq';
CREATE FUNCTION utilix._bidx_match(utilix.encrypted_text, utilix.blind_probe) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_match';
CREATE FUNCTION utilix._bidx_match(utilix.encrypted_bytea, utilix.blind_probe) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_match';
CREATE FUNCTION utilix._bidx_match(utilix.encrypted_jsonb, utilix.blind_probe) RETURNS boolean
    LANGUAGE c STABLE STRICT LEAKPROOF PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_match';
CREATE FUNCTION utilix._bidx_hash(utilix.encrypted_text) RETURNS integer
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_hash';
CREATE FUNCTION utilix._bidx_hash(utilix.encrypted_bytea) RETURNS integer
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_hash';
CREATE FUNCTION utilix._bidx_hash(utilix.encrypted_jsonb) RETURNS integer
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_hash';
CREATE FUNCTION utilix._bidx_hash(utilix.blind_probe) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_probe_hash';
CREATE OPERATOR utilix.=# (LEFTARG = utilix.encrypted_text, RIGHTARG = utilix.encrypted_text,
    FUNCTION = utilix._bidx_eq, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR utilix.=# (LEFTARG = utilix.encrypted_bytea, RIGHTARG = utilix.encrypted_bytea,
    FUNCTION = utilix._bidx_eq, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR utilix.=# (LEFTARG = utilix.encrypted_jsonb, RIGHTARG = utilix.encrypted_jsonb,
    FUNCTION = utilix._bidx_eq, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR utilix.=# (LEFTARG = utilix.encrypted_text, RIGHTARG = utilix.blind_probe,
    FUNCTION = utilix._bidx_match, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR utilix.=# (LEFTARG = utilix.encrypted_bytea, RIGHTARG = utilix.blind_probe,
    FUNCTION = utilix._bidx_match, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR utilix.=# (LEFTARG = utilix.encrypted_jsonb, RIGHTARG = utilix.blind_probe,
    FUNCTION = utilix._bidx_match, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR CLASS utilix.encrypted_text_blind_ops FOR TYPE utilix.encrypted_text USING hash AS
    OPERATOR 1 utilix.=# (utilix.encrypted_text, utilix.blind_probe),
    FUNCTION 1 (utilix.encrypted_text) utilix._bidx_hash(utilix.encrypted_text),
    FUNCTION 1 (utilix.blind_probe) utilix._bidx_hash(utilix.blind_probe);
CREATE OPERATOR CLASS utilix.encrypted_bytea_blind_ops FOR TYPE utilix.encrypted_bytea USING hash AS
    OPERATOR 1 utilix.=# (utilix.encrypted_bytea, utilix.blind_probe),
    FUNCTION 1 (utilix.encrypted_bytea) utilix._bidx_hash(utilix.encrypted_bytea),
    FUNCTION 1 (utilix.blind_probe) utilix._bidx_hash(utilix.blind_probe);
CREATE OPERATOR CLASS utilix.encrypted_jsonb_blind_ops FOR TYPE utilix.encrypted_jsonb USING hash AS
    OPERATOR 1 utilix.=# (utilix.encrypted_jsonb, utilix.blind_probe),
    FUNCTION 1 (utilix.encrypted_jsonb) utilix._bidx_hash(utilix.encrypted_jsonb),
    FUNCTION 1 (utilix.blind_probe) utilix._bidx_hash(utilix.blind_probe);
COMMENT ON FUNCTION utilix._bidx_eq(utilix.encrypted_text, utilix.encrypted_text) IS 'internal: blind-index equality, for a session that may read both values';
COMMENT ON FUNCTION utilix._bidx_eq(utilix.encrypted_bytea, utilix.encrypted_bytea) IS 'internal: blind-index equality, for a session that may read both values';
COMMENT ON FUNCTION utilix._bidx_eq(utilix.encrypted_jsonb, utilix.encrypted_jsonb) IS 'internal: blind-index equality, for a session that may read both values';
COMMENT ON FUNCTION utilix._bidx_match(utilix.encrypted_text, utilix.blind_probe) IS 'internal: does a value match a blind-index probe (the blind index''s operator)';
COMMENT ON FUNCTION utilix._bidx_match(utilix.encrypted_bytea, utilix.blind_probe) IS 'internal: does a value match a blind-index probe (the blind index''s operator)';
COMMENT ON FUNCTION utilix._bidx_match(utilix.encrypted_jsonb, utilix.blind_probe) IS 'internal: does a value match a blind-index probe (the blind index''s operator)';
COMMENT ON FUNCTION utilix._bidx_hash(utilix.encrypted_text) IS 'internal: blind-index hash (from SQL, only for a session that may read the value)';
COMMENT ON FUNCTION utilix._bidx_hash(utilix.encrypted_bytea) IS 'internal: blind-index hash (from SQL, only for a session that may read the value)';
COMMENT ON FUNCTION utilix._bidx_hash(utilix.encrypted_jsonb) IS 'internal: blind-index hash (from SQL, only for a session that may read the value)';
COMMENT ON FUNCTION utilix._bidx_hash(utilix.blind_probe) IS 'internal: hash of a blind-index probe';
COMMENT ON OPERATOR utilix.=# (utilix.encrypted_text, utilix.encrypted_text) IS 'blind-index equality (internal), for a session that may read both values';
COMMENT ON OPERATOR utilix.=# (utilix.encrypted_bytea, utilix.encrypted_bytea) IS 'blind-index equality (internal), for a session that may read both values';
COMMENT ON OPERATOR utilix.=# (utilix.encrypted_jsonb, utilix.encrypted_jsonb) IS 'blind-index equality (internal), for a session that may read both values';
COMMENT ON OPERATOR utilix.=# (utilix.encrypted_text, utilix.blind_probe) IS 'blind-index lookup (internal)';
COMMENT ON OPERATOR utilix.=# (utilix.encrypted_bytea, utilix.blind_probe) IS 'blind-index lookup (internal)';
COMMENT ON OPERATOR utilix.=# (utilix.encrypted_jsonb, utilix.blind_probe) IS 'blind-index lookup (internal)';
COMMENT ON OPERATOR CLASS utilix.encrypted_text_blind_ops USING hash IS 'blind index of a searchable encrypted column (utilix''s own indexes only)';
COMMENT ON OPERATOR CLASS utilix.encrypted_bytea_blind_ops USING hash IS 'blind index of a searchable encrypted column (utilix''s own indexes only)';
COMMENT ON OPERATOR CLASS utilix.encrypted_jsonb_blind_ops USING hash IS 'blind index of a searchable encrypted column (utilix''s own indexes only)';
COMMENT ON OPERATOR FAMILY utilix.encrypted_text_blind_ops USING hash IS 'blind index of a searchable encrypted column (utilix''s own indexes only)';
COMMENT ON OPERATOR FAMILY utilix.encrypted_bytea_blind_ops USING hash IS 'blind index of a searchable encrypted column (utilix''s own indexes only)';
COMMENT ON OPERATOR FAMILY utilix.encrypted_jsonb_blind_ops USING hash IS 'blind index of a searchable encrypted column (utilix''s own indexes only)';

CREATE FUNCTION utilix._blind_probe(text, bigint) RETURNS utilix.blind_probe
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_blind_probe';
CREATE FUNCTION utilix._blind_probe(bytea, bigint) RETURNS utilix.blind_probe
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_blind_probe';
CREATE FUNCTION utilix._blind_probe(jsonb, bigint) RETURNS utilix.blind_probe
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_blind_probe';
COMMENT ON FUNCTION utilix._blind_probe(text, bigint) IS 'internal: blind-index probe for the current tenant, when its context may read the column';
COMMENT ON FUNCTION utilix._blind_probe(bytea, bigint) IS 'internal: blind-index probe for the current tenant, when its context may read the column';
COMMENT ON FUNCTION utilix._blind_probe(jsonb, bigint) IS 'internal: blind-index probe for the current tenant, when its context may read the column';

CREATE FUNCTION utilix.is_sealed(utilix.encrypted_text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_is_sealed_value';
CREATE FUNCTION utilix.is_sealed(utilix.encrypted_bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_is_sealed_value';
CREATE FUNCTION utilix.is_sealed(utilix.encrypted_jsonb) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_is_sealed_value';
COMMENT ON FUNCTION utilix.is_sealed(utilix.encrypted_text) IS 'is the stored value well-formed ciphertext (the CHECK on every encrypted column)';
COMMENT ON FUNCTION utilix.is_sealed(utilix.encrypted_bytea) IS 'is the stored value well-formed ciphertext (the CHECK on every encrypted column)';
COMMENT ON FUNCTION utilix.is_sealed(utilix.encrypted_jsonb) IS 'is the stored value well-formed ciphertext (the CHECK on every encrypted column)';
CREATE FUNCTION utilix.key_version(utilix.encrypted_text) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_key_version_of';
CREATE FUNCTION utilix.key_version(utilix.encrypted_bytea) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_key_version_of';
CREATE FUNCTION utilix.key_version(utilix.encrypted_jsonb) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_key_version_of';
COMMENT ON FUNCTION utilix.key_version(utilix.encrypted_text) IS 'the data key version a value was sealed with';
COMMENT ON FUNCTION utilix.key_version(utilix.encrypted_bytea) IS 'the data key version a value was sealed with';
COMMENT ON FUNCTION utilix.key_version(utilix.encrypted_jsonb) IS 'the data key version a value was sealed with';
CREATE FUNCTION utilix._bidx_unmasked(utilix.encrypted_text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_unmasked';
CREATE FUNCTION utilix._bidx_unmasked(utilix.encrypted_bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_unmasked';
CREATE FUNCTION utilix._bidx_unmasked(utilix.encrypted_jsonb) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'utilix_bidx_unmasked';
COMMENT ON FUNCTION utilix._bidx_unmasked(utilix.encrypted_text) IS 'internal: is the value''s blind index stored unmasked (written before masking); reencrypt() rewrites it';
COMMENT ON FUNCTION utilix._bidx_unmasked(utilix.encrypted_bytea) IS 'internal: is the value''s blind index stored unmasked (written before masking); reencrypt() rewrites it';
COMMENT ON FUNCTION utilix._bidx_unmasked(utilix.encrypted_jsonb) IS 'internal: is the value''s blind index stored unmasked (written before masking); reencrypt() rewrites it';
CREATE FUNCTION utilix._plain(utilix.encrypted_text) RETURNS text
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'utilix_plain_value';
CREATE FUNCTION utilix._plain(utilix.encrypted_bytea) RETURNS bytea
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'utilix_plain_value';
CREATE FUNCTION utilix._plain(utilix.encrypted_jsonb) RETURNS jsonb
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'utilix_plain_value';
COMMENT ON FUNCTION utilix._plain(utilix.encrypted_text) IS 'internal: plaintext without a context check (re-encryption, decrypt_column, export)';
COMMENT ON FUNCTION utilix._plain(utilix.encrypted_bytea) IS 'internal: plaintext without a context check (re-encryption, decrypt_column, export)';
COMMENT ON FUNCTION utilix._plain(utilix.encrypted_jsonb) IS 'internal: plaintext without a context check (re-encryption, decrypt_column, export)';

-- Every leaf table of a table (itself when not partitioned).
CREATE FUNCTION utilix._leaves(rel regclass) RETURNS SETOF regclass
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT t.relid FROM pg_partition_tree(rel) t
     WHERE t.isleaf AND (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) = 'p'
    UNION ALL
    SELECT rel WHERE (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) = 'r'
$$;
COMMENT ON FUNCTION utilix._leaves(regclass) IS 'internal: the leaf tables of a (partitioned) table';

CREATE FUNCTION utilix.encrypt_column(rel regclass, col name, label text DEFAULT NULL,
                                      searchable boolean DEFAULT false, batch_size integer DEFAULT 10000)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = notice
    SET utilix.internal_ddl = on
    AS $$
DECLARE
    p record;
    att record;
    plain text;
    enc_type text;
    cid bigint;
    leaf regclass;
    n bigint;
    bad boolean;
    total bigint := 0;
BEGIN
    IF rel IS NULL OR col IS NULL OR searchable IS NULL THEN
        RAISE EXCEPTION 'table, column and searchable must not be null' USING ERRCODE = '22004';
    END IF;
    IF batch_size IS NULL THEN
        RAISE EXCEPTION 'batch_size must not be null' USING ERRCODE = '22004';
    END IF;
    IF batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO p FROM utilix.protected_table WHERE relid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not protected', rel::text
            USING ERRCODE = '55000', HINT = 'Call utilix.protect() first: a column is encrypted under the key of each row''s tenant.';
    END IF;
    IF (SELECT relispartition FROM pg_class WHERE oid = rel) THEN
        RAISE EXCEPTION '"%" is a partition', rel::text
            USING ERRCODE = '42809', HINT = 'Encrypt the column of the partitioned table.';
    END IF;
    SELECT a.attnum, format_type(a.atttypid, a.atttypmod) AS typ INTO att
      FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', col, rel::text USING ERRCODE = '42703';
    END IF;
    IF col = p.tenant_column THEN
        RAISE EXCEPTION 'the tenant column cannot be encrypted' USING ERRCODE = '22023';
    END IF;
    IF att.typ LIKE 'utilix.encrypted_%' THEN
        RAISE EXCEPTION 'column "%" of table "%" is already encrypted', col, rel::text USING ERRCODE = '55000';
    END IF;
    IF att.typ NOT IN ('text', 'bytea', 'jsonb') THEN
        RAISE EXCEPTION 'column "%" has type %, which cannot be encrypted', col, att.typ
            USING ERRCODE = '42804', HINT = 'Encrypted columns are text, bytea or jsonb; convert the column first.';
    END IF;
    IF label IS NOT NULL AND NOT (label = ANY (string_to_array(replace(current_setting('utilix.labels'), ' ', ''), ','))) THEN
        RAISE EXCEPTION 'unknown label "%"', left(label, 64)
            USING ERRCODE = '22023', DETAIL = format('The labels are %s (utilix.labels).', current_setting('utilix.labels'));
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = rel AND att.attnum = ANY (i.indkey::smallint[])) THEN
        RAISE EXCEPTION 'column "%" is part of an index', col
            USING ERRCODE = '55000', HINT = 'Drop the index first; use searchable => true for equality lookups.';
    END IF;
    plain := att.typ;
    enc_type := 'utilix.encrypted_' || plain;
    IF plain = 'text' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I LIKE %L)', rel, col, 'utxe1:%') INTO STRICT bad;
        IF bad THEN
            RAISE EXCEPTION 'column "%" holds values that start with the armour prefix "utxe1:"', col USING ERRCODE = '22023';
        END IF;
    ELSIF plain = 'bytea' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE substr(%I, 1, 5) = %L::bytea OR substr(%I, 1, 6) = %L::bytea)',
                       rel, col, '\xff55545845', col, convert_to('utxe1:', 'UTF8')) INTO STRICT bad;
        IF bad THEN
            RAISE EXCEPTION 'column "%" holds values that look like utilix ciphertext', col USING ERRCODE = '22023';
        END IF;
    END IF;

    cid := utilix._random_id();
    -- binary-coercible: no rewrite; existing values become pending
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s', rel, col, enc_type);
    INSERT INTO utilix.encrypted_column (column_id, schema_name, table_name, column_name, relid, attnum,
                                         plain_type, label, searchable)
        VALUES (cid, p.schema_name, p.table_name, col, rel, att.attnum, plain, label, searchable);
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (utilix.is_sealed(%I)) NOT VALID',
                   rel, 'utilix_sealed_' || cid, col);
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'zz_utilix_seal') THEN
        EXECUTE format('CREATE TRIGGER zz_utilix_seal BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION utilix._seal_row()', rel);
    END IF;

    -- seal what is already there, leaf by leaf, in batches
    FOR leaf IN SELECT * FROM utilix._leaves(rel) LOOP
        LOOP
            -- as the table's owner, restricted: see utilix._exec_as_owner
            n := (utilix._exec_as_owner(leaf,
                      format('UPDATE %s SET %I = %I WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE NOT utilix.is_sealed(%I) LIMIT %s))',
                             leaf, col, col, leaf, col, batch_size)))[1]::bigint;
            EXIT WHEN n = 0;
            total := total + n;
            RAISE NOTICE 'utilix: % rows of %.% sealed', total, rel::text, col;
        END LOOP;
    END LOOP;
    EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', rel, 'utilix_sealed_' || cid);
    IF searchable THEN
        EXECUTE format('CREATE INDEX %I ON %s USING hash (%I utilix.%I)',
                       'utilix_bidx_' || cid, rel, col, 'encrypted_' || plain || '_blind_ops');
    END IF;
    RETURN total;
END
$$;
COMMENT ON FUNCTION utilix.encrypt_column(regclass, name, text, boolean, integer) IS
    'operator: encrypts a text, bytea or jsonb column of a protected table in place (batches of batch_size rows); returns the rows sealed';

CREATE FUNCTION utilix.decrypt_column(rel regclass, col name) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET utilix.internal_ddl = on
    AS $$
DECLARE
    e record;
    tenants bigint[];
    tcol name;
    t bigint;
BEGIN
    IF rel IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'table and column must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM utilix._sync_protected();
    PERFORM utilix._sync_encrypted();
    SELECT * INTO e FROM utilix.encrypted_column WHERE relid = rel AND column_name = col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" is not encrypted', col, rel::text USING ERRCODE = '22023';
    END IF;
    -- every tenant whose values lose their encryption hears of it in its
    -- own chain of the access log, when this commits
    SELECT p.tenant_column INTO tcol FROM utilix.protected_table p WHERE p.relid = rel;
    IF tcol IS NOT NULL THEN
        EXECUTE format('SELECT ARRAY(SELECT DISTINCT x.%I FROM %s x WHERE x.%I IS NOT NULL ORDER BY 1)', tcol, rel, col)
            INTO tenants;
    END IF;
    FOREACH t IN ARRAY COALESCE(tenants, '{}') LOOP
        PERFORM utilix._log_event('key', t, 'ok', format('column %s.%s decrypted: its values are stored in plaintext', rel::text, col),
                                  on_commit => true);
    END LOOP;
    EXECUTE format('DROP INDEX IF EXISTS %I.%I', e.schema_name, 'utilix_bidx_' || e.column_id);
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', rel, 'utilix_sealed_' || e.column_id);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING utilix._plain(%I)', rel, col, e.plain_type, col);
    DELETE FROM utilix.encrypted_column WHERE column_id = e.column_id;
    IF NOT EXISTS (SELECT 1 FROM utilix.encrypted_column WHERE relid = rel) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS zz_utilix_seal ON %s', rel);
    END IF;
END
$$;
COMMENT ON FUNCTION utilix.decrypt_column(regclass, name) IS
    'operator: turns an encrypted column back into its plain type (rewrites the table)';

CREATE VIEW utilix.encrypted_columns AS
    SELECT to_regclass(format('%I.%I', e.schema_name, e.table_name)) AS table_name,
           e.column_name, e.plain_type, e.label, e.searchable, e.column_id, e.created_at, e.created_by
      FROM utilix.encrypted_column e;
COMMENT ON VIEW utilix.encrypted_columns IS 'operator: every encrypted column with its label and stable id';

CREATE VIEW utilix.data_keys AS
    SELECT k.tenant_id, k.version, k.state, k.created_at, k.retired_at, k.destroyed_at
      FROM utilix.data_key k WHERE k.version > 0;
COMMENT ON VIEW utilix.data_keys IS 'operator: data key versions per tenant (never the keys)';

CREATE FUNCTION utilix.rotate_tenant_key(tenant bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v integer;
BEGIN
    IF utilix._tenant_status(tenant) <> 'active' THEN
        RAISE EXCEPTION 'tenant % is not active', tenant USING ERRCODE = '55000';
    END IF;
    PERFORM utilix._ensure_tenant_keys(tenant);
    PERFORM 1 FROM utilix.data_key k WHERE k.tenant_id = tenant FOR UPDATE;
    SELECT max(k.version) + 1 INTO v FROM utilix.data_key k WHERE k.tenant_id = tenant;
    UPDATE utilix.data_key k SET state = 'retiring'
     WHERE k.tenant_id = tenant AND k.version > 0 AND k.state = 'active';
    INSERT INTO utilix.data_key (tenant_id, version, wrapped) VALUES (tenant, v, utilix._wrap_new_key(tenant, v));
    PERFORM utilix._log_event('key', tenant, 'ok', format('data key rotated to version %s', v), on_commit => true);
    RETURN v;
END
$$;
COMMENT ON FUNCTION utilix.rotate_tenant_key(bigint) IS
    'operator: adds a data key version for new writes; utilix.reencrypt() moves old values to it';

CREATE FUNCTION utilix.reencrypt(tenant bigint DEFAULT NULL, batch_size integer DEFAULT 1000) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    e record;
    leaf regclass;
    p record;
    n bigint;
    ctids tid[];
    in_use text[];
    part text[];
    total bigint := 0;
BEGIN
    IF batch_size IS NULL THEN
        RAISE EXCEPTION 'batch_size must not be null' USING ERRCODE = '22004';
    END IF;
    IF batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = '22023';
    END IF;
    PERFORM utilix._sync_protected();
    PERFORM utilix._sync_encrypted();
    FOR e IN SELECT c.*, t.tenant_column FROM utilix.encrypted_column c
               JOIN utilix.protected_table t USING (schema_name, table_name) LOOP
        FOR leaf IN SELECT * FROM utilix._leaves(e.relid::regclass) LOOP
            EXECUTE format(
                'SELECT ARRAY(
                    SELECT x.ctid FROM %1$s x
                      JOIN (SELECT k.tenant_id, max(k.version) AS v FROM utilix.data_key k
                             WHERE k.state = ''active'' AND k.version > 0 GROUP BY k.tenant_id) a
                        ON a.tenant_id = x.%3$I
                     WHERE (utilix.key_version(x.%2$I) < a.v OR utilix._bidx_unmasked(x.%2$I))
                       AND ($1 IS NULL OR x.%3$I = $1)
                     LIMIT %4$s)',
                leaf, e.column_name, e.tenant_column, batch_size - total) INTO ctids USING tenant;
            n := 0;
            IF cardinality(ctids) > 0 THEN
                -- as the table's owner, restricted; the seal trigger re-seals
                -- each value under its tenant's active key (and masks a blind
                -- index stored before masking)
                n := (utilix._exec_as_owner(leaf, format('UPDATE %1$s SET %2$I = %2$I WHERE ctid = ANY ($1)', leaf, e.column_name),
                                            ctids, reseal => true))[1]::bigint;
            END IF;
            total := total + n;
            IF total >= batch_size THEN
                RETURN total;
            END IF;
        END LOOP;
    END LOOP;
    -- this call re-sealed rows and holds their locks: waiting for writers
    -- now (below) could deadlock with one that waits for those rows; the
    -- next call, with nothing left to re-seal, retires the old versions
    IF total > 0 THEN
        RETURN total;
    END IF;
    -- nothing older is left: retire the versions no value uses any more
    -- (checked value by value: a version is destroyed only when unused)
    -- (kept in a variable: a temporary table would be found by name in
    -- pg_temp, where the caller can have put one of its own, with triggers)
    in_use := '{}';
    -- wait for writers that may still be sealing under an old version, so
    -- that their rows are seen before a version is retired
    FOR e IN SELECT c.* FROM utilix.encrypted_column c LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', e.relid::regclass);
    END LOOP;
    FOR e IN SELECT c.*, t.tenant_column FROM utilix.encrypted_column c
               JOIN utilix.protected_table t USING (schema_name, table_name) LOOP
        EXECUTE format('SELECT ARRAY(SELECT DISTINCT x.%2$I::text || '':'' || utilix.key_version(x.%1$I) FROM %3$s x
                         WHERE x.%1$I IS NOT NULL AND ($1 IS NULL OR x.%2$I = $1))',
                       e.column_name, e.tenant_column, e.relid::regclass) INTO part USING tenant;
        in_use := in_use || part;
    END LOOP;
    UPDATE utilix.data_key k SET state = 'retired', wrapped = NULL, retired_at = now()
     WHERE k.state = 'retiring' AND (tenant IS NULL OR k.tenant_id = tenant)
       AND NOT (k.tenant_id::text || ':' || k.version = ANY (in_use));
    RETURN total;
END
$$;
COMMENT ON FUNCTION utilix.reencrypt(bigint, integer) IS
    'operator: re-seals up to batch_size values still under an older key version; when none is left, retires those versions. Call until it returns 0.';

CREATE FUNCTION utilix.shred_tenant_keys(tenant bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    n integer;
BEGIN
    IF utilix._tenant_status(tenant) = 'active' THEN
        RAISE EXCEPTION 'tenant % is active', tenant
            USING ERRCODE = '55000', HINT = 'Only a terminated tenant''s keys can be destroyed.';
    END IF;
    UPDATE utilix.data_key k SET wrapped = NULL, state = 'destroyed', destroyed_at = now()
     WHERE k.tenant_id = tenant AND k.state <> 'destroyed';
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM utilix._log_event('key', tenant, 'ok', format('data keys shredded (%s versions)', n), on_commit => true);
    RETURN n;
END
$$;
COMMENT ON FUNCTION utilix.shred_tenant_keys(bigint) IS
    'operator: destroys every data key of a terminated tenant; its ciphertext is unreadable from then on, everywhere';
COMMENT ON CAST (text AS utilix.encrypted_text) IS 'plaintext becomes a pending value that the seal trigger seals';
COMMENT ON CAST (bytea AS utilix.encrypted_bytea) IS 'plaintext becomes a pending value that the seal trigger seals';
COMMENT ON CAST (jsonb AS utilix.encrypted_jsonb) IS 'plaintext becomes a pending value that the seal trigger seals';
COMMENT ON CAST (utilix.encrypted_text AS text) IS 'decrypts for a context that may read the value';
COMMENT ON CAST (utilix.encrypted_bytea AS bytea) IS 'decrypts for a context that may read the value';
COMMENT ON CAST (utilix.encrypted_jsonb AS jsonb) IS 'decrypts for a context that may read the value';

CREATE FUNCTION utilix._rewrap_key(tenant bigint, version integer, wrapped bytea) RETURNS bytea
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'utilix_rewrap_key';
COMMENT ON FUNCTION utilix._rewrap_key(bigint, integer, bytea) IS
    'internal: a data key re-wrapped under the current master key';

-- Master-key rotation: start the server with the new key in
-- utilix.master_key_file and the old one in utilix.previous_master_key_file,
-- call this, then remove the previous key from the configuration.
CREATE FUNCTION utilix.rewrap_keys() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    n bigint;
    mine bytea := utilix._key_check_value();
BEGIN
    IF mine IS NULL THEN
        RAISE EXCEPTION 'utilix has no master key' USING ERRCODE = '55000';
    END IF;
    LOCK TABLE utilix.data_key IN SHARE ROW EXCLUSIVE MODE;
    UPDATE utilix.data_key k SET wrapped = utilix._rewrap_key(k.tenant_id, k.version, k.wrapped)
     WHERE k.wrapped IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM utilix.key_check;
    INSERT INTO utilix.key_check (kcv) VALUES (mine);
    PERFORM utilix._log_event('key', NULL, 'ok', format('%s data keys rewrapped under the current master key', n), on_commit => true);
    RETURN n;
END
$$;
COMMENT ON FUNCTION utilix.rewrap_keys() IS
    'operator: re-wraps every data key under the current master key and moves the key-check value to it (master-key rotation)';

-- Keep utilix.encrypted_column true across renames and restores, as
-- utilix._sync_protected() does for protected tables: names are
-- authoritative after a restore (relid and attnum are refreshed from
-- them), relid and attnum after a rename (names follow them).
CREATE FUNCTION utilix._sync_encrypted() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    -- restore: the names resolve to another relid or column number
    UPDATE utilix.encrypted_column e
       SET relid = to_regclass(format('%I.%I', e.schema_name, e.table_name))
     WHERE to_regclass(format('%I.%I', e.schema_name, e.table_name)) IS NOT NULL
       AND e.relid <> to_regclass(format('%I.%I', e.schema_name, e.table_name));
    -- table rename: the old name is gone, the relid is still there
    UPDATE utilix.encrypted_column e
       SET schema_name = n.nspname, table_name = c.relname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = e.relid
       AND to_regclass(format('%I.%I', e.schema_name, e.table_name)) IS NULL;
    -- column rename: the column number still has an encrypted type, under another name
    UPDATE utilix.encrypted_column e
       SET column_name = a.attname
      FROM pg_attribute a
     WHERE a.attrelid = e.relid AND a.attnum = e.attnum AND NOT a.attisdropped
       AND a.attname <> e.column_name
       AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = e.relid AND b.attname = e.column_name
                         AND NOT b.attisdropped);
    -- restore: the column number follows the name
    UPDATE utilix.encrypted_column e
       SET attnum = a.attnum
      FROM pg_attribute a
     WHERE a.attrelid = e.relid AND a.attname = e.column_name AND NOT a.attisdropped AND a.attnum <> e.attnum;
$$;
COMMENT ON FUNCTION utilix._sync_encrypted() IS 'internal: follows renames and restores in utilix.encrypted_column';
