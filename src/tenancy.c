/*
 * tenancy.c
 *		C parts of table protection: the trigger that keeps rows in their
 *		tenant, and the hook that keeps EXPLAIN from counting other tenants'
 *		rows.  The rest of protection (policies, checks, the event trigger)
 *		is SQL in src/sql/30_tenancy.sql.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "utils/acl.h"
#include "commands/explain.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/portal.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "utilix.h"

#define UTILIX_TENANT_POLICY "utilix_tenant"

static bool restrict_explain = true;
static int	copy_guard_depth = 0;
/* the innermost COPY FROM utilix runs as its table's owner: who asked, and the owner */
static Oid	copy_caller = InvalidOid;
static Oid	copy_as_owner = InvalidOid;
static bool internal_ddl = false;
static int	explain_depth = 0;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;

/*
 * Is this relation protected by utilix?  It carries utilix's restrictive
 * policy and its guard trigger (a policy of that name alone, which anyone
 * can create on a table of their own, is not enough).
 */
bool
utilix_relation_is_protected(Relation rel)
{
	ListCell   *lc;
	bool		has_guard = false;

	if (rel->rd_rsdesc == NULL || rel->trigdesc == NULL)
		return false;
	for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		if (strcmp(rel->trigdesc->triggers[i].tgname, "utilix_guard_tenant") == 0 &&
			get_func_namespace(rel->trigdesc->triggers[i].tgfoid) == get_namespace_oid("utilix", true))
			has_guard = true;
	if (!has_guard)
		return false;
	foreach(lc, rel->rd_rsdesc->policies)
	{
		RowSecurityPolicy *pol = (RowSecurityPolicy *) lfirst(lc);

		if (strcmp(pol->policy_name, UTILIX_TENANT_POLICY) == 0)
			return true;
	}
	return false;
}

/*
 * Does the range table entry read a protected table that row level security
 * applies to for the current user?  (The relation is locked by the query.)
 */
static bool
rte_protected_under_rls(RangeTblEntry *rte)
{
	Relation	rel;
	bool		prot;

	if (rte->rtekind != RTE_RELATION || !OidIsValid(rte->relid) ||
		check_enable_rls(rte->relid, InvalidOid, true) != RLS_ENABLED)
		return false;
	rel = relation_open(rte->relid, NoLock);
	prot = utilix_relation_is_protected(rel);
	relation_close(rel, NoLock);
	return prot;
}

/*
 * EXPLAIN shows row counts and estimates ("Rows Removed by Filter", the
 * estimate for WHERE tenant_id = 7) that count rows the caller may not see.
 * For a role that row level security applies to, refuse EXPLAIN of a query
 * that reads a protected table.
 */
static void
check_explain(QueryDesc *queryDesc)
{
	ListCell   *lc;

	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte_protected_under_rls(rte))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("EXPLAIN is not allowed on protected table \"%s\"",
							get_rel_name(rte->relid)),
					 errdetail("Plans and their row counts reveal how many rows other tenants have."),
					 errhint("Only roles that row level security does not apply to (superusers, BYPASSRLS) can EXPLAIN it, unless a superuser sets utilix.restrict_explain = off.")));
	}
}

static void
utilix_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (explain_depth > 0 && restrict_explain && !utilix_internal_depth_active())
		check_explain(queryDesc);
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * COPY FROM STDIN into a protected table by a role that row level security
 * applies to: PostgreSQL refuses it outright (0A000).  utilix lets it run as
 * the table's owner without row level security once it has checked the
 * caller's INSERT privilege; the guard trigger then refuses every row that
 * is not of the caller's tenant, and the seal trigger encrypts as usual.
 * Returns the owner to run as, or InvalidOid to leave the COPY alone.
 */
static Oid
copy_from_owner(CopyStmt *stmt)
{
	Oid			relid;
	Relation	rel;
	Oid			owner;
	bool		prot;
	Oid			userid = GetUserId();

	/*
	 * Only plain COPY FROM STDIN: a WHERE clause would run the caller's
	 * expressions with the owner's privileges.
	 */
	if (!stmt->is_from || stmt->relation == NULL || stmt->filename != NULL ||
		stmt->is_program || stmt->whereClause != NULL || !utilix_preloaded)
		return InvalidOid;
	relid = RangeVarGetRelid(stmt->relation, RowExclusiveLock, true);
	if (!OidIsValid(relid) || check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
		return InvalidOid;
	rel = relation_open(relid, NoLock);
	prot = utilix_relation_is_protected(rel);
	owner = rel->rd_rel->relowner;

	/*
	 * Any policy of the owner's beside utilix's two would be skipped without
	 * row level security: then COPY is left to PostgreSQL, which refuses it.
	 */
	if (prot && rel->rd_rsdesc != NULL)
	{
		ListCell   *lc;

		foreach(lc, rel->rd_rsdesc->policies)
		{
			RowSecurityPolicy *pol = (RowSecurityPolicy *) lfirst(lc);

			if (strcmp(pol->policy_name, UTILIX_TENANT_POLICY) != 0 &&
				strcmp(pol->policy_name, "utilix_access") != 0)
				prot = false;
		}
	}
	if (prot)
	{
		AclMode		needed = ACL_INSERT;
		bool		allowed;

		if (stmt->attlist == NIL)
			allowed = pg_class_aclcheck(relid, userid, needed) == ACLCHECK_OK ||
				pg_attribute_aclcheck_all(relid, userid, needed, ACLMASK_ALL) == ACLCHECK_OK;
		else
		{
			ListCell   *lc;

			allowed = pg_class_aclcheck(relid, userid, needed) == ACLCHECK_OK;
			if (!allowed)
			{
				allowed = true;
				foreach(lc, stmt->attlist)
				{
					AttrNumber	att = get_attnum(relid, strVal(lfirst(lc)));

					if (att == InvalidAttrNumber ||
						pg_attribute_aclcheck(relid, att, userid, needed) != ACLCHECK_OK)
						allowed = false;
				}
			}
		}
		if (!allowed)
		{
			relation_close(rel, NoLock);
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
		}
		/* fail before any row is read without a usable context or the write right */
		if (!utilix_context_has_right(utilix_current_context(false), "write"))
		{
			relation_close(rel, NoLock);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the current context has no write right on table \"%s\"",
							get_rel_name(relid))));
		}
	}
	relation_close(rel, NoLock);
	return prot ? owner : InvalidOid;
}

/*
 * A cursor WITH HOLD outlives its transaction, and with it the SET LOCAL
 * context its rows were read under: behind a pooler in transaction mode the
 * next client of the connection (another tenant) could FETCH them, or
 * Execute the portal by name.  Refuse such cursors over protected tables to
 * roles that row level security applies to.
 */
static void
check_held_cursor(DeclareCursorStmt *stmt)
{
	Portal		portal;
	ListCell   *lc;

	if (!(stmt->options & CURSOR_OPT_HOLD) || !utilix_preloaded)
		return;

	/*
	 * Under a tenant context, any query can read protected rows, also through
	 * a function the plan shows only as a call: no held cursor at all for a
	 * role that row level security holds.
	 */
	if (!superuser() && !has_bypassrls_privilege(GetUserId()) && utilix_context_for_read() != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a cursor WITH HOLD cannot be declared under a tenant context"),
				 errdetail("Its rows would outlive the transaction and its tenant context: the next client of a pooled connection could fetch them."),
				 errhint("Declare the cursor without WITH HOLD and fetch within the transaction.")));
	portal = GetPortalByName(stmt->portalname);
	if (!PortalIsValid(portal))
		return;
	foreach(lc, portal->stmts)
	{
		PlannedStmt *ps = lfirst_node(PlannedStmt, lc);
		ListCell   *rc;

		foreach(rc, ps->rtable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(rc);

			if (rte_protected_under_rls(rte))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("a cursor WITH HOLD cannot read protected table \"%s\"",
								get_rel_name(rte->relid)),
						 errdetail("Its rows would outlive the transaction and its tenant context: the next client of a pooled connection could fetch them."),
						 errhint("Declare the cursor without WITH HOLD and fetch within the transaction.")));
		}
	}
}

static void
utilix_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	bool		is_explain = IsA(pstmt->utilityStmt, ExplainStmt);
	volatile Oid copy_owner = InvalidOid;
	const char *volatile masked = queryString;
	PlannedStmt *volatile run_pstmt = pstmt;
	Oid			save_userid = InvalidOid;
	volatile Oid save_caller = InvalidOid;
	volatile Oid save_as_owner = InvalidOid;
	int			save_sec = 0;
	volatile bool sanitize = false;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (IsA(pstmt->utilityStmt, CopyStmt))
	{
		copy_owner = copy_from_owner((CopyStmt *) pstmt->utilityStmt);
		if (OidIsValid(copy_owner))
		{
			/*
			 * Name the table by the relation checked above, schema and all,
			 * so that DoCopy cannot resolve the name to another table.
			 */
			PlannedStmt *copy_pstmt = makeNode(PlannedStmt);
			CopyStmt   *copy = copyObject((CopyStmt *) pstmt->utilityStmt);
			Oid			relid = RangeVarGetRelid(copy->relation, NoLock, false);

			memcpy(copy_pstmt, pstmt, sizeof(PlannedStmt));
			copy->relation = makeRangeVar(get_namespace_name(get_rel_namespace(relid)),
										  get_rel_name(relid), copy->relation->location);
			copy_pstmt->utilityStmt = (Node *) copy;
			run_pstmt = copy_pstmt;
		}
	}

	if (IsA(pstmt->utilityStmt, LockStmt) && utilix_preloaded)
	{
		/*
		 * LOCK TABLE: judged (utilix_gate_lock) on the tables its names
		 * resolve to now, and run on those very tables, named schema and
		 * all, so that no name resolves to another table in between.
		 */
		PlannedStmt *lock_pstmt = makeNode(PlannedStmt);
		LockStmt   *lock = copyObject((LockStmt *) pstmt->utilityStmt);
		List	   *relids = NIL;
		ListCell   *lc;

		foreach(lc, lock->relations)
		{
			RangeVar   *rv = (RangeVar *) lfirst(lc);
			Oid			relid = RangeVarGetRelid(rv, NoLock, true);

			relids = lappend_oid(relids, relid);
			if (OidIsValid(relid))
			{
				RangeVar   *q = makeRangeVar(get_namespace_name(get_rel_namespace(relid)),
											 get_rel_name(relid), rv->location);

				q->inh = rv->inh;
				lfirst(lc) = q;
			}
		}
		utilix_gate_lock(lock, relids);
		memcpy(lock_pstmt, pstmt, sizeof(PlannedStmt));
		lock_pstmt->utilityStmt = (Node *) lock;
		run_pstmt = lock_pstmt;
	}

	/*
	 * Hooks below us (pg_stat_statements keeps utility statements' text as
	 * written) see the statement with its literals masked.  The mask keeps
	 * every byte offset, and utility commands execute from their parse tree.
	 */
	if (queryString && utilix_redact_literals_enabled() && context == PROCESS_UTILITY_TOPLEVEL &&
		(strchr(queryString, '\'') != NULL || strchr(queryString, '$') != NULL))
		masked = utilix_mask_literals_same_length(queryString);
	/* DDL that would evaluate the caller's expressions over tenants' rows */
	{
		bool		s;

		utilix_ddl_gate(pstmt->utilityStmt, &s);
		sanitize = s;
	}
	if (is_explain)
		explain_depth++;
	if (OidIsValid(copy_owner))
	{
		/*
		 * Run as the owner, as a restricted operation, without row level
		 * security for PostgreSQL's check at the start of COPY only: the
		 * first statement trigger, row or query of the COPY ends that
		 * (utilix_copy_end_noforce), so that defaults and triggers see the
		 * caller's tenant only.  The guard trigger checks each row.
		 */
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(copy_owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
		copy_guard_depth++;
		save_caller = copy_caller;
		save_as_owner = copy_as_owner;
		copy_caller = save_userid;
		copy_as_owner = copy_owner;
	}
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(run_pstmt, masked, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(run_pstmt, masked, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		if (is_explain)
			explain_depth--;
		if (OidIsValid(copy_owner))
		{
			copy_guard_depth--;
			copy_caller = save_caller;
			copy_as_owner = save_as_owner;
			SetUserIdAndSecContext(save_userid, save_sec);
		}
		if (sanitize)
		{
			/*
			 * Errors of DDL over tenants' rows quote the offending key in
			 * their detail ("Key (tenant_id, email)=(...) is duplicated").
			 */
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			FlushErrorState();
			edata->detail = NULL;
			edata->detail_log = NULL;
			edata->context = NULL;
			edata->internalquery = NULL;
			edata->internalpos = 0;

			/*
			 * Integrity violations name the index or constraint only; other
			 * errors raised over the rows (a data exception, "index row
			 * size ... exceeds ...") may describe a tenant's value.
			 */
			if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION &&
				ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_INSUFFICIENT_PRIVILEGE &&
				ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE &&
				ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_TRANSACTION_ROLLBACK &&
				ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_QUERY_CANCELED)
				edata->message = psprintf("the statement failed on a row of a protected table (SQLSTATE %s; the message is withheld, it may describe a tenant's value)",
										  unpack_sql_state(edata->sqlerrcode));
			ReThrowError(edata);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (is_explain)
		explain_depth--;
	if (OidIsValid(copy_owner))
	{
		copy_guard_depth--;
		copy_caller = save_caller;
		copy_as_owner = save_as_owner;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	if (IsA(pstmt->utilityStmt, DeclareCursorStmt))
		check_held_cursor((DeclareCursorStmt *) pstmt->utilityStmt);
}

/*
 * Called by the first statement trigger, row trigger or parsed query of a
 * COPY FROM that utilix runs as the owner: from here on row level security
 * applies again, so that a default or trigger that queries a table sees the
 * caller's tenant only.
 */
/*
 * The role whose privileges decide what a write may contain: the current
 * user, except inside a COPY FROM that utilix runs as the table's owner,
 * where it is the role that asked for the COPY.  (The seal trigger asks: a
 * superuser or BYPASSRLS owner must not make its tenants' COPY a restore.)
 */
Oid
utilix_acting_writer(void)
{
	Oid			role = GetUserId();

	if (copy_guard_depth > 0 && OidIsValid(copy_caller) && role == copy_as_owner)
		return copy_caller;
	return role;
}

void
utilix_copy_end_noforce(void)
{
	Oid			userid;
	int			sec;

	if (copy_guard_depth <= 0)
		return;
	GetUserIdAndSecContext(&userid, &sec);
	if (sec & SECURITY_NOFORCE_RLS)
		SetUserIdAndSecContext(userid, sec & ~SECURITY_NOFORCE_RLS);
}

static void
utilix_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	utilix_copy_end_noforce();
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
}

void
TenancyInit(void)
{
	DefineCustomBoolVariable("utilix.restrict_explain",
							 "Refuse EXPLAIN of protected tables to roles that row level security applies to.",
							 "Plans show row counts and estimates that include other tenants' rows.",
							 &restrict_explain, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("utilix.internal_ddl",
							 "Set by utilix's own functions while they change a protected table.",
							 "The event trigger skips its integrity check while it is on; only superusers can set it.",
							 &internal_ddl, false,
							 PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							 NULL, NULL, NULL);
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = utilix_ExecutorStart;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = utilix_ProcessUtility;
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = utilix_post_parse_analyze;
}

/*
 * utilix._guard_tenant(): BEFORE UPDATE row trigger installed by protect().
 * Its argument names the tenant column; a row may never change tenant, not
 * even for a superuser or the table owner.
 */
PG_FUNCTION_INFO_V1(utilix_guard_tenant);
Datum
utilix_guard_tenant(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	int			attnum;
	bool		oldnull,
				newnull;
	Datum		oldv,
				newv;

	if (!CALLED_AS_TRIGGER(fcinfo) || TRIGGER_FIRED_BY_DELETE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("utilix._guard_tenant() must be a row INSERT OR UPDATE trigger with one argument")));
	desc = RelationGetDescr(td->tg_relation);
	attnum = SPI_fnumber(desc, td->tg_trigger->tgargs[0]);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("tenant column \"%s\" of table \"%s\" does not exist",
						td->tg_trigger->tgargs[0], RelationGetRelationName(td->tg_relation))));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		/*
		 * Row level security checks ordinary inserts.  COPY FROM, which
		 * PostgreSQL refuses under row level security, runs without it
		 * (see utilix_ProcessUtility), and this check takes its place.
		 */
		if (copy_guard_depth > 0)
		{
			utilix_copy_end_noforce();
			newv = heap_getattr(td->tg_trigtuple, attnum, desc, &newnull);
			if (newnull || DatumGetInt64(newv) != utilix_current_context(false)->tenant)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("new row violates the tenant policy of table \"%s\"",
								RelationGetRelationName(td->tg_relation)),
						 errdetail("COPY FROM may only add rows of the current tenant.")));
		}
		return PointerGetDatum(td->tg_trigtuple);
	}
	oldv = heap_getattr(td->tg_trigtuple, attnum, desc, &oldnull);
	newv = heap_getattr(td->tg_newtuple, attnum, desc, &newnull);
	if (oldnull != newnull || (!oldnull && DatumGetInt64(oldv) != DatumGetInt64(newv)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a row of table \"%s\" cannot be moved to another tenant",
						RelationGetRelationName(td->tg_relation)),
				 errhint("Insert a copy under the other tenant's context and delete the original instead.")));
	return PointerGetDatum(td->tg_newtuple);
}

/*
 * utilix._invoker_is_superuser(): the event trigger runs SECURITY DEFINER,
 * so current_user is utilix's owner there; the outer user (set by login or
 * SET ROLE) is the one whose DDL is being judged.
 */
PG_FUNCTION_INFO_V1(utilix_invoker_is_superuser);
Datum
utilix_invoker_is_superuser(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(superuser_arg(GetOuterUserId()));
}

/*
 * utilix._acting_role_is_member(role): is the role the statement runs as
 * (after login and SET ROLE, before any SECURITY DEFINER) a member of it?
 */
PG_FUNCTION_INFO_V1(utilix_acting_role_is_member);
Datum
utilix_acting_role_is_member(PG_FUNCTION_ARGS)
{
	Oid			role = get_role_oid(NameStr(*PG_GETARG_NAME(0)), true);

	PG_RETURN_BOOL(OidIsValid(role) && is_member_of_role(GetOuterUserId(), role));
}

/*
 * utilix._written_here(xid): is xid this transaction or one of its
 * subtransactions (the xmin of a row version this transaction wrote)?  Such
 * a change is not visible yet to any other session, and is undone if this
 * transaction rolls back.
 */
PG_FUNCTION_INFO_V1(utilix_written_here);
Datum
utilix_written_here(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TransactionIdIsCurrentTransactionId(PG_GETARG_TRANSACTIONID(0)));
}

/*
 * utilix._exec_as_owner(rel, sql, args, reseal): utilix's own privileged
 * functions (SECURITY DEFINER, run as the extension's superuser) and the
 * worker change rows of every tenant: sealing a column, re-sealing under a
 * new key, retention, purge.  Each such statement runs here as the table's
 * owner, without row level security (as the owner, like PostgreSQL's own
 * maintenance commands) and as a security-restricted operation, so that the
 * table's triggers, constraints and defaults run with no more privilege
 * than the owner has.  The user is switched back in C, before anything of
 * the caller's runs again: code that runs inside has no SQL-callable way
 * back.  args, when given, is $1 (tid[]).  With reseal, the seal trigger
 * re-seals the updated columns' values sealed under an older key version.
 * Returns the first row's columns as text, or the number of rows processed
 * when the statement returns none.
 */
bool		utilix_reseal_mode = false;

PG_FUNCTION_INFO_V1(utilix_exec_as_owner);
Datum
utilix_exec_as_owner(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *sql;
	bool		has_arg = !PG_ARGISNULL(2);
	bool		reseal = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	Datum		args[1] = {(Datum) 0};
	Oid			argtypes[1] = {TIDARRAYOID};
	HeapTuple	tup;
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	volatile int ret = 0;
	bool		save_reseal;
	MemoryContext caller = CurrentMemoryContext;
	Datum	   *elems;
	bool	   *elnulls;
	int			n;
	int			dims[1];
	int			lbs[1] = {1};
	ArrayType  *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and statement must not be null")));
	relid = PG_GETARG_OID(0);
	sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (has_arg)
		args[0] = PG_GETARG_DATUM(2);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
	save_reseal = utilix_reseal_mode;
	utilix_reseal_mode = reseal;
	PG_TRY();
	{
		ret = SPI_execute_with_args(sql, has_arg ? 1 : 0, argtypes, args, NULL, false, 0);
	}
	PG_FINALLY();
	{
		utilix_reseal_mode = save_reseal;
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	if (ret < 0)
		elog(ERROR, "utilix._exec_as_owner: SPI error %d", ret);

	MemoryContextSwitchTo(caller);
	if (SPI_tuptable != NULL && SPI_processed > 0)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;

		n = desc->natts;
		elems = palloc(sizeof(Datum) * n);
		elnulls = palloc(sizeof(bool) * n);
		for (int i = 0; i < n; i++)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], desc, i + 1);

			elnulls[i] = (v == NULL);
			elems[i] = v ? CStringGetTextDatum(v) : (Datum) 0;
		}
	}
	else
	{
		n = 1;
		elems = palloc(sizeof(Datum));
		elnulls = palloc0(sizeof(bool));
		elems[0] = CStringGetTextDatum(psprintf(UINT64_FORMAT, SPI_processed));
	}
	dims[0] = n;
	result = construct_md_array(elems, elnulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
	SPI_finish();
	PG_RETURN_ARRAYTYPE_P(result);
}
