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
