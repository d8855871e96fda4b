-- utilix install script, part 95: the event triggers, created last so that
-- they never fire on the install script's own DDL before their functions exist.

CREATE EVENT TRIGGER utilix_ddl_end ON ddl_command_end
    EXECUTE FUNCTION utilix._on_ddl_end();
CREATE EVENT TRIGGER utilix_sql_drop ON sql_drop
    EXECUTE FUNCTION utilix._on_sql_drop();
COMMENT ON EVENT TRIGGER utilix_ddl_end IS 'utilix: protects new tables in protected schemas and new partitions; refuses DDL that weakens protection';
COMMENT ON EVENT TRIGGER utilix_sql_drop IS 'utilix: forgets dropped protected tables and schemas';
