/*
 * utilix.c
 *		Module entry point and the few helpers every file of utilix uses.
 *
 * _PG_init only calls one XxxInit() per file.  Everything that needs
 * shared_preload_libraries (the master key, hooks, the context setting)
 * is installed only when the library is preloaded; otherwise every
 * entry point refuses with SQLSTATE 55000 and a hint naming the setting.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "commands/trigger.h"

#include "utilix.h"

PG_MODULE_MAGIC;

bool		utilix_preloaded = false;

/*
 * Caches of utilix's catalog tables (tenant status, role bindings, the
 * key-check value) are valid while this generation is unchanged.  A
 * relcache invalidation of any watched table, fired by the statement
 * trigger utilix._invalidate_cache() at commit, bumps it.
 */
uint64		utilix_cache_generation = 1;

#define MAX_WATCHED 16
static Oid	watched_relids[MAX_WATCHED];
static int	n_watched = 0;

static int	internal_depth = 0;

void		_PG_init(void);

static void
utilix_relcache_callback(Datum arg, Oid relid)
{
	bool		hit = (relid == InvalidOid);

	for (int i = 0; !hit && i < n_watched; i++)
		hit = (watched_relids[i] == relid);
	if (hit)
	{
		utilix_cache_generation++;
		n_watched = 0;
	}
}

/*
 * Resolve one of utilix's own tables and watch it for invalidations.
 * Returns InvalidOid when the extension is not installed in this database.
 */
Oid			utilix_catalog_relid(const char *relname);
Oid
utilix_catalog_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid("utilix", true);
	Oid			relid;

	if (!OidIsValid(nsp))
		return InvalidOid;
	relid = get_relname_relid(relname, nsp);
	if (OidIsValid(relid))
	{
		bool		known = false;

		for (int i = 0; i < n_watched; i++)
			known |= (watched_relids[i] == relid);
		if (!known && n_watched < MAX_WATCHED)
			watched_relids[n_watched++] = relid;
	}
	return relid;
}

void
utilix_require_preload(void)
{
	if (!utilix_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("utilix must be loaded via shared_preload_libraries"),
				 errhint("Add utilix to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Run utilix's own catalog queries as the bootstrap superuser, with a
 * restricted security context, and mark them internal so that hooks leave
 * them alone.  Always paired with utilix_end_internal() in PG_FINALLY.
 */
/*
 * Internal queries run under a snapshot of their own when none is active.
 * An output function (decryption) or a hook can run where the portal has
 * already given up its snapshot: the rows of a FETCH, of EXPLAIN or of
 * SHOW are sent from the portal's store after the statement ran.  SPI
 * would then push a "portal snapshot" (EnsurePortalSnapshotExists) that
 * only PortalRunUtility and PortalRunMulti pop: left on the stack, COMMIT
 * warns "snapshot ... still active".  The one pushed here is popped by
 * utilix_end_internal when it is still on top (on an error, the abort
 * pops whatever its subtransaction pushed).
 *
 * The search_path of internal queries is pinned to pg_catalog, pg_temp
 * (pg_temp named last, so that a temporary type or operator of the caller's
 * can never stand in for a catalog one), as a SECURITY DEFINER function's
 * would be.  In a parallel worker settings cannot change; the internal
 * queries name every object with its schema anyway.
 */
#define MAX_INTERNAL_DEPTH 16
static int	internal_guc_levels[MAX_INTERNAL_DEPTH];
static Snapshot internal_snapshots[MAX_INTERNAL_DEPTH];

void
utilix_begin_internal(Oid *save_userid, int *save_sec)
{
	int			level = 0;
	Snapshot	snap = NULL;

	/* first, so that an error here leaves nothing changed */
	if (internal_depth < MAX_INTERNAL_DEPTH && !ActiveSnapshotSet() && IsTransactionState())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snap = GetActiveSnapshot();
	}
	GetUserIdAndSecContext(save_userid, save_sec);
	if (!IsInParallelMode())
	{
		level = NewGUCNestLevel();
		(void) set_config_option("search_path", "pg_catalog, pg_temp",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	}
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (internal_depth < MAX_INTERNAL_DEPTH)
	{
		internal_guc_levels[internal_depth] = level;
		internal_snapshots[internal_depth] = snap;
	}
	internal_depth++;
}

void
utilix_end_internal(Oid save_userid, int save_sec)
{
	int			level;

	internal_depth--;
	level = internal_depth < MAX_INTERNAL_DEPTH ? internal_guc_levels[internal_depth] : 0;
	if (internal_depth < MAX_INTERNAL_DEPTH && internal_snapshots[internal_depth] != NULL)
	{
		/* on top after SPI_finish; after an error the abort cleans up */
		if (ActiveSnapshotSet() && GetActiveSnapshot() == internal_snapshots[internal_depth])
			PopActiveSnapshot();
		internal_snapshots[internal_depth] = NULL;
	}
	SetUserIdAndSecContext(save_userid, save_sec);
	if (level > 0)
		AtEOXact_GUC(true, level);
}

bool
utilix_internal_depth_active(void)
{
	return internal_depth > 0;
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	utilix_preloaded = true;
	KeysInit();
	ContextInit();
	TenancyInit();
	RedactInit();
	KeyringInit();
	EncryptInit();
	UsersInit();
	WorkerInit();
	AccessLogInit();
	MarkGUCPrefixReserved("utilix");
	CacheRegisterRelcacheCallback(utilix_relcache_callback, (Datum) 0);
}

/* Called first by the install script so that CREATE EXTENSION fails cleanly. */
PG_FUNCTION_INFO_V1(utilix_assert_preloaded);
Datum
utilix_assert_preloaded(PG_FUNCTION_ARGS)
{
	utilix_require_preload();
	PG_RETURN_VOID();
}

/* Statement trigger on utilix's catalogs: other backends drop their caches. */
PG_FUNCTION_INFO_V1(utilix_invalidate_cache);
Datum
utilix_invalidate_cache(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("utilix._invalidate_cache() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	/* this backend sees its own change at once */
	utilix_cache_generation++;
	return PointerGetDatum(NULL);
}
