/*
 * ddlgate.c
 *		Which DDL a role that row level security applies to (the table owner
 *		that runs migrations above all) may run on a protected table.
 *
 * Row level security filters queries, not DDL: CREATE INDEX, ALTER TABLE
 * ... ADD CHECK, ALTER COLUMN ... TYPE and their kin evaluate expressions
 * over every row of the table, whatever tenant it belongs to, and whatever
 * those expressions see or fail on reaches the role that ran the statement
 * (through notices, errors, timing, or statistics).  Two rules keep the
 * owner blind:
 *
 *  - Before the statement runs (here): a statement that would evaluate an
 *    expression the caller chose over rows already in the table (an
 *    expression or partial index, a validated CHECK or exclusion
 *    constraint, a stored generated column, a column type change, a domain
 *    constraint validated over a protected column) runs only while the
 *    table holds no row at all, dead rows included.  Rows may not arrive
 *    by ATTACH PARTITION or INHERIT from a table filled elsewhere, nor may
 *    a new partition be checked against a filled default partition.  The
 *    allowed statements that still touch existing rows without an
 *    expression of the caller's (plain-column indexes, unique and foreign
 *    keys, SET NOT NULL) have the detail of their errors removed, since it
 *    quotes the offending key.
 *
 *  - After the statement (the event trigger, utilix._integrity_problems):
 *    every function that a protected table's triggers, defaults,
 *    constraints, indexes, policies, column types and their casts can run
 *    must be owned by a superuser.  Code of the owner's own never runs
 *    over tenants' rows, neither in tenants' sessions nor in utilix's
 *    privileged functions and workers.
 *
 * Superusers and BYPASSRLS roles are outside row level security and are
 * not judged here.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "commands/tablecmds.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/readfuncs.h"
#include "utils/array.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "utilix.h"

/*
 * Is relid a protected table that row level security applies to for the
 * current user?  Only such statements are judged.
 */
static bool is_protected(Oid relid);
static void require_no_expression_rebuild(Oid relid, const char *what);
static bool protected_under_rls_unlocked(Oid relid);
static void refuse_table_lock_by_non_owner(Oid relid, const char *what);
static void refuse_table_locks_anywhere(const char *what);

static bool
gated(Oid relid)
{
	return OidIsValid(relid) && get_rel_relkind(relid) != '\0' &&
		check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED &&
		is_protected(relid);
}

/*
 * Does the table, or any table below it, hold a tuple?  Every tuple counts,
 * dead or in progress ones too: index builds evaluate their expressions on
 * recently dead tuples as well.  The caller holds a lock that keeps writers
 * out for the statement's duration.
 */
static bool
rel_has_tuples(Oid relid, LOCKMODE lockmode)
{
	List	   *rels = find_all_inheritors(relid, lockmode, NULL);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Oid			child = lfirst_oid(lc);
		Relation	rel;
		TableScanDesc scan;
		bool		found;

		if (!RELKIND_HAS_STORAGE(get_rel_relkind(child)))
			continue;
		rel = table_open(child, NoLock);
		scan = table_beginscan(rel, SnapshotAny, 0, NULL);
		found = heap_getnext(scan, ForwardScanDirection) != NULL;
		table_endscan(scan);
		table_close(rel, NoLock);
		if (found)
			return true;
	}
	return false;
}

static bool
is_protected(Oid relid)
{
	Relation	rel;
	bool		prot;

	if (!OidIsValid(relid) || get_rel_relkind(relid) == '\0')
		return false;
	rel = relation_open(relid, AccessShareLock);
	prot = utilix_relation_is_protected(rel);
	relation_close(rel, AccessShareLock);
	return prot;
}

/*
 * A protected table below a table that is not protected: queries, updates
 * and deletes through the parent would reach every tenant's rows, and the
 * parent's triggers would be cloned onto the protected table.
 */
static void
refuse_unprotected_parent(Oid child, Oid parent, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s would put protected table \"%s\" below table \"%s\", which is not protected",
					what, get_rel_name(child), get_rel_name(parent)),
			 errdetail("Queries through the parent would read every tenant's rows of the protected table."),
			 errhint("Protect \"%s\" first.", get_rel_name(parent))));
}

static void
refuse(Oid relid, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s on protected table \"%s\" is not allowed while it holds rows",
					what, get_rel_name(relid)),
			 errdetail("Row level security does not apply to expressions that DDL evaluates over existing rows: "
					   "what they see, and whether they fail, would reveal every tenant's data to the role running the statement."),
			 errhint("%s", hint)));
}

#define HINT_SUPERUSER "Run it while the table is empty, or have a superuser run it after review."

/* refuse the statement unless the table tree is empty, locking it first */
static void
require_empty(Oid relid, LOCKMODE lockmode, const char *what, const char *hint)
{
	LockRelationOid(relid, lockmode);
	if (rel_has_tuples(relid, lockmode))
		refuse(relid, what, hint);
}

static void
require_child_empty(Oid parent, Oid child, const char *what)
{
	if (!OidIsValid(child))
		return;
	LockRelationOid(child, AccessExclusiveLock);
	if (rel_has_tuples(child, AccessExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s \"%s\" to protected table \"%s\" is not allowed while \"%s\" holds rows",
						what, get_rel_name(child), get_rel_name(parent), get_rel_name(child)),
				 errdetail("Its rows would enter the protected table without the tenant checks of an insert."),
				 errhint("Attach an empty table and insert the rows under each tenant's context, or have a superuser attach it after review.")));
}

/* a new partition is checked against the rows of the default partition */
static void
require_default_partition_empty(Oid parent, const char *what)
{
	Oid			def;

	if (get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE)
		return;
	def = get_default_partition_oid(parent);
	if (OidIsValid(def))
		require_empty(def, AccessExclusiveLock, what,
					  "Its bounds would be checked against every tenant's rows in the default partition; "
					  "empty the default partition first, or have a superuser run it.");
}

/* the tenant column of a protected table: the argument of its guard trigger */
static char *
tenant_column_of(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	char	   *col = NULL;

	if (rel->trigdesc != NULL)
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *t = &rel->trigdesc->triggers[i];

			if (strcmp(t->tgname, "utilix_guard_tenant") == 0 && t->tgnargs == 1)
				col = pstrdup(t->tgargs[0]);
		}
	relation_close(rel, AccessShareLock);
	return col;
}

/*
 * A unique key that does not lead with the tenant column would be refused
 * after the statement (42P16), but building it has already answered whether
 * two tenants share a value: refuse it before.
 */
static void
require_tenant_leading(Oid relid, const char *first, bool first_is_expr)
{
	char	   *tcol = tenant_column_of(relid);

	if (tcol == NULL || (!first_is_expr && first != NULL && strcmp(first, tcol) == 0))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
			 errmsg("a unique key on protected table \"%s\" must lead with the tenant column \"%s\"",
					get_rel_name(relid), tcol),
			 errdetail("Otherwise it reveals whether another tenant holds a key, and building it over the rows already there would tell as much."),
			 errhint("Make it UNIQUE (%s, ...).", tcol)));
}

/*
 * Resolve a name with the lock the statement itself will take: judged and
 * run must be the same table.  Without the lock, a concurrent rename could
 * swap another table under the name between the judgement and the run.
 */
static Oid
lookup_locked(RangeVar *rv, LOCKMODE mode)
{
	return RangeVarGetRelidExtended(rv, mode, RVR_MISSING_OK, NULL, NULL);
}

static bool
index_has_expressions(IndexStmt *stmt)
{
	ListCell   *lc;

	if (stmt->whereClause != NULL)
		return true;
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *e = (IndexElem *) lfirst(lc);

		if (e->expr != NULL)
			return true;
	}
	return false;
}

/*
 * The blind-index operator classes (utilix.encrypted_*_blind_ops) serve
 * utilix's own blind indexes only, which encrypt_column() builds as the
 * extension's superuser.  The hash access method hashes every value it
 * indexes, whoever may read it: a hash index of the caller's over copies of
 * ciphertext (a temporary table filled with a target value and guesses)
 * would group equal values into buckets that its size and statistics show.
 * Refused to everyone but superusers, wherever the index would go.
 */
static void
refuse_blind_opclass(IndexStmt *stmt)
{
	Oid			am;
	Oid			nsp;
	ListCell   *lc;

	if (stmt->accessMethod == NULL || superuser())
		return;
	am = get_index_am_oid(stmt->accessMethod, true);
	nsp = get_namespace_oid("utilix", true);
	if (!OidIsValid(am) || !OidIsValid(nsp))
		return;
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *e = (IndexElem *) lfirst(lc);
		Oid			opclass;
		HeapTuple	tup;
		bool		blind = false;

		if (e->opclass == NIL)
			continue;
		opclass = get_opclass_oid(am, e->opclass, true);
		if (!OidIsValid(opclass))
			continue;
		tup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclass));
		if (HeapTupleIsValid(tup))
		{
			Form_pg_opclass opc = (Form_pg_opclass) GETSTRUCT(tup);
			size_t		n = strlen(NameStr(opc->opcname));

			blind = opc->opcnamespace == nsp && n > 10 &&
				strcmp(NameStr(opc->opcname) + n - 10, "_blind_ops") == 0;
			ReleaseSysCache(tup);
		}
		if (blind)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to create an index with operator class \"%s\"",
							NameListToString(e->opclass)),
					 errdetail("utilix's blind-index operator classes serve the blind indexes that utilix.encrypt_column() makes; an index of another's would tell which encrypted values are equal."),
					 errhint("Use utilix.encrypt_column(..., searchable => true).")));
	}
}

static void
gate_index(IndexStmt *stmt, bool *sanitize)
{
	Oid			relid;

	refuse_blind_opclass(stmt);
	relid = lookup_locked(stmt->relation, stmt->concurrent ? ShareUpdateExclusiveLock : ShareLock);
	if (!gated(relid))
		return;
	if (stmt->unique || stmt->primary)
	{
		IndexElem  *first = stmt->indexParams != NIL ? (IndexElem *) linitial(stmt->indexParams) : NULL;

		require_tenant_leading(relid, first ? first->name : NULL, first == NULL || first->expr != NULL);
	}
	if (index_has_expressions(stmt))
	{
		if (stmt->concurrent)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("CREATE INDEX CONCURRENTLY with expressions or a predicate on protected table \"%s\" is not allowed",
							get_rel_name(relid)),
					 errdetail("Rows that tenants write while the index is built would be evaluated for the role building it."),
					 errhint("Build it without CONCURRENTLY while the table is empty, or have a superuser build it.")));
		require_empty(relid, ShareLock, "an index with expressions or a predicate", HINT_SUPERUSER);
	}
	*sanitize = true;
}

static void
gate_alter_table(AlterTableStmt *stmt, bool *sanitize)
{
	Oid			relid = lookup_locked(stmt->relation, AlterTableGetLockLevel(stmt->cmds));
	bool		target_gated;
	const char *needs_empty = NULL;
	const char *hint = HINT_SUPERUSER;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return;

	/* INHERIT names the protected table as the parent of the target */
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		if (cmd->subtype == AT_AddInherit)
		{
			Oid			parent = lookup_locked((RangeVar *) cmd->def, ShareUpdateExclusiveLock);

			if (gated(parent))
				require_child_empty(parent, relid, "INHERIT of table");
			else if (gated(relid) && !is_protected(parent))
				refuse_unprotected_parent(relid, parent, "INHERIT");
		}
		else if (cmd->subtype == AT_AttachPartition && stmt->objtype == OBJECT_TABLE)
		{
			Oid			child = lookup_locked(((PartitionCmd *) cmd->def)->name, AccessExclusiveLock);

			if (gated(child) && !is_protected(relid))
				refuse_unprotected_parent(child, relid, "ATTACH PARTITION");
		}
	}

	if (stmt->objtype == OBJECT_INDEX)
	{
		/* the statistics of an expression index are not row-level secured */
		Oid			table = IndexGetRelation(relid, true);

		if (OidIsValid(table) && gated(table))
			foreach(lc, stmt->cmds)
			{
				AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

				if (cmd->subtype == AT_SetStatistics)
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("the statistics target of index \"%s\" of a protected table cannot be changed",
									get_rel_name(relid)),
							 errdetail("Statistics of index expressions would show other tenants' values in pg_stats."),
							 errhint("utilix keeps it at 0; a superuser can change it.")));
			}
		return;
	}

	target_gated = gated(relid);
	if (!target_gated)
		return;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		switch (cmd->subtype)
		{
			case AT_AddColumn:
				{
					ColumnDef  *def = (ColumnDef *) cmd->def;
					ListCell   *cl;

					foreach(cl, def->constraints)
					{
						Constraint *c = (Constraint *) lfirst(cl);

						if (c->contype == CONSTR_CHECK)
							needs_empty = "ADD COLUMN with a CHECK constraint";
						else if (c->contype == CONSTR_GENERATED)
							needs_empty = "ADD COLUMN ... GENERATED ALWAYS AS";
						else if (c->contype == CONSTR_UNIQUE || c->contype == CONSTR_PRIMARY)
							require_tenant_leading(relid, def->colname, false);
						else if (c->contype == CONSTR_FOREIGN)
							*sanitize = true;
						else if (c->contype == CONSTR_DEFAULT && c->raw_expr != NULL &&
								 !IsA(c->raw_expr, A_Const) &&
								 !(IsA(c->raw_expr, TypeCast) && IsA(((TypeCast *) c->raw_expr)->arg, A_Const)))
						{
							/* a volatile default rewrites the table, rebuilding its indexes */
							require_no_expression_rebuild(relid, "ADD COLUMN with a computed default");
							*sanitize = true;
						}
					}
					break;
				}
			case AT_AddConstraint:
#if PG_VERSION_NUM < 160000
			case AT_AddConstraintRecurse:
#endif
				{
					Constraint *c = (Constraint *) cmd->def;

					if (c->contype == CONSTR_CHECK && !c->skip_validation)
					{
						needs_empty = "ADD CONSTRAINT ... CHECK";
						hint = "Add it NOT VALID: new and changed rows are then checked in their writers' statements. "
							"Or run it while the table is empty, or have a superuser run it after review.";
					}
					else if (c->contype == CONSTR_EXCLUSION)
						needs_empty = "ADD CONSTRAINT ... EXCLUDE";
					else
					{
						if ((c->contype == CONSTR_PRIMARY || c->contype == CONSTR_UNIQUE) &&
							c->indexname == NULL)
							require_tenant_leading(relid, c->keys != NIL ? strVal(linitial(c->keys)) : NULL,
												   c->keys == NIL);
						*sanitize = true;
					}
					break;
				}
			case AT_ValidateConstraint:
#if PG_VERSION_NUM < 160000
			case AT_ValidateConstraintRecurse:
#endif
				{
					Oid			conoid = get_relation_constraint_oid(relid, cmd->name, true);
					HeapTuple	tup;

					if (!OidIsValid(conoid))
						break;
					tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
					if (HeapTupleIsValid(tup))
					{
						if (((Form_pg_constraint) GETSTRUCT(tup))->contype == CONSTRAINT_CHECK)
							needs_empty = "VALIDATE CONSTRAINT of a CHECK constraint";
						ReleaseSysCache(tup);
					}
					*sanitize = true;
					break;
				}
			case AT_AlterColumnType:
				needs_empty = "ALTER COLUMN ... TYPE";
				hint = "Add a column of the new type and have the application fill it under each tenant's context, "
					"or run it while the table is empty, or have a superuser run it after review.";
				break;
			case AT_SetLogged:
			case AT_SetUnLogged:
			case AT_SetAccessMethod:
				require_no_expression_rebuild(relid, "a table rewrite");
				*sanitize = true;
				break;
			case AT_SetNotNull:
#if PG_VERSION_NUM < 160000
			case AT_CheckNotNull:
#endif
				*sanitize = true;
				break;
			case AT_AttachPartition:
				{
					PartitionCmd *pc = (PartitionCmd *) cmd->def;
					Oid			child = lookup_locked(pc->name, AccessExclusiveLock);

					if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
					{
						require_child_empty(relid, child, "ATTACH PARTITION of table");
						if (pc->bound == NULL || !pc->bound->is_default)
							require_default_partition_empty(relid, "ATTACH PARTITION");
					}
					*sanitize = true;
					break;
				}
			default:
				break;
		}
	}
	if (needs_empty)
		require_empty(relid, AlterTableGetLockLevel(stmt->cmds), needs_empty, hint);
}

/*
 * Extended statistics over expressions: ANALYZE evaluates them on a sample
 * of every tenant's rows, for the role that runs it, and a failing cast
 * quotes the value in its error.
 */
static void
gate_create_stats(CreateStatsStmt *stmt)
{
	ListCell   *lc;
	bool		has_expr = false;
	Oid			relid;

	if (list_length(stmt->relations) != 1)
		return;
	foreach(lc, stmt->exprs)
		if (IsA(lfirst(lc), StatsElem) && ((StatsElem *) lfirst(lc))->expr != NULL)
			has_expr = true;
	if (!has_expr || !IsA(linitial(stmt->relations), RangeVar))
		return;
	relid = lookup_locked((RangeVar *) linitial(stmt->relations), ShareUpdateExclusiveLock);
	if (gated(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("statistics over expressions on protected table \"%s\" are not allowed",
						get_rel_name(relid)),
				 errdetail("ANALYZE evaluates them over every tenant's rows for the role that runs it."),
				 errhint("Build statistics on plain columns, or have a superuser create them after review.")));
}

static void
gate_create_partition(CreateStmt *stmt)
{
	Oid			parent;

	if (stmt->partbound == NULL || stmt->inhRelations == NIL || stmt->partbound->is_default)
		return;
	parent = lookup_locked((RangeVar *) linitial(stmt->inhRelations), ShareUpdateExclusiveLock);
	if (gated(parent))
		require_default_partition_empty(parent, "CREATE TABLE ... PARTITION OF");
}

/*
 * The first column (oid) of an internal catalog query with at most one
 * argument, run as utilix's internal user with a pinned search_path.
 */
static List *
internal_oids(const char *query, Oid argtype, Datum arg)
{
	Oid			save_userid;
	int			save_sec;
	List	   *volatile oids = NIL;
	MemoryContext caller = CurrentMemoryContext;

	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		int			ret;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute_with_args(query, OidIsValid(argtype) ? 1 : 0, &argtype, &arg, NULL, true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "utilix catalog query: SPI error %d", ret);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		v = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				MemoryContext old = MemoryContextSwitchTo(caller);

				oids = lappend_oid(oids, DatumGetObjectId(v));
				MemoryContextSwitchTo(old);
			}
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();
	return oids;
}

/*
 * ALTER DOMAIN that checks stored values (ADD CONSTRAINT, VALIDATE, SET NOT
 * NULL) reads every column of that domain, whatever table and tenant: refuse
 * it while a protected table that row level security applies to has such a
 * column and rows.
 */
static void
gate_alter_domain(AlterDomainStmt *stmt)
{
	Oid			domain;
	ListCell   *lc;

	if (stmt->subtype == 'C')
	{
		Constraint *c = (Constraint *) stmt->def;

		if (c == NULL || c->contype != CONSTR_CHECK || c->skip_validation)
			return;
	}
	else if (stmt->subtype != 'V' && stmt->subtype != 'O')
		return;
	domain = typenameTypeId(NULL, makeTypeNameFromNameList(stmt->typeName));
	if (!utilix_preloaded || get_namespace_oid("utilix", true) == InvalidOid)
		return;

	/* the protected tables with a column of this domain, of a domain over it, or of an array of either */
	foreach(lc, internal_oids("WITH RECURSIVE t(oid) AS (SELECT $1 UNION "
							  "  SELECT ty.oid FROM pg_catalog.pg_type ty JOIN t ON ty.typbasetype = t.oid OR ty.typelem = t.oid) "
							  "SELECT DISTINCT a.attrelid FROM pg_catalog.pg_attribute a JOIN t ON a.atttypid = t.oid "
							  "  JOIN utilix.protected_table p ON p.relid = a.attrelid WHERE NOT a.attisdropped",
							  OIDOID, ObjectIdGetDatum(domain)))
	{
		Oid			relid = lfirst_oid(lc);

		if (gated(relid))
			require_empty(relid, ShareLock, "ALTER DOMAIN that checks stored values of a column",
						  "Add the domain constraint NOT VALID, or have a superuser run it after review.");
	}
}

/*
 * ALTER TABLE ... SET SCHEMA into a protected schema: a table that arrives
 * there filled elsewhere is not a new, empty table that the event trigger
 * protects as it is created.  Refused to roles other than superusers unless
 * the table is protected already; an operator protects it with protect().
 */
static void
gate_set_schema(AlterObjectSchemaStmt *stmt)
{
	Oid			relid;

	if (stmt->objectType != OBJECT_TABLE || stmt->relation == NULL || superuser() ||
		get_namespace_oid("utilix", true) == InvalidOid)
		return;
	relid = lookup_locked(stmt->relation, AccessExclusiveLock);
	if (!OidIsValid(relid) || is_protected(relid))
		return;
	if (internal_oids("SELECT 0::pg_catalog.oid FROM utilix.protected_schema WHERE schema_name = $1::pg_catalog.name",
					  TEXTOID, CStringGetTextDatum(stmt->newschema)) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table \"%s\" cannot be moved into protected schema \"%s\"",
						get_rel_name(relid), stmt->newschema),
				 errdetail("Rows written elsewhere would arrive among tenants' rows without the tenant checks of an insert."),
				 errhint("Create the table in the schema (it is protected as it is created), or have an operator protect it where it is.")));
}

/*
 * Does the table, or a table below it, have an index with expressions or a
 * predicate?
 */
static bool
has_expression_index(Oid relid)
{
	List	   *rels = find_all_inheritors(relid, AccessShareLock, NULL);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = relation_open(lfirst_oid(lc), NoLock);
		List	   *indexes = RelationGetIndexList(rel);
		ListCell   *ic;
		bool		found = false;

		foreach(ic, indexes)
		{
			HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(ic)));

			if (!HeapTupleIsValid(tup))
				continue;
			if (!heap_attisnull(tup, Anum_pg_index_indexprs, NULL) ||
				!heap_attisnull(tup, Anum_pg_index_indpred, NULL))
				found = true;
			ReleaseSysCache(tup);
		}
		relation_close(rel, NoLock);
		if (found)
			return true;
	}
	return false;
}

/*
 * REINDEX, CLUSTER, VACUUM FULL and table rewrites evaluate index
 * expressions and predicates over every tenant's row, as the caller and
 * under the caller's settings: an IMMUTABLE built-in whose output follows a
 * setting (bytea_output, extra_float_digits, ...) then computes what no
 * tenant's write computed, and a failure quotes the value.  For a role
 * under row level security they run only on protected tables without such
 * indexes, or without rows.
 */
static void
require_no_expression_rebuild(Oid relid, const char *what)
{
	if (!gated(relid) || !has_expression_index(relid))
		return;
	if (rel_has_tuples(relid, AccessShareLock))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s of protected table \"%s\" is not allowed while it has rows and an index over expressions",
						what, get_rel_name(relid)),
				 errdetail("It would evaluate the index's expressions over every tenant's rows, under the settings of the role that runs it."),
				 errhint("Have a superuser run it.")));
}

/* the same for every protected table (REINDEX SCHEMA, CLUSTER or VACUUM FULL of all tables) */
/*
 * Maintenance that holds a protected table's lock for as long as it runs
 * (VACUUM FULL, REINDEX of a whole schema or database): not for a role under
 * row level security that does not own the table (the database's owner may
 * run them on tables it does not own).  Looped, it held off every tenant's
 * reads, writes, retention and offboarding.  Judged before any lock is taken.
 */
static void
refuse_table_lock_by_non_owner(Oid relid, const char *what)
{
	List	   *rels;
	ListCell   *lc;

	if (!OidIsValid(relid) || get_rel_relkind(relid) == '\0')
		return;
	rels = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, rels)
	{
		Oid			r = lfirst_oid(lc);

		if (!pg_class_ownercheck(r, GetUserId()) && protected_under_rls_unlocked(r))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s of protected table \"%s\" is for its owner only", what, get_rel_name(r)),
					 errdetail("It holds the table's lock while it runs, holding up every tenant of the table."),
					 errhint("Run it as the table's owner.")));
	}
}

/* The same for the forms without a table: every protected table counts. */
static void
refuse_table_locks_anywhere(const char *what)
{
	ListCell   *lc;

	if (superuser() || get_namespace_oid("utilix", true) == InvalidOid)
		return;
	foreach(lc, internal_oids("SELECT relid FROM utilix.protected_table", InvalidOid, (Datum) 0))
		if (get_rel_relkind(lfirst_oid(lc)) != '\0')
			refuse_table_lock_by_non_owner(lfirst_oid(lc), what);
}

static void
require_no_expression_rebuild_anywhere(const char *what)
{
	ListCell   *lc;

	if (superuser() || get_namespace_oid("utilix", true) == InvalidOid)
		return;
	foreach(lc, internal_oids("SELECT relid FROM utilix.protected_table", InvalidOid, (Datum) 0))
		if (get_rel_relkind(lfirst_oid(lc)) != '\0')
			require_no_expression_rebuild(lfirst_oid(lc), what);
}

static void
gate_reindex(ReindexStmt *stmt, bool *sanitize)
{
	if (stmt->kind == REINDEX_OBJECT_TABLE || stmt->kind == REINDEX_OBJECT_INDEX)
	{
		Oid			relid = lookup_locked(stmt->relation, stmt->kind == REINDEX_OBJECT_INDEX ? ShareUpdateExclusiveLock : ShareLock);

		if (OidIsValid(relid) && stmt->kind == REINDEX_OBJECT_INDEX)
		{
			relid = IndexGetRelation(relid, true);
			if (OidIsValid(relid))
				LockRelationOid(relid, ShareLock);
		}
		if (OidIsValid(relid))
		{
			require_no_expression_rebuild(relid, "REINDEX");
			*sanitize = gated(relid);
		}
	}
	else
	{
		refuse_table_locks_anywhere("REINDEX of a schema or database");
		require_no_expression_rebuild_anywhere("REINDEX");
	}
}

static void
gate_cluster(ClusterStmt *stmt, bool *sanitize)
{
	if (stmt->relation != NULL)
	{
		Oid			relid = lookup_locked(stmt->relation, AccessExclusiveLock);

		if (OidIsValid(relid))
		{
			require_no_expression_rebuild(relid, "CLUSTER");
			*sanitize = gated(relid);
		}
	}
	else
		require_no_expression_rebuild_anywhere("CLUSTER");
}

static void
gate_vacuum(VacuumStmt *stmt, bool *sanitize)
{
	ListCell   *lc;
	bool		full = false;

	if (!stmt->is_vacuumcmd)
		return;
	foreach(lc, stmt->options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, "full") == 0 && defGetBoolean(opt))
			full = true;
	}
	if (!full)
		return;
	if (stmt->rels == NIL)
	{
		refuse_table_locks_anywhere("VACUUM FULL");
		require_no_expression_rebuild_anywhere("VACUUM FULL");
		return;
	}
	foreach(lc, stmt->rels)
	{
		VacuumRelation *vr = (VacuumRelation *) lfirst(lc);
		Oid			relid;

		refuse_table_lock_by_non_owner(vr->relation ? RangeVarGetRelid(vr->relation, NoLock, true) : vr->oid,
									   "VACUUM FULL");
		relid = vr->relation ? lookup_locked(vr->relation, AccessExclusiveLock) : vr->oid;

		if (OidIsValid(relid))
		{
			require_no_expression_rebuild(relid, "VACUUM FULL");
			if (gated(relid))
				*sanitize = true;
		}
	}
}

/*
 * LOCK TABLE.  Row level security does not apply to table locks, and a
 * role may take any lock on a table it may update: an application role
 * (with or without a tenant context) that holds SHARE or a stronger lock on
 * a protected table in an open transaction stops every other tenant's
 * writes, and the purge of every tenant's expired rows, for as long as it
 * likes.  A role under row level security may take on a protected table
 * only the modes its own statements take anyway (ACCESS SHARE, ROW SHARE,
 * ROW EXCLUSIVE); the table's owner, whose DDL takes the strong locks
 * anyway, may take any.  Views are followed to the tables they lock, and a
 * table to its partitions and children (LOCK takes them too).
 */
typedef struct LockGate
{
	LOCKMODE	mode;
	List	   *views;			/* views followed so far */
} LockGate;

static bool lock_reaches_walker(Node *node, void *context);

/*
 * gated(), without taking a lock of its own: the LOCK itself is about to
 * take one, and holding ACCESS SHARE first would make two sessions that
 * LOCK the same table deadlock on the upgrade.
 */
static bool
protected_under_rls_unlocked(Oid relid)
{
	Relation	rel;
	bool		prot;

	if (check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
		return false;
	rel = RelationIdGetRelation(relid);
	if (!RelationIsValid(rel))
		return false;
	prot = utilix_relation_is_protected(rel);
	RelationClose(rel);
	return prot;
}

/* the mode as LOCK TABLE spells it */
static const char *
lock_mode_name(LOCKMODE mode)
{
	static const char *const names[] = {
		"", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
		"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"
	};

	return (mode >= 1 && mode <= 8) ? names[mode] : "?";
}

static void
gate_lock_relation(Oid relid, bool inh, LockGate *g)
{
	char		relkind = get_rel_relkind(relid);

	check_stack_depth();
	if (relkind == RELKIND_VIEW)
	{
		Relation	view;
		Query	   *q;

		if (list_member_oid(g->views, relid))
			return;
		g->views = lappend_oid(g->views, relid);

		/*
		 * Lock the view in the mode LOCK is about to take on it anyway (no
		 * upgrade, so no deadlock), then read its definition: unlocked, a
		 * CREATE OR REPLACE VIEW committing meanwhile would let LOCK reach a
		 * table the gate never saw.
		 */
		LockRelationOid(relid, g->mode);
		view = RelationIdGetRelation(relid);
		if (!RelationIsValid(view))
			return;
		q = copyObject(get_view_query(view));
		RelationClose(view);
		(void) lock_reaches_walker((Node *) q, g);
		return;
	}
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		return;
	{
		List	   *rels = inh ? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
		ListCell   *lc;

		foreach(lc, rels)
		{
			Oid			r = lfirst_oid(lc);

			if (!pg_class_ownercheck(r, GetUserId()) && protected_under_rls_unlocked(r))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("LOCK TABLE ... IN %s MODE on protected table \"%s\" is not allowed",
								lock_mode_name(g->mode), get_rel_name(r)),
						 errdetail("Held in an open transaction, a lock this strong holds up every other tenant of the table: "
								   "their writes, or the removal of their expired rows."),
						 errhint("Lock rows (SELECT ... FOR UPDATE) or use advisory locks; "
								 "ACCESS SHARE, ROW SHARE and ROW EXCLUSIVE are allowed.")));
		}
	}
}

/* every table a view's query reads, as LOCK on the view locks them */
static bool
lock_reaches_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;
		ListCell   *lc;

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

			if (rte->rtekind == RTE_RELATION)
				gate_lock_relation(rte->relid, rte->inh, (LockGate *) context);
		}
		return query_tree_walker(q, lock_reaches_walker, context, 0);
	}
	return expression_tree_walker(node, lock_reaches_walker, context);
}

void
utilix_gate_lock(LockStmt *stmt, List *relids)
{
	ListCell   *lc,
			   *lr;
	LockGate	g;

	if (!utilix_preloaded || stmt->mode <= RowExclusiveLock)
		return;
	g.mode = stmt->mode;
	g.views = NIL;
	forboth(lc, stmt->relations, lr, relids)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);

		if (OidIsValid(lfirst_oid(lr)))
			gate_lock_relation(lfirst_oid(lr), rv->inh, &g);
	}
}

/*
 * CREATE TRIGGER on a protected table by a role that is not its owner (the
 * TRIGGER privilege, which GRANT ALL gives): its open transaction holds a
 * lock that stops every tenant's writes, and a committed trigger (even a
 * built-in one, such as a BEFORE DELETE suppress_redundant_updates_trigger)
 * fails every tenant's deletes, retention and offboarding.  Judged before
 * any lock is taken.
 */
static void
gate_create_trigger(CreateTrigStmt *stmt)
{
	Oid			relid;

	if (stmt->relation == NULL)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || pg_class_ownercheck(relid, GetUserId()) ||
		!protected_under_rls_unlocked(relid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("only the owner may create triggers on protected table \"%s\"",
					get_rel_name(relid)),
			 errdetail("A trigger of another role would act on every tenant's rows, and its creation locks out every tenant's writes."),
			 errhint("Revoke the TRIGGER privilege on protected tables from application roles.")));
}

/*
 * Judge a utility statement before it runs.  Sets *sanitize when the
 * statement may run but its errors must lose their detail.
 */
void
utilix_ddl_gate(Node *parsetree, bool *sanitize)
{
	*sanitize = false;
	if (!utilix_preloaded || parsetree == NULL)
		return;
	switch (nodeTag(parsetree))
	{
		case T_IndexStmt:
			gate_index((IndexStmt *) parsetree, sanitize);
			break;
		case T_AlterTableStmt:
			gate_alter_table((AlterTableStmt *) parsetree, sanitize);
			break;
		case T_CreateStmt:
			gate_create_partition((CreateStmt *) parsetree);
			break;
		case T_AlterDomainStmt:
			gate_alter_domain((AlterDomainStmt *) parsetree);
			break;
		case T_CreateStatsStmt:
			gate_create_stats((CreateStatsStmt *) parsetree);
			break;
		case T_AlterObjectSchemaStmt:
			gate_set_schema((AlterObjectSchemaStmt *) parsetree);
			break;
		case T_ReindexStmt:
			gate_reindex((ReindexStmt *) parsetree, sanitize);
			break;
		case T_ClusterStmt:
			gate_cluster((ClusterStmt *) parsetree, sanitize);
			break;
		case T_VacuumStmt:
			gate_vacuum((VacuumStmt *) parsetree, sanitize);
			break;
		case T_CreateTrigStmt:
			gate_create_trigger((CreateTrigStmt *) parsetree);
			break;
		default:
			break;
	}
}

/*
 * utilix._expr_functions(pg_node_tree): every function a stored expression
 * (a constraint, default, trigger WHEN, index expression or predicate,
 * policy, statistics expression) calls, operators, casts and type I/O
 * included.  pg_depend records no dependency on built-in (pinned) functions,
 * so the catalog alone cannot tell whether an attached expression calls
 * query_to_xml() or setval(): the expression itself can.
 */
static bool
collect_function(Oid funcid, void *context)
{
	List	  **found = (List **) context;

	*found = list_append_unique_oid(*found, funcid);
	return false;
}

static bool
collect_functions_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	(void) check_functions_in_node(node, collect_function, context);
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, collect_functions_walker, context, 0);
	return expression_tree_walker(node, collect_functions_walker, context);
}

PG_FUNCTION_INFO_V1(utilix_expr_functions);
Datum
utilix_expr_functions(PG_FUNCTION_ARGS)
{
	char	   *tree = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Node	   *expr = (Node *) stringToNode(tree);
	List	   *found = NIL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	(void) collect_functions_walker(expr, &found);
	elems = palloc(sizeof(Datum) * (list_length(found) + 1));
	foreach(lc, found)
		elems[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
}
