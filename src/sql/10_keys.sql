-- utilix install script, part 10: master key check and the crypto core.

CREATE TABLE utilix.key_check (
    kcv        bytea NOT NULL CHECK (pg_catalog.length(kcv) = 32),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE utilix.key_check IS
    'key-check value of the master key this database was created with (an HMAC under a derived subkey; reveals nothing of the key)';
COMMENT ON COLUMN utilix.key_check.kcv IS 'HMAC-SHA-256 of a fixed text under the key-check subkey';
REVOKE ALL ON utilix.key_check FROM PUBLIC;

-- A restore brings the dumped value back: keep one row per distinct value,
-- so a restore on a server with another key leaves two rows and fails the check.
CREATE FUNCTION utilix._key_check_dedup() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM utilix.key_check k WHERE k.kcv = NEW.kcv) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION utilix._key_check_dedup() IS 'internal: keeps utilix.key_check free of duplicate values';
CREATE TRIGGER key_check_dedup BEFORE INSERT ON utilix.key_check
    FOR EACH ROW EXECUTE FUNCTION utilix._key_check_dedup();
CREATE TRIGGER key_check_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON utilix.key_check
    FOR EACH STATEMENT EXECUTE FUNCTION utilix._invalidate_cache();
SELECT pg_catalog.pg_extension_config_dump('utilix.key_check', '');

CREATE FUNCTION utilix._key_check_value() RETURNS bytea
    LANGUAGE c VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_key_check_value';
COMMENT ON FUNCTION utilix._key_check_value() IS
    'internal: the key-check value of the server''s master key, or NULL without a key';

CREATE FUNCTION utilix.master_key_status() RETURNS text
    LANGUAGE c VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_master_key_status';
COMMENT ON FUNCTION utilix.master_key_status() IS
    'ok, mismatch, no check value, or not configured: does the server''s master key match this database';

CREATE FUNCTION utilix.adopt_master_key() RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    mine bytea := utilix._key_check_value();
BEGIN
    IF mine IS NULL THEN
        RAISE EXCEPTION 'utilix has no master key'
            USING ERRCODE = '55000',
                  HINT = 'Set utilix.master_key_file or utilix.master_key_command in postgresql.conf and restart the server.';
    END IF;
    IF EXISTS (SELECT 1 FROM utilix.key_check WHERE kcv <> mine) THEN
        RAISE EXCEPTION 'the master key does not match this database'
            USING ERRCODE = '55000',
                  HINT = 'A database keeps the master key it was created with.';
    END IF;
    IF EXISTS (SELECT 1 FROM utilix.key_check) THEN
        RETURN 'already adopted';
    END IF;
    INSERT INTO utilix.key_check (kcv) VALUES (mine);
    RETURN 'adopted';
END
$$;
COMMENT ON FUNCTION utilix.adopt_master_key() IS
    'stores the key-check value of the server''s master key in a database that has none (created without a key)';

-- Store the key-check value now, when the server has a key.
INSERT INTO utilix.key_check (kcv)
    SELECT v FROM (SELECT utilix._key_check_value() AS v) s WHERE v IS NOT NULL;

-- The crypto core, exposed for known-answer tests and benchmarks.  These take
-- the key as an argument and never touch the master key.
CREATE FUNCTION utilix.crypto_hkdf(ikm bytea, salt bytea, info bytea, length integer) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_crypto_hkdf';
COMMENT ON FUNCTION utilix.crypto_hkdf(bytea, bytea, bytea, integer) IS 'HKDF-SHA-256 (RFC 5869)';
CREATE FUNCTION utilix.crypto_hmac(key bytea, data bytea) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_crypto_hmac';
COMMENT ON FUNCTION utilix.crypto_hmac(bytea, bytea) IS 'HMAC-SHA-256 (RFC 2104)';
CREATE FUNCTION utilix.crypto_seal(key bytea, nonce bytea, aad bytea, plaintext bytea) RETURNS bytea
    LANGUAGE c VOLATILE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_crypto_seal';
COMMENT ON FUNCTION utilix.crypto_seal(bytea, bytea, bytea, bytea) IS
    'AES-256-GCM: ciphertext followed by the 16-byte tag; nonce NULL-free, 12 bytes';
CREATE FUNCTION utilix.crypto_open(key bytea, nonce bytea, aad bytea, sealed bytea) RETURNS bytea
    LANGUAGE c VOLATILE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_crypto_open';
COMMENT ON FUNCTION utilix.crypto_open(bytea, bytea, bytea, bytea) IS
    'AES-256-GCM open; a wrong key, nonce, tag, ciphertext or associated data raises 22000-family error';
CREATE FUNCTION utilix.crypto_random(length integer) RETURNS bytea
    LANGUAGE c VOLATILE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_crypto_random';
COMMENT ON FUNCTION utilix.crypto_random(integer) IS 'random bytes from OpenSSL''s CSPRNG';
