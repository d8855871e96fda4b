-- utilix install script, part 90: privileges.  Everything is revoked from
-- PUBLIC first; each principal then gets exactly its own functions.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA utilix FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA utilix FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA utilix FROM PUBLIC;

-- Any role: the tenant context.
GRANT EXECUTE ON FUNCTION
    utilix.set_context(text, boolean),
    utilix.clear_context(),
    utilix.current_tenant(),
    utilix.current_app_user(),
    utilix.context_info()
  TO PUBLIC;

-- Trigger functions cannot be called directly; the table owner needs them
-- when PostgreSQL clones triggers onto new partitions.
GRANT EXECUTE ON FUNCTION utilix._guard_tenant(), utilix._seal_row() TO PUBLIC;

-- Token issuer.
GRANT EXECUTE ON FUNCTION
    utilix.issue_context(bigint, text, interval, text[], text)
  TO utilix_issuer;

-- Platform operator.
GRANT EXECUTE ON FUNCTION
    utilix.create_tenant(text, text),
    utilix.bind_role(regrole, bigint),
    utilix.unbind_role(regrole),
    utilix.protect(regclass, name),
    utilix.unprotect(regclass),
    utilix.protect_schema(name, name),
    utilix.unprotect_schema(name),
    utilix.master_key_status(),
    utilix.adopt_master_key(),
    utilix.crypto_hkdf(bytea, bytea, bytea, integer),
    utilix.crypto_hmac(bytea, bytea),
    utilix.crypto_seal(bytea, bytea, bytea, bytea),
    utilix.crypto_open(bytea, bytea, bytea, bytea),
    utilix.crypto_random(integer)
  TO utilix_operator;
GRANT SELECT ON utilix.tenants, utilix.protected_tables TO utilix_operator;

-- Encryption: the types and their functions are for everyone; managing keys is for operators.
-- (utilix.blind_probe keeps no USAGE for PUBLIC: no table or function of
-- anyone else's is made with it; probes are made by _blind_probe() only.)
GRANT USAGE ON TYPE utilix.encrypted_text, utilix.encrypted_bytea, utilix.encrypted_jsonb TO PUBLIC;
REVOKE USAGE ON TYPE utilix.blind_probe FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    utilix.encrypted_text_in(cstring), utilix.encrypted_text_out(utilix.encrypted_text),
    utilix.encrypted_bytea_in(cstring), utilix.encrypted_bytea_out(utilix.encrypted_bytea),
    utilix.encrypted_jsonb_in(cstring), utilix.encrypted_jsonb_out(utilix.encrypted_jsonb),
    utilix.decrypt(utilix.encrypted_text), utilix.decrypt(utilix.encrypted_bytea), utilix.decrypt(utilix.encrypted_jsonb),
    utilix._eq(utilix.encrypted_text, text), utilix._eq(utilix.encrypted_bytea, bytea), utilix._eq(utilix.encrypted_jsonb, jsonb),
    utilix._bidx_eq(utilix.encrypted_text, utilix.encrypted_text),
    utilix._bidx_eq(utilix.encrypted_bytea, utilix.encrypted_bytea),
    utilix._bidx_eq(utilix.encrypted_jsonb, utilix.encrypted_jsonb),
    utilix._bidx_match(utilix.encrypted_text, utilix.blind_probe),
    utilix._bidx_match(utilix.encrypted_bytea, utilix.blind_probe),
    utilix._bidx_match(utilix.encrypted_jsonb, utilix.blind_probe),
    utilix._bidx_hash(utilix.encrypted_text), utilix._bidx_hash(utilix.encrypted_bytea), utilix._bidx_hash(utilix.encrypted_jsonb),
    utilix._bidx_hash(utilix.blind_probe),
    utilix._blind_probe(text, bigint), utilix._blind_probe(bytea, bigint), utilix._blind_probe(jsonb, bigint),
    utilix.is_sealed(utilix.encrypted_text), utilix.is_sealed(utilix.encrypted_bytea), utilix.is_sealed(utilix.encrypted_jsonb),
    utilix.key_version(utilix.encrypted_text), utilix.key_version(utilix.encrypted_bytea), utilix.key_version(utilix.encrypted_jsonb)
  TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    utilix.encrypt_column(regclass, name, text, boolean, integer),
    utilix.decrypt_column(regclass, name),
    utilix.rotate_tenant_key(bigint),
    utilix.reencrypt(bigint, integer),
    utilix.shred_tenant_keys(bigint),
    utilix.rewrap_keys()
  TO utilix_operator;
GRANT SELECT ON utilix.encrypted_columns, utilix.data_keys TO utilix_operator;

-- Rights checks run as the querying role.
GRANT EXECUTE ON FUNCTION utilix._may(text), utilix.tenant_if_may(text), utilix._check_rights() TO PUBLIC;

-- Application users: anyone may try to log in (the login service), any
-- context may change its own password; administration checks the admin
-- right of the context inside each function.
GRANT EXECUTE ON FUNCTION
    utilix.login(text, text, text, inet),
    utilix.change_password(text, text),
    utilix.create_user(text, text, text[], text),
    utilix.disable_user(text), utilix.enable_user(text), utilix.drop_user(text),
    utilix.reset_password(text, text),
    utilix.grant_rights(text, text[]), utilix.revoke_rights(text, text[]),
    utilix.set_clearance(text, text),
    utilix.allow_admin_network(cidr), utilix.revoke_admin_network(cidr)
  TO PUBLIC;
GRANT SELECT ON utilix.users, utilix.admin_networks, utilix.auth_events TO PUBLIC;
GRANT EXECUTE ON FUNCTION utilix.create_tenant_admin(bigint, text, text), utilix.allow_tenant_admin_network(bigint, cidr),
    utilix.set_max_clearance(bigint, text)
  TO utilix_operator;
-- utilix.users shows the lockout of its rows; the function answers only an
-- admin context of the row's tenant (or a superuser).
GRANT EXECUTE ON FUNCTION utilix._login_state(bigint, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION utilix.login_failure_table() TO utilix_operator;

-- Retention and offboarding: operators only.
GRANT EXECUTE ON FUNCTION
    utilix.set_retention(regclass, interval, name), utilix.drop_retention(regclass),
    utilix.set_tenant_retention(bigint, regclass, interval),
    utilix.purge_preview(regclass), utilix.run_retention(regclass),
    utilix.hold_tenant(bigint, text), utilix.release_hold(bigint),
    utilix.terminate_tenant(bigint, interval), utilix.cancel_termination(bigint),
    utilix.export_tenant(bigint), utilix.export_manifest(bigint),
    utilix.purge_due_tenants(), utilix.verify_certificates()
  TO utilix_operator;
GRANT SELECT ON utilix.retention_policies, utilix.deletion_certificates, utilix.purge_runs,
    utilix.purge_progress, utilix.security_events TO utilix_operator;

-- Access history: the log is readable through row level security (the
-- right audit: own tenant; operators: all); verifying and exporting check
-- the same inside.  Queue counters, spill transfer and table settings are
-- for operators.
GRANT SELECT ON utilix.access_log, utilix.access_history TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    utilix.verify_access_log(bigint, timestamptz),
    utilix.export_access_log(bigint, timestamptz, timestamptz),
    utilix.access_log_canonical(utilix.access_log),
    utilix.access_log_flush(integer)
  TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    utilix.set_access_log(regclass, text),
    utilix.access_log_spill(),
    utilix.load_access_log_spill(bytea),
    utilix.run_access_log_maintenance(),
    utilix._access_log_status()
  TO utilix_operator;
GRANT SELECT ON utilix.access_log_status, utilix.access_log_chain, utilix.access_log_anchor TO utilix_operator;
