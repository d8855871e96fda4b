-- The extension installs, and its objects are where they belong.
\set VERBOSITY terse
CREATE EXTENSION utilix;
SELECT extversion FROM pg_extension WHERE extname = 'utilix';
SELECT utilix.master_key_status();
-- settings are reserved under utilix.
SET utilix.no_such_setting = 1;
-- the master key settings are postmaster-only and hidden
SELECT name, context FROM pg_settings WHERE name LIKE 'utilix.master_key%' ORDER BY 1;
SHOW utilix.master_key_file \g /dev/null
-- every object of the extension has a comment
SELECT pg_describe_object(classid, objid, 0) AS uncommented
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'utilix')
   AND d.deptype = 'e'
   AND obj_description(objid, classid::regclass::name) IS NULL
   AND classid <> 'pg_type'::regclass
 ORDER BY 1;
-- every SECURITY DEFINER function pins its search_path
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p
 WHERE p.pronamespace = 'utilix'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=pg_catalog, pg_temp')
 ORDER BY 1;
-- PUBLIC may execute only the context functions
SELECT p.oid::regprocedure AS public_function
  FROM pg_proc p
 WHERE p.pronamespace = 'utilix'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1;
-- PUBLIC reads only the views scoped to its own tenant's context
SELECT c.oid::regclass AS public_table
  FROM pg_class c
 WHERE c.relnamespace = 'utilix'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'p')
   AND has_table_privilege('public', c.oid, 'SELECT')
 ORDER BY 1;
