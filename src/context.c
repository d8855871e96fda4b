/*
 * context.c
 *		The signed tenant context: tokens, the utilix.context setting, and
 *		the functions that read it.
 *
 * A token is  "utx1." base64url(payload) "." base64url(HMAC-SHA-256)
 * where the MAC, under the token subkey of the master key, covers the
 * prefix and the payload.  The payload is binary and length-prefixed:
 *
 *	 version(1) tenant(8) issued_at(8) expires_at(8) token_id(16) realm(16) flags(1)
 *	 user_len(1) user  clearance_len(1) clearance  nrights(1)
 *	 { right_len(1) right } ...
 *
 * (integers big-endian, times as TimestampTz).  The check hook of the
 * setting accepts only a token whose MAC verifies and whose expiry is in the
 * future; the parsed token becomes the setting's "extra", so it is parsed
 * once, and PostgreSQL's own GUC machinery restores it on SET LOCAL,
 * savepoint rollback, RESET and in parallel workers.  Expiry, the tenant's
 * status, the database (realm) the token was issued in and role bindings
 * are checked again at use, once per statement.  The format itself is
 * parsed in token.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "utilix.h"
#include "accesslog.h"

extern uint64 utilix_cache_generation;
extern Oid	utilix_catalog_relid(const char *relname);

static char *context_setting = NULL;
static const UtilixContext *current_ctx = NULL;
static int	max_context_ttl = 86400;	/* seconds */

/* Validation of the current context, valid for one statement. */
static struct
{
	const UtilixContext *ctx;
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	uint64		generation;
	Oid			outer_user;
	const UtilixContext *result;
}			validated;

/*
 * For the access log: the context that was verified last in this
 * statement, and what it verified as (result NULL: no context and no
 * binding).  Unlike "validated" it outlives a change of the cache
 * generation: a statement that changes utilix's catalogs (any DDL does,
 * through the event trigger's bookkeeping) drops the caches, but not the
 * fact that its accesses were made under a context that verified.  A
 * change of the setting or a failed verification forgets it.
 */
static struct
{
	bool		valid;
	const UtilixContext *ctx;
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	Oid			outer_user;
	const UtilixContext *result;
}			log_verified;

/* Context synthesised for a role bound to a tenant. */
static UtilixContext bound_ctx;

/* Caches of tenant status (direct-mapped by tenant id) and role bindings. */
#define STATUS_CACHE_SIZE 4096
static struct
{
	int64		tenant;			/* 0: empty slot */
	bool		active;
}			status_cache[STATUS_CACHE_SIZE];
static uint64 status_cache_generation = 0;
static SPIPlanPtr status_plan = NULL;
static SPIPlanPtr binding_plan = NULL;

static struct
{
	Oid			roleid;
	int64		tenant;			/* 0: not bound */
}			binding_cache[8];
static int	binding_cache_n = 0;
static uint64 binding_cache_generation = 0;

/* ---------- payload encoding ---------- */

static void
put_int64(uint8 *p, int64 v)
{
	uint64		u = (uint64) v;

	for (int i = 7; i >= 0; i--)
	{
		p[i] = (uint8) (u & 0xFF);
		u >>= 8;
	}
}

/* ---------- the setting ---------- */

/*
 * Tokens verified lately, by their full text: a pooled connection sets the
 * same few tokens again and again, and a token that verified once verifies
 * again (the subkey does not change while the server runs).  Expiry is still
 * checked every time.
 */
#define VERIFIED_SLOTS 256
static struct
{
	char	   *text;			/* malloc'd; NULL: empty slot */
	UtilixContext ctx;
}			verified[VERIFIED_SLOTS];

static bool
verified_lookup(const char *token, UtilixContext *out)
{
	uint32		h = hash_bytes((const unsigned char *) token, strlen(token)) % VERIFIED_SLOTS;

	if (verified[h].text != NULL && strcmp(verified[h].text, token) == 0)
	{
		memcpy(out, &verified[h].ctx, sizeof(UtilixContext));
		return true;
	}
	return false;
}

static void
verified_remember(const char *token, const UtilixContext *ctx)
{
	uint32		h = hash_bytes((const unsigned char *) token, strlen(token)) % VERIFIED_SLOTS;
	char	   *copy = strdup(token);

	if (copy == NULL)
		return;
	if (verified[h].text != NULL)
	{
		utilix_wipe(verified[h].text, strlen(verified[h].text));
		free(verified[h].text);
	}
	verified[h].text = copy;
	memcpy(&verified[h].ctx, ctx, sizeof(UtilixContext));
}

static bool
check_context(char **newval, void **extra, GucSource source)
{
	UtilixContext ctx;
	const char *why;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = NULL;
		return true;
	}
	if (source != PGC_S_SESSION && source != PGC_S_CLIENT &&
		source != PGC_S_OVERRIDE && source != PGC_S_INTERACTIVE)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("utilix.context can be set only in a session");
		GUC_check_errdetail("A tenant context cannot be stored in configuration files, role, database or function settings.");
		return false;
	}
	if (!utilix_master_key_loaded())
	{
		GUC_check_errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE);
		GUC_check_errmsg("utilix has no master key");
		GUC_check_errhint("Set utilix.master_key_file or utilix.master_key_command in postgresql.conf and restart the server.");
		return false;
	}
	if (!verified_lookup(*newval, &ctx))
	{
		if (!utilix_token_parse(*newval, &ctx, &why))
		{
			GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
			GUC_check_errmsg("invalid tenant context token");
			GUC_check_errdetail("%s", why);
			GUC_check_errhint("Obtain a token from utilix.login() or utilix.issue_context().");
			utilix_wipe(&ctx, sizeof(ctx));
			return false;
		}
		verified_remember(*newval, &ctx);
	}
	/*
	 * A parallel worker restores the leader's value: expiry is checked at use
	 * against the statement's start, as in the leader, not against the clock.
	 */
	if (!IsParallelWorker() && ctx.expires_at <= GetCurrentTimestamp())
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("tenant context token has expired");
		GUC_check_errhint("Obtain a new token from utilix.login() or utilix.issue_context().");
		return false;
	}
	*extra = malloc(sizeof(UtilixContext));
	if (*extra == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	memcpy(*extra, &ctx, sizeof(UtilixContext));
	return true;
}

static void
assign_context(const char *newval, void *extra)
{
	/*
	 * The access log files what was read and written so far under the
	 * context that is in force until now (SET, set_config, RESET, SET LOCAL
	 * and function settings undone, savepoint rollback: every change of
	 * the setting passes here).
	 */
	utilix_access_log_context_changing();
	current_ctx = (const UtilixContext *) extra;
	/*
	 * Both: with validated.ctx NULL alone, a context cleared part-way
	 * through a statement matched the fast path of
	 * current_context_internal() and returned the old context, whose
	 * memory the GUC machinery may already have freed.
	 */
	validated.ctx = NULL;
	validated.result = NULL;
	log_verified.valid = false;
}

/* SHOW and current_setting() never print the token back. */
static const char *
show_context(void)
{
	return (context_setting && context_setting[0]) ? "(token)" : "";
}

void
ContextInit(void)
{
	DefineCustomStringVariable("utilix.context",
							   "Signed tenant context token for this session or transaction.",
							   "Accepts only tokens from utilix.issue_context() or utilix.login().",
							   &context_setting, "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   check_context, assign_context, show_context);
	DefineCustomIntVariable("utilix.max_context_ttl",
							"Longest lifetime a context token may be issued for.",
							NULL,
							&max_context_ttl, 86400, 1, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* ---------- catalog lookups (cached) ---------- */

/* Run a one-parameter, one-column int8/text query as utilix internally. */
static bool
internal_lookup(const char *sql, SPIPlanPtr *plan, Oid argtype, Datum arg, Datum *result, Oid *restype)
{
	Oid			save_userid;
	int			save_sec;
	volatile bool found = false;

	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* a saved plan: these lookups run at every cache miss */
		if (*plan == NULL)
		{
			SPIPlanPtr	p = SPI_prepare(sql, 1, &argtype);

			if (p == NULL || SPI_keepplan(p) != 0)
				elog(ERROR, "utilix could not prepare an internal lookup");
			*plan = p;
		}
		if (SPI_execute_plan(*plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "utilix internal lookup failed");
		if (SPI_processed > 0)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				/* only by-value results (bigint, boolean) are looked up */
				*restype = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
				Assert(*restype == INT8OID || *restype == BOOLOID);
				*result = d;
				found = true;
			}
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();
	return found;
}

static bool
tenant_is_active(int64 tenant)
{
	Datum		d;
	Oid			t;
	bool		active;

	int			slot = (int) ((uint64) tenant % STATUS_CACHE_SIZE);

	if (status_cache_generation != utilix_cache_generation)
	{
		memset(status_cache, 0, sizeof(status_cache));
		status_cache_generation = utilix_cache_generation;
	}
	if (status_cache[slot].tenant == tenant)
		return status_cache[slot].active;

	(void) utilix_catalog_relid("tenant");
	active = internal_lookup("SELECT status OPERATOR(pg_catalog.=) 'active' FROM utilix.tenant "
							 "WHERE id OPERATOR(pg_catalog.=) $1",
							 &status_plan, INT8OID, Int64GetDatum(tenant), &d, &t) && DatumGetBool(d);
	/* the lookup may have processed invalidations: store only if still current */
	if (status_cache_generation == utilix_cache_generation)
	{
		status_cache[slot].tenant = tenant;
		status_cache[slot].active = active;
	}
	return active;
}

/* The tenant a database role is bound to, or 0. */
static int64
role_binding(Oid roleid)
{
	Datum		d;
	Oid			t;
	int64		tenant = 0;
	char	   *rolname;

	if (binding_cache_generation != utilix_cache_generation)
	{
		binding_cache_n = 0;
		binding_cache_generation = utilix_cache_generation;
	}
	for (int i = 0; i < binding_cache_n; i++)
		if (binding_cache[i].roleid == roleid)
			return binding_cache[i].tenant;

	if (!OidIsValid(utilix_catalog_relid("role_binding")))
		return 0;
	rolname = GetUserNameFromId(roleid, true);
	if (rolname != NULL &&
		internal_lookup("SELECT tenant_id FROM utilix.role_binding "
						"WHERE role_name OPERATOR(pg_catalog.=) $1::pg_catalog.name",
						&binding_plan, TEXTOID, CStringGetTextDatum(rolname), &d, &t))
		tenant = DatumGetInt64(d);
	if (binding_cache_n == lengthof(binding_cache))
		binding_cache_n = 0;
	binding_cache[binding_cache_n].roleid = roleid;
	binding_cache[binding_cache_n].tenant = tenant;
	binding_cache_n++;
	return tenant;
}

/*
 * This database's realm: 16 random bytes stored when the extension was
 * created.  A token carries the realm it was issued in, so that a token of
 * tenant 1 of one database is not taken for tenant 1 of another database
 * that shares the master key.
 */
static uint8 realm_cache[16];
static uint64 realm_generation = 0;
static SPIPlanPtr realm_plan = NULL;

static const uint8 *
database_realm(void)
{
	Oid			save_userid;
	int			save_sec;

	if (realm_generation == utilix_cache_generation)
		return realm_cache;
	if (!OidIsValid(utilix_catalog_relid("realm")))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("utilix is not installed in this database")));
	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		bool		isnull = true;
		Datum		d = (Datum) 0;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (realm_plan == NULL)
		{
			SPIPlanPtr	plan = SPI_prepare("SELECT id FROM utilix.realm LIMIT 1", 0, NULL);

			if (plan == NULL || SPI_keepplan(plan) != 0)
				elog(ERROR, "utilix could not prepare the realm lookup");
			realm_plan = plan;
		}
		if (SPI_execute_plan(realm_plan, NULL, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull || VARSIZE_ANY_EXHDR(DatumGetByteaPP(d)) != 16)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("utilix.realm holds no realm of 16 bytes")));
		memcpy(realm_cache, VARDATA_ANY(DatumGetByteaPP(d)), 16);
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();
	realm_generation = utilix_cache_generation;
	return realm_cache;
}

/* The tenant the roles are bound to, or 0; quiet: -1 instead of the error */
static int64
current_binding(bool quiet)
{
	int64		outer = role_binding(GetOuterUserId());
	int64		session = role_binding(GetSessionUserId());

	if (outer != 0 && session != 0 && outer != session && quiet)
		return -1;
	if (outer != 0 && session != 0 && outer != session)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the session role and the current role are bound to different tenants")));
	return outer != 0 ? outer : session;
}

static void
no_context_error(const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s", msg),
			 errhint("Set a tenant context with utilix.set_context() using a token from utilix.login() or utilix.issue_context(); protected data is not readable without one.")));
}

/*
 * The verified context of this statement, or NULL (missing_ok) when there is
 * none.  Raises 42501 for an expired token, an inactive tenant, or a token
 * that disagrees with the role's binding.  The fast path is a handful of
 * comparisons: the row level security qual calls this for every row.
 */
static const UtilixContext *current_context_internal(bool missing_ok, bool quiet);

/*
 * The context as set, without the per-statement checks: for the access log,
 * which must name the claimed tenant and user even of a statement that the
 * checks refused, and must never raise an error itself.
 */
const UtilixContext *
utilix_context_unchecked(void)
{
	/* a set token: the parsed setting itself (validated.result may be stale) */
	if (current_ctx != NULL)
		return current_ctx;
	/* no token: a bound role's context, if this statement validated one for this role */
	if (validated.result == &bound_ctx && validated.outer_user == GetOuterUserId())
		return &bound_ctx;
	return NULL;
}

/*
 * For the access log: the tenant of the context in force, only when that
 * context verifies here (realm, expiry, role binding, tenant status).  Never
 * raises an error and never reads a catalog (it runs in hooks, error paths
 * and the assign hook of the setting): it takes the validation this
 * statement already made of the very same context, or else what the caches
 * say.  Returns UTILIX_LOGCTX_VERIFIED (tenant, app_user set), _NONE (no
 * context), or _REFUSED (a context is set that does not verify, or could not
 * be checked without a lookup: *why says which; tenant and app_user are
 * what it claims).
 */
int
utilix_context_for_log(int64 *tenant, const char **app_user, const char **why)
{
	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
	Oid			outer = GetOuterUserId();
	const UtilixContext *ctx = current_ctx;
	int64		bound = 0;
	bool		bound_known = false;

	*why = NULL;
	/* verified in this statement (also before a DDL of its own dropped the caches) */
	if (log_verified.valid && log_verified.ctx == ctx && log_verified.lxid == lxid &&
		log_verified.outer_user == outer && log_verified.stmt_start == GetCurrentStatementStartTimestamp())
	{
		if (log_verified.result == NULL)
			return UTILIX_LOGCTX_NONE;
		*tenant = log_verified.result->tenant;
		*app_user = log_verified.result->app_user;
		return UTILIX_LOGCTX_VERIFIED;
	}
	if (ctx == NULL)
		return UTILIX_LOGCTX_NONE;
	*tenant = ctx->tenant;
	*app_user = ctx->app_user;

	/* not validated in this statement: the same checks, from the caches only */
	if (ctx->expires_at <= GetCurrentStatementStartTimestamp())
		*why = "expired";
	else if (realm_generation != utilix_cache_generation)
		*why = "not verified (realm unknown)";
	else if (memcmp(ctx->realm, realm_cache, 16) != 0)
		*why = "issued in another database";
	if (*why != NULL)
		return UTILIX_LOGCTX_REFUSED;
	if (binding_cache_generation == utilix_cache_generation)
	{
		int64		b_outer = -1;
		int64		b_session = -1;

		for (int i = 0; i < binding_cache_n; i++)
		{
			if (binding_cache[i].roleid == outer)
				b_outer = binding_cache[i].tenant;
			if (binding_cache[i].roleid == GetSessionUserId())
				b_session = binding_cache[i].tenant;
		}
		if (b_outer >= 0 && b_session >= 0)
		{
			bound_known = true;
			bound = b_outer != 0 ? b_outer : b_session;
			if (b_outer != 0 && b_session != 0 && b_outer != b_session)
				bound = -1;
		}
	}
	if (!bound_known)
		*why = "not verified (role binding unknown)";
	else if (bound != 0 && bound != ctx->tenant)
		*why = "conflicts with the role's binding";
	else
	{
		int			slot = (int) ((uint64) ctx->tenant % STATUS_CACHE_SIZE);

		if (status_cache_generation != utilix_cache_generation || status_cache[slot].tenant != ctx->tenant)
			*why = "not verified (tenant status unknown)";
		else if (!status_cache[slot].active)
			*why = "tenant not active";
	}
	return *why == NULL ? UTILIX_LOGCTX_VERIFIED : UTILIX_LOGCTX_REFUSED;
}

const UtilixContext *
utilix_current_context(bool missing_ok)
{
	return current_context_internal(missing_ok, false);
}

/*
 * For output functions (decryption): NULL instead of an error whenever the
 * context is missing or not usable, so that pg_dump and operators simply get
 * armoured ciphertext.
 */
const UtilixContext *
utilix_context_for_read(void)
{
	return current_context_internal(true, true);
}

/*
 * For the access log, where a catalog lookup is safe (a query over a
 * protected table starts, a COPY, TRUNCATE or DDL names one, a statement
 * that touched one ends): verify the context in force now unless this
 * statement already did, so that utilix_context_for_log() can decide
 * without the caches.  Nothing checks the context of a role that bypasses
 * row level security, and a utility statement can drop the caches before
 * its record is made.  Quiet: a context that does not verify is left for
 * utilix_context_for_log() to name.  Cheap when the statement has verified
 * it already (a few comparisons); otherwise the cached lookups of
 * utilix_current_context().
 */
void
utilix_context_verify_for_log(void)
{
	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;

	if (log_verified.valid && log_verified.ctx == current_ctx && log_verified.lxid == lxid &&
		log_verified.outer_user == GetOuterUserId() &&
		log_verified.stmt_start == GetCurrentStatementStartTimestamp())
		return;
	if (!utilix_preloaded || IsParallelWorker() || !IsTransactionState() ||
		IsAbortedTransactionBlockState() || utilix_internal_depth_active())
		return;
	(void) current_context_internal(true, true);
}

#define DENY(msg) do { if (quiet) return NULL; no_context_error(msg); } while (0)

static void
log_verified_set(const UtilixContext *result, LocalTransactionId lxid, TimestampTz stmt, Oid outer)
{
	log_verified.ctx = current_ctx;
	log_verified.lxid = lxid;
	log_verified.stmt_start = stmt;
	log_verified.outer_user = outer;
	log_verified.result = result;
	log_verified.valid = true;
}

static const UtilixContext *
current_context_internal(bool missing_ok, bool quiet)
{
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
	Oid			outer = GetOuterUserId();
	int64		bound;

	if (validated.ctx == current_ctx && validated.result != NULL &&
		validated.lxid == lxid && validated.stmt_start == stmt &&
		validated.generation == utilix_cache_generation &&
		validated.outer_user == outer)
		return validated.result;

	if (!utilix_preloaded)
	{
		if (quiet)
			return NULL;
		utilix_require_preload();
	}
	validated.result = NULL;
	log_verified.valid = false;
	bound = current_binding(quiet);
	if (bound < 0)
		return NULL;			/* quiet: roles bound to different tenants */

	if (current_ctx == NULL)
	{
		if (bound == 0)
		{
			if (missing_ok)
			{
				log_verified_set(NULL, lxid, stmt, outer);
				return NULL;
			}
			no_context_error("no tenant context is set");
		}
		memset(&bound_ctx, 0, sizeof(bound_ctx));
		bound_ctx.tenant = bound;
		bound_ctx.flags = UTILIX_CTX_FLAG_BOUND_ROLE;
		bound_ctx.expires_at = DT_NOEND;
		strlcpy(bound_ctx.app_user, GetUserNameFromId(outer, false), sizeof(bound_ctx.app_user));
		utilix_default_rights(&bound_ctx);
		if (!tenant_is_active(bound))
			DENY("the tenant this role is bound to is not active");
		validated.result = &bound_ctx;
	}
	else
	{
		if (current_ctx->expires_at <= stmt)
			DENY("tenant context token has expired");
		if (memcmp(current_ctx->realm, database_realm(), 16) != 0)
			DENY("tenant context token was issued in another database");
		if (bound != 0 && bound != current_ctx->tenant)
			DENY("tenant context token names another tenant than this role is bound to");
		if (!tenant_is_active(current_ctx->tenant))
			DENY("the tenant of this context is not active");
		validated.result = current_ctx;
	}
	validated.ctx = current_ctx;
	validated.lxid = lxid;
	validated.stmt_start = stmt;
	validated.generation = utilix_cache_generation;
	validated.outer_user = outer;
	log_verified_set(validated.result, lxid, stmt, outer);
	return validated.result;
}

/* ---------- SQL-callable ---------- */

PG_FUNCTION_INFO_V1(utilix_current_tenant);
Datum
utilix_current_tenant(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(utilix_current_context(false)->tenant);
}

PG_FUNCTION_INFO_V1(utilix_current_app_user);
Datum
utilix_current_app_user(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(utilix_current_context(false)->app_user));
}

static ArrayType *
rights_array(const UtilixContext *ctx)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(ctx->nrights, 1));

	for (int i = 0; i < ctx->nrights; i++)
		elems[i] = CStringGetTextDatum(ctx->rights[i]);
	return construct_array(elems, ctx->nrights, TEXTOID, -1, false, TYPALIGN_INT);
}

/* utilix.context_info(): what the current context says, never the token. */
PG_FUNCTION_INFO_V1(utilix_context_info);
Datum
utilix_context_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {false};
	const UtilixContext *ctx = current_ctx;
	const char *status;
	int64		bound;

	utilix_require_preload();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	bound = current_binding(false);
	if (ctx == NULL && bound != 0)
	{
		memset(&bound_ctx, 0, sizeof(bound_ctx));
		bound_ctx.tenant = bound;
		bound_ctx.flags = UTILIX_CTX_FLAG_BOUND_ROLE;
		bound_ctx.expires_at = DT_NOEND;
		strlcpy(bound_ctx.app_user, GetUserNameFromId(GetOuterUserId(), false), sizeof(bound_ctx.app_user));
		utilix_default_rights(&bound_ctx);
		ctx = &bound_ctx;
	}
	if (ctx == NULL)
	{
		for (int i = 0; i < 7; i++)
			nulls[i] = true;
		values[7] = CStringGetTextDatum("none");
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	if (ctx->expires_at <= GetCurrentStatementStartTimestamp())
		status = "expired";
	else if (!(ctx->flags & UTILIX_CTX_FLAG_BOUND_ROLE) && memcmp(ctx->realm, database_realm(), 16) != 0)
		status = "issued in another database";
	else if (bound != 0 && bound != ctx->tenant)
		status = "conflicts with role binding";
	else if (!tenant_is_active(ctx->tenant))
		status = "tenant not active";
	else if (ctx->flags & UTILIX_CTX_FLAG_PASSWORD_CHANGE)
		status = "password change only";
	else
		status = "valid";

	values[0] = Int64GetDatum(ctx->tenant);
	values[1] = CStringGetTextDatum(ctx->app_user);
	values[2] = PointerGetDatum(rights_array(ctx));
	if (ctx->clearance[0])
		values[3] = CStringGetTextDatum(ctx->clearance);
	else
		nulls[3] = true;
	if (ctx->flags & UTILIX_CTX_FLAG_BOUND_ROLE)
	{
		nulls[4] = true;
		nulls[5] = true;
	}
	else
	{
		values[4] = TimestampTzGetDatum(ctx->issued_at);
		values[5] = TimestampTzGetDatum(ctx->expires_at);
	}
	values[6] = BoolGetDatum((ctx->flags & UTILIX_CTX_FLAG_BOUND_ROLE) != 0);
	values[7] = CStringGetTextDatum(status);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(utilix_set_context);
Datum
utilix_set_context(PG_FUNCTION_ARGS)
{
	char	   *token;
	bool		is_local = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);

	utilix_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant context token must not be null"),
				 errhint("Use utilix.clear_context() to leave a tenant context.")));
	token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (token[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("invalid tenant context token"),
				 errdetail("The token is empty."),
				 errhint("Use utilix.clear_context() to leave a tenant context.")));
	(void) set_config_option("utilix.context", token, PGC_USERSET, PGC_S_SESSION,
							 is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
							 true, 0, false);
	utilix_wipe(token, strlen(token));
	/* fail now, not at the first query, if the context cannot be used */
	PG_RETURN_INT64(utilix_current_context(false)->tenant);
}

PG_FUNCTION_INFO_V1(utilix_clear_context);
Datum
utilix_clear_context(PG_FUNCTION_ARGS)
{
	utilix_require_preload();
	(void) set_config_option("utilix.context", "", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
	PG_RETURN_VOID();
}

/*
 * utilix._sign_token(tenant, app_user, ttl, rights, clearance, flags):
 * internal, called by utilix.issue_context() (and later utilix.login())
 * after they checked the tenant.  Not granted to anyone.
 */
PG_FUNCTION_INFO_V1(utilix_sign_token);
Datum
utilix_sign_token(PG_FUNCTION_ARGS)
{
	int64		tenant;
	text	   *user_t;
	Interval   *ttl;
	uint8		payload[UTILIX_TOKEN_PAYLOAD_MAX];
	size_t		pos = 0;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz exp;
	int64		ttl_us;
	uint8		mac[UTILIX_MAC_LEN];
	const uint8 *key;
	char	   *p64;
	char	   *m64;
	StringInfoData buf;
	size_t		ulen;

	key = utilix_subkey(UTILIX_SUBKEY_TOKEN);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant, app_user and ttl must not be null")));
	tenant = PG_GETARG_INT64(0);
	user_t = PG_GETARG_TEXT_PP(1);
	ttl = PG_GETARG_INTERVAL_P(2);

	if (tenant <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant id must be positive")));
	ulen = VARSIZE_ANY_EXHDR(user_t);
	if (!utilix_token_app_user_ok(VARDATA_ANY(user_t), ulen))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("app_user must be 1 to 255 bytes without control characters")));
	/* every part within the limit on its own first, so that their sum cannot wrap */
	if (ttl->month < 0 || ttl->month > 12 || ttl->day < 0 || ttl->day > 366 ||
		ttl->time < 0 || ttl->time > (int64) max_context_ttl * USECS_PER_SEC)
		ttl_us = -1;
	else
		ttl_us = ttl->time + (int64) ttl->day * USECS_PER_DAY + (int64) ttl->month * 30 * USECS_PER_DAY;
	if (ttl_us <= 0 || ttl_us > (int64) max_context_ttl * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be positive and at most utilix.max_context_ttl (%d seconds)",
						max_context_ttl)));
	exp = now + ttl_us;

	payload[pos++] = UTILIX_TOKEN_PAYLOAD_VERSION;
	put_int64(payload + pos, tenant);
	pos += 8;
	put_int64(payload + pos, now);
	pos += 8;
	put_int64(payload + pos, exp);
	pos += 8;
	utilix_random_bytes(payload + pos, 16);
	pos += 16;
	memcpy(payload + pos, database_realm(), 16);
	pos += 16;
	payload[pos++] = PG_ARGISNULL(5) ? 0 : (uint8) (PG_GETARG_INT32(5) & 0x7F);
	payload[pos++] = (uint8) ulen;
	memcpy(payload + pos, VARDATA_ANY(user_t), ulen);
	pos += ulen;

	if (!PG_ARGISNULL(4))
	{
		text	   *c = PG_GETARG_TEXT_PP(4);
		size_t		clen = VARSIZE_ANY_EXHDR(c);

		if (!utilix_token_word_ok(VARDATA_ANY(c), clen))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("clearance must be a lower-case word of at most 63 characters")));
		payload[pos++] = (uint8) clen;
		memcpy(payload + pos, VARDATA_ANY(c), clen);
		pos += clen;
	}
	else
		payload[pos++] = 0;

	if (!PG_ARGISNULL(3))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(3);
		Datum	   *elems;
		bool	   *enulls;
		int			n;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rights must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
		if (n > 32)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a context may carry at most 32 rights")));
		payload[pos++] = (uint8) n;
		for (int i = 0; i < n; i++)
		{
			text	   *r;
			size_t		rlen;

			if (enulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("rights must not contain nulls")));
			r = DatumGetTextPP(elems[i]);
			rlen = VARSIZE_ANY_EXHDR(r);
			if (!utilix_token_word_ok(VARDATA_ANY(r), rlen))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("each right must be a lower-case word of at most 63 characters")));
			payload[pos++] = (uint8) rlen;
			memcpy(payload + pos, VARDATA_ANY(r), rlen);
			pos += rlen;
		}
	}
	else
		payload[pos++] = 0;

	Assert(pos <= UTILIX_TOKEN_PAYLOAD_MAX);
	utilix_token_mac(key, payload, pos, mac);
	p64 = utilix_b64url_encode(payload, pos);
	m64 = utilix_b64url_encode(mac, UTILIX_MAC_LEN);
	initStringInfo(&buf);
	appendStringInfo(&buf, "%s%s.%s", UTILIX_TOKEN_PREFIX, p64, m64);
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}
