/*
 * users.c
 *		Application users inside the database: password hashes, rights.
 *
 * A password hash is stored as
 *	 $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt, base64url>$<hash, base64url>
 * (written and parsed in pwhash.c) so that the parameters can be raised
 * later without invalidating old hashes.  Verification always runs scrypt,
 * against a dummy hash when the user does not exist, so that an unknown user
 * costs the same as a wrong password, and compares in constant time.
 *
 * Rights live in the context token.  utilix._may(right) is what the
 * permissive policy of every protected table checks, and the statement
 * trigger utilix._check_rights() turns a write without the write right into
 * a clear 42501 (a policy alone would only hide rows).
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "executor/instrument.h"
#include "funcapi.h"
#include "utils/hsearch.h"
#include "mb/pg_wchar.h"
#include "utils/varlena.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "utilix.h"

#define SALT_LEN	UTILIX_PW_SALT_LEN
#define HASH_LEN	UTILIX_PW_HASH_LEN

static int	scrypt_log2n = 15;
static int	scrypt_r = 8;
static int	scrypt_p = 1;
static int	min_password_length = 12;
static int	login_max_failures = 5;
static int	login_lockout_minutes = 15;
static int	login_ttl = 900;
static char *default_rights = NULL;

/* Fill a context's rights from utilix.default_rights (roles bound to a tenant). */
void
utilix_default_rights(UtilixContext *ctx)
{
	char	   *copy = pstrdup(default_rights ? default_rights : "");
	List	   *names = NIL;
	ListCell   *lc;

	ctx->nrights = 0;
	if (SplitIdentifierString(copy, ',', &names))
		foreach(lc, names)
		{
			if (ctx->nrights >= 32)
				break;
			strlcpy(ctx->rights[ctx->nrights++], (char *) lfirst(lc), 64);
		}
	list_free(names);
	pfree(copy);
}

/*
 * Failed logins, counted in shared memory only.
 *
 * A login attempt is counted before its password is checked
 * (utilix._login_attempt), and the count is cleared when the password proves
 * right (utilix._login_reset).  So an attempt that errors, is cancelled or is
 * rolled back stays counted: no transaction can undo a guess, and the table
 * utilix.app_user is not written by a refused attempt at all (which would
 * lock its row, and show in pg_locks and the statistics).
 *
 * The table is exact for every user with recent failures: an entry is never
 * pushed out by other users' failures.  It is reclaimed only once it is
 * stale: no lockout running and no failure within the lockout period (a
 * failure counts towards a lockout for utilix.login_lockout_minutes).  Only
 * users that exist get an entry.  When the table
 * (utilix.login_failure_capacity entries) is full of live entries, a user
 * without an entry may not try a password until entries expire: the attempt
 * is answered like a locked user's, and the server log says so once a
 * minute.  Failing closed there costs an attacker capacity full scrypt
 * checks within one lockout period; counting nothing would give unlimited
 * guesses.
 *
 * The state is lost at a restart, as any lockout in shared memory is.
 */
typedef struct LoginKey
{
	Oid			database;		/* tenant ids start at 1 in every database */
	int64		tenant;
	char		login[64];
} LoginKey;

typedef struct LoginEntry
{
	LoginKey	key;
	int			failures;
	TimestampTz locked_until;	/* 0: not locked */
	TimestampTz expires;		/* stale from then on: free to reclaim */
} LoginEntry;

typedef struct LoginShared
{
	LWLock	   *lock;
	int64		refused_full;	/* attempts refused because a share was full */
	TimestampTz last_full_log;
	TimestampTz last_reclaim;
} LoginShared;

/* entries per tenant: no tenant may take more than its share of the table */
typedef struct TenantKey
{
	Oid			database;
	int64		tenant;
} TenantKey;

typedef struct TenantCount
{
	TenantKey	key;
	int			entries;
} TenantCount;

static int	login_failure_capacity = 65536;
static int	login_failure_tenant_share = 10;
static LoginShared *login_shared = NULL;
static HTAB *login_table = NULL;
static HTAB *tenant_counts = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
users_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(LoginShared)));
	RequestAddinShmemSpace(hash_estimate_size(login_failure_capacity, sizeof(LoginEntry)));
	RequestAddinShmemSpace(hash_estimate_size(login_failure_capacity, sizeof(TenantCount)));
	RequestNamedLWLockTranche("utilix_logins", 1);
}

static void
users_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	login_shared = ShmemInitStruct("utilix login failures", sizeof(LoginShared), &found);
	if (!found)
	{
		memset(login_shared, 0, sizeof(LoginShared));
		login_shared->lock = &(GetNamedLWLockTranche("utilix_logins"))->lock;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LoginKey);
	info.entrysize = sizeof(LoginEntry);
	login_table = ShmemInitHash("utilix login failure table",
								login_failure_capacity, login_failure_capacity,
								&info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(TenantKey);
	info.entrysize = sizeof(TenantCount);
	tenant_counts = ShmemInitHash("utilix login failure shares",
								  login_failure_capacity, login_failure_capacity,
								  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

static void
login_key(LoginKey *key, int64 tenant, text *login)
{
	memset(key, 0, sizeof(LoginKey));
	key->database = MyDatabaseId;
	key->tenant = tenant;
	/* logins have at most 63 bytes (utilix.app_user); longer ones match no user */
	text_to_cstring_buffer(login, key->login, sizeof(key->login));
}

/* Forget a stale entry's past: no lockout running and no recent failure. */
static bool
login_entry_stale(const LoginEntry *e, TimestampTz now)
{
	return e->expires <= now;
}

static void
tenant_key(TenantKey *key, Oid database, int64 tenant)
{
	memset(key, 0, sizeof(TenantKey));
	key->database = database;
	key->tenant = tenant;
}

/* The entries a tenant of this database holds; the caller holds the lock. */
static int
tenant_entries(int64 tenant)
{
	TenantKey	tk;
	TenantCount *c;

	tenant_key(&tk, MyDatabaseId, tenant);
	c = hash_search(tenant_counts, &tk, HASH_FIND, NULL);
	return c ? c->entries : 0;
}

/* Remove an entry and count it off its tenant's share; lock held exclusively. */
static void
login_remove(LoginKey *key)
{
	TenantKey	tk;
	TenantCount *c;

	tenant_key(&tk, key->database, key->tenant);
	if (hash_search(login_table, key, HASH_REMOVE, NULL) == NULL)
		return;
	c = hash_search(tenant_counts, &tk, HASH_FIND, NULL);
	if (c != NULL && --c->entries <= 0)
		hash_search(tenant_counts, &tk, HASH_REMOVE, NULL);
}

/*
 * Remove every stale entry; the caller holds the lock exclusively.  A scan
 * of the whole table, so at most one every 100 ms: attempts refused for want
 * of room would otherwise each scan it, holding every other login up.
 */
static void
login_reclaim(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	LoginEntry *e;

	if (login_shared->last_reclaim != 0 &&
		!TimestampDifferenceExceeds(login_shared->last_reclaim, now, 100))
		return;
	login_shared->last_reclaim = now;
	hash_seq_init(&seq, login_table);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (login_entry_stale(e, now))
		{
			LoginKey	key = e->key;

			login_remove(&key);
		}
}

/* The most entries one tenant may hold. */
static long
tenant_share_limit(void)
{
	long		limit = (long) login_failure_capacity * login_failure_tenant_share / 100;

	return limit < 1 ? 1 : limit;
}

/*
 * utilix._login_attempt(tenant, login, max_failures, lockout): counts an
 * attempt before its password is checked.  True when the password may be
 * checked; false when the user is locked, or the table is full and holds
 * no entry for it.
 */
PG_FUNCTION_INFO_V1(utilix_login_attempt);
Datum
utilix_login_attempt(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	int			max_failures = PG_GETARG_INT32(2);
	Interval   *lockout = PG_GETARG_INTERVAL_P(3);
	bool		eligible = PG_GETARG_BOOL(4);
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until;
	LoginKey	key;
	LoginEntry *e;
	bool		found;
	bool		full_log = false;
	long		live = 0;

	utilix_require_preload();
	login_key(&key, tenant, PG_GETARG_TEXT_PP(1));
	/* computed first: an out-of-range lockout fails before anything is counted */
	until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(now),
													IntervalPGetDatum(lockout)));
	if (until <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the lockout period must be positive")));
	/* called for every attempt, so that every attempt runs the same code */
	if (!eligible)
		PG_RETURN_BOOL(false);

	LWLockAcquire(login_shared->lock, LW_EXCLUSIVE);
	e = hash_search(login_table, &key, HASH_FIND, NULL);
	if (e == NULL)
	{
		bool		room;

		if (hash_get_num_entries(login_table) >= login_failure_capacity ||
			tenant_entries(tenant) >= tenant_share_limit())
			login_reclaim(now);
		room = hash_get_num_entries(login_table) < login_failure_capacity &&
			tenant_entries(tenant) < tenant_share_limit();
		if (room)
			e = hash_search(login_table, &key, HASH_ENTER_NULL, &found);
		if (e != NULL)
		{
			TenantKey	tk;
			TenantCount *c;

			tenant_key(&tk, MyDatabaseId, tenant);
			c = hash_search(tenant_counts, &tk, HASH_ENTER_NULL, &found);

			if (c == NULL)
			{
				/* shared memory ran out: undo, and fail closed below */
				hash_search(login_table, &key, HASH_REMOVE, NULL);
				e = NULL;
			}
			else
				c->entries = found ? c->entries + 1 : 1;
		}
		if (e == NULL)
		{
			login_shared->refused_full++;
			if (login_shared->last_full_log == 0 ||
				TimestampDifferenceExceeds(login_shared->last_full_log, now, 60000))
			{
				login_shared->last_full_log = now;
				full_log = true;
				live = hash_get_num_entries(login_table);
			}
			LWLockRelease(login_shared->lock);
			if (full_log)
				ereport(LOG_SERVER_ONLY,
						(errmsg("utilix: the login failure table is full for a tenant (%ld users with recent failures in all)", live),
						 errdetail("Users without recent failures are refused as if locked until entries expire: "
								   "every user of a tenant that holds utilix.login_failure_tenant_share percent of the table, "
								   "or every user when the whole table is full."),
						 errhint("Look for a flood of failed logins in utilix.auth_event; raise utilix.login_failure_capacity.")));
			PG_RETURN_BOOL(false);
		}
		e->failures = 0;
		e->locked_until = 0;
		e->expires = 0;
	}
	else if (login_entry_stale(e, now))
	{
		/* a lockout that has run out, or old failures, start the count afresh */
		e->failures = 0;
		e->locked_until = 0;
	}
	if (e->locked_until > now)
	{
		LWLockRelease(login_shared->lock);
		PG_RETURN_BOOL(false);
	}
	e->failures++;
	e->expires = until;
	if (e->failures >= max_failures)
		e->locked_until = until;
	LWLockRelease(login_shared->lock);
	PG_RETURN_BOOL(true);
}

/*
 * utilix._login_state(tenant, login): (failures, locked_until) of a user, as
 * the lockout sees it now; (0, NULL) without recent failures.  Answers only
 * a superuser or an admin context of that tenant (NULLs otherwise), since
 * it tells whether someone is guessing a user's password.
 */
PG_FUNCTION_INFO_V1(utilix_login_state);
Datum
utilix_login_state(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	TimestampTz now = GetCurrentTimestamp();
	const UtilixContext *ctx;
	LoginKey	key;
	LoginEntry *e;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int			failures = 0;
	TimestampTz until = 0;

	utilix_require_preload();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("utilix._login_state() must return a record")));
	tupdesc = BlessTupleDesc(tupdesc);
	ctx = utilix_current_context(true);
	if (!superuser() &&
		!(ctx != NULL && ctx->tenant == tenant && utilix_context_has_right(ctx, "admin")))
	{
		nulls[0] = nulls[1] = true;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	login_key(&key, tenant, PG_GETARG_TEXT_PP(1));
	LWLockAcquire(login_shared->lock, LW_SHARED);
	e = hash_search(login_table, &key, HASH_FIND, NULL);
	if (e != NULL && !login_entry_stale(e, now))
	{
		failures = e->failures;
		if (e->locked_until > now)
			until = e->locked_until;
	}
	LWLockRelease(login_shared->lock);
	values[0] = Int32GetDatum(failures);
	values[1] = TimestampTzGetDatum(until);
	nulls[1] = (until == 0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* utilix._login_reset(tenant, login): a successful login clears the count at once. */
PG_FUNCTION_INFO_V1(utilix_login_reset);
Datum
utilix_login_reset(PG_FUNCTION_ARGS)
{
	LoginKey	key;

	utilix_require_preload();
	login_key(&key, PG_GETARG_INT64(0), PG_GETARG_TEXT_PP(1));
	LWLockAcquire(login_shared->lock, LW_EXCLUSIVE);
	login_remove(&key);
	LWLockRelease(login_shared->lock);
	PG_RETURN_VOID();
}

/*
 * Resets that wait for the commit of their transaction: an unlock by an
 * admin, a password reset or change.  Were they immediate, an admin could
 * clear a user's count in a transaction it rolls back, again and again, and
 * guess without limit and without a record.
 */
typedef struct PendingReset
{
	LoginKey	key;
	int			level;			/* transaction nesting level that asked */
} PendingReset;

static List *pending_resets = NIL;	/* in TopTransactionContext */
static bool reset_callbacks = false;

static void
users_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event == XACT_EVENT_PRE_PREPARE && pending_resets != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a transaction that unlocks a login"),
				 errdetail("An unlock takes effect when its transaction commits; COMMIT PREPARED cannot apply it."),
				 errhint("Commit the unlock on its own.")));

	if (event == XACT_EVENT_COMMIT && pending_resets != NIL && login_shared != NULL)
	{
		LWLockAcquire(login_shared->lock, LW_EXCLUSIVE);
		foreach(lc, pending_resets)
			login_remove(&((PendingReset *) lfirst(lc))->key);
		LWLockRelease(login_shared->lock);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		pending_resets = NIL;	/* its memory goes with the transaction */
}

static void
users_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, pending_resets)
	{
		PendingReset *r = (PendingReset *) lfirst(lc);

		if (r->level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			pending_resets = foreach_delete_current(pending_resets, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			r->level = level - 1;
	}
}

/* utilix._login_reset_at_commit(tenant, login): clears the count when the transaction commits. */
PG_FUNCTION_INFO_V1(utilix_login_reset_at_commit);
Datum
utilix_login_reset_at_commit(PG_FUNCTION_ARGS)
{
	MemoryContext old;
	PendingReset *r;

	utilix_require_preload();
	if (!reset_callbacks)
	{
		RegisterXactCallback(users_xact_callback, NULL);
		RegisterSubXactCallback(users_subxact_callback, NULL);
		reset_callbacks = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	r = palloc0(sizeof(PendingReset));
	login_key(&r->key, PG_GETARG_INT64(0), PG_GETARG_TEXT_PP(1));
	r->level = GetCurrentTransactionNestLevel();
	pending_resets = lappend(pending_resets, r);
	MemoryContextSwitchTo(old);
	PG_RETURN_VOID();
}

/*
 * utilix._hide_usage(begin): what login() reads and writes is not shown in
 * the buffer and WAL counters of the calling statement (EXPLAIN (ANALYZE,
 * BUFFERS, WAL), pg_stat_statements): a buffer hit more or less would tell
 * whether the user's row was found.  begin saves the counters; the second
 * call puts them back.
 */
static BufferUsage hidden_buf;
static WalUsage hidden_wal;
static bool usage_saved = false;

PG_FUNCTION_INFO_V1(utilix_hide_usage);
Datum
utilix_hide_usage(PG_FUNCTION_ARGS)
{
	if (PG_GETARG_BOOL(0))
	{
		hidden_buf = pgBufferUsage;
		hidden_wal = pgWalUsage;
		usage_saved = true;
	}
	else if (usage_saved)
	{
		pgBufferUsage = hidden_buf;
		pgWalUsage = hidden_wal;
		usage_saved = false;
	}
	PG_RETURN_VOID();
}

/*
 * utilix.login_failure_table(): for monitoring (operators): whether some
 * tenant's share of the table is full, whether the whole table is, its
 * capacity, and the attempts refused since the start for want of room.
 * Nothing finer: a count of entries, even in whole percent, moves after a
 * refused attempt at a user that exists, and not at one that does not.
 */
PG_FUNCTION_INFO_V1(utilix_login_failure_table);
Datum
utilix_login_failure_table(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	TenantCount *c;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	bool		share_full = false,
				table_full;
	int64		refused;

	utilix_require_preload();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("utilix.login_failure_table() must return a record")));
	tupdesc = BlessTupleDesc(tupdesc);
	LWLockAcquire(login_shared->lock, LW_SHARED);
	hash_seq_init(&seq, tenant_counts);
	while ((c = hash_seq_search(&seq)) != NULL)
		if (c->entries >= tenant_share_limit())
			share_full = true;
	table_full = hash_get_num_entries(login_table) >= login_failure_capacity;
	refused = login_shared->refused_full;
	LWLockRelease(login_shared->lock);
	values[0] = BoolGetDatum(share_full);
	values[1] = BoolGetDatum(table_full);
	values[2] = Int32GetDatum(login_failure_capacity);
	values[3] = Int64GetDatum(refused);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

bool
utilix_context_has_right(const UtilixContext *ctx, const char *right)
{
	if (ctx == NULL || (ctx->flags & UTILIX_CTX_FLAG_PASSWORD_CHANGE))
		return false;
	for (int i = 0; i < ctx->nrights; i++)
		if (strcmp(ctx->rights[i], right) == 0)
			return true;
	return false;
}

/* utilix._hash_password(password): a new salted scrypt hash. */
PG_FUNCTION_INFO_V1(utilix_hash_password);
Datum
utilix_hash_password(PG_FUNCTION_ARGS)
{
	text	   *pw = PG_GETARG_TEXT_PP(0);
	uint8		salt[SALT_LEN];
	uint8		hash[HASH_LEN];
	char	   *out;

	utilix_random_bytes(salt, SALT_LEN);
	utilix_scrypt(VARDATA_ANY(pw), VARSIZE_ANY_EXHDR(pw), salt, SALT_LEN,
				  scrypt_log2n, scrypt_r, scrypt_p, hash, HASH_LEN);
	out = utilix_format_password_hash(scrypt_log2n, scrypt_r, scrypt_p, salt, hash);
	utilix_wipe(hash, sizeof(hash));
	/* the argument may point into a shared buffer: it is never written to */
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * utilix._verify_password(password, stored): constant-time check.  With a
 * NULL (unknown user) or malformed stored hash it still runs scrypt with the
 * current parameters and answers false.
 */
PG_FUNCTION_INFO_V1(utilix_verify_password);
Datum
utilix_verify_password(PG_FUNCTION_ARGS)
{
	text	   *pw;
	int			log2n = scrypt_log2n,
				r = scrypt_r,
				p = scrypt_p;
	uint8		salt[SALT_LEN] = {0};
	uint8		want[HASH_LEN] = {0};
	uint8		got[HASH_LEN];
	bool		known = false;
	bool		ok;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	pw = PG_GETARG_TEXT_PP(0);
	if (!PG_ARGISNULL(1))
	{
		char	   *stored = text_to_cstring(PG_GETARG_TEXT_PP(1));

		known = utilix_parse_password_hash(stored, &log2n, &r, &p, salt, want);
		if (!known)
		{
			log2n = scrypt_log2n;
			r = scrypt_r;
			p = scrypt_p;
		}
	}
	utilix_scrypt(VARDATA_ANY(pw), VARSIZE_ANY_EXHDR(pw), salt, SALT_LEN,
				  log2n, r, p, got, HASH_LEN);
	ok = utilix_ct_equal(got, want, HASH_LEN) && known;

	/*
	 * A hash made with cheaper parameters than the current ones (before they
	 * were raised) would answer faster than the dummy check of an unknown
	 * user: pad up to the current cost.  With r and p unchanged, scrypt at
	 * log2n, log2n + 1, ..., current - 1 adds up to exactly one check at the
	 * current log2n; otherwise one more check at the current parameters.
	 */
	if (known && ((double) (1 << log2n)) * r * p < ((double) (1 << scrypt_log2n)) * scrypt_r * scrypt_p)
	{
		uint8		pad[HASH_LEN];

		if (r == scrypt_r && p == scrypt_p)
			for (int ln = log2n; ln < scrypt_log2n; ln++)
				utilix_scrypt(VARDATA_ANY(pw), VARSIZE_ANY_EXHDR(pw), salt, SALT_LEN,
							  ln, r, p, pad, HASH_LEN);
		else
			utilix_scrypt(VARDATA_ANY(pw), VARSIZE_ANY_EXHDR(pw), salt, SALT_LEN,
						  scrypt_log2n, scrypt_r, scrypt_p, pad, HASH_LEN);
		utilix_wipe(pad, sizeof(pad));
	}
	utilix_wipe(got, sizeof(got));
	utilix_wipe(want, sizeof(want));
	PG_RETURN_BOOL(ok);
}

/* utilix._hash_is_current(stored): is it at least as costly as the current parameters? */
PG_FUNCTION_INFO_V1(utilix_hash_is_current);
Datum
utilix_hash_is_current(PG_FUNCTION_ARGS)
{
	char	   *stored = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			log2n,
				r,
				p;
	uint8		salt[SALT_LEN];
	uint8		hash[HASH_LEN];

	/* a hash at least as costly as the current parameters is kept as it is */
	PG_RETURN_BOOL(utilix_parse_password_hash(stored, &log2n, &r, &p, salt, hash) &&
				   ((double) (1 << log2n)) * r * p >= ((double) (1 << scrypt_log2n)) * scrypt_r * scrypt_p);
}

/*
 * utilix._check_password(login, password): the password policy.  Raises
 * 22023 with a reason; never echoes the password.
 */
PG_FUNCTION_INFO_V1(utilix_check_password);
Datum
utilix_check_password(PG_FUNCTION_ARGS)
{
	text	   *login;
	text	   *pw;
	char	   *l;
	char	   *w;
	int			len;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("login and password must not be null")));
	login = PG_GETARG_TEXT_PP(0);
	pw = PG_GETARG_TEXT_PP(1);
	l = text_to_cstring(login);
	w = text_to_cstring(pw);
	len = pg_mbstrlen(w);
	if (len < min_password_length)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password is too short"),
				 errdetail("A password has at least %d characters (utilix.min_password_length).",
						   min_password_length)));
	if (strlen(w) > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password is too long"),
				 errdetail("A password has at most 1024 bytes.")));
	if (pg_strcasecmp(l, w) == 0 || (strlen(l) >= 4 && strcasestr(w, l) != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password must not contain the login name")));
	for (const unsigned char *c = (const unsigned char *) w; *c; c++)
	{
		/* C0, DEL, and (UTF-8 encoded) C1 control characters */
		if (*c < 0x20 || *c == 0x7f ||
			(GetDatabaseEncoding() == PG_UTF8 && c[0] == 0xC2 && c[1] >= 0x80 && c[1] <= 0x9F))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("password must not contain control characters")));
	}
	utilix_wipe(w, strlen(w));
	PG_RETURN_VOID();
}

/* utilix._may(right): does the current context carry this right? */
PG_FUNCTION_INFO_V1(utilix_may);
Datum
utilix_may(PG_FUNCTION_ARGS)
{
	char	   *right = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(utilix_context_has_right(utilix_current_context(false), right));
}

/*
 * utilix.tenant_if_may(right): the current tenant when the context carries
 * the right, else NULL.  The rights policy compares the tenant column with
 * it, so that, like the tenant policy, it is an index condition evaluated
 * once per scan, and stays parallel safe.
 */
PG_FUNCTION_INFO_V1(utilix_tenant_if_may);
Datum
utilix_tenant_if_may(PG_FUNCTION_ARGS)
{
	const UtilixContext *ctx = utilix_current_context(false);
	text	   *right = PG_GETARG_TEXT_PP(0);
	char		buf[64];

	text_to_cstring_buffer(right, buf, sizeof(buf));
	if (!utilix_context_has_right(ctx, buf))
		PG_RETURN_NULL();
	PG_RETURN_INT64(ctx->tenant);
}

/*
 * utilix._check_rights(): BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
 * statement trigger on protected tables, for roles that row level security
 * applies to.  TRUNCATE would remove every tenant's rows: always refused.
 */
PG_FUNCTION_INFO_V1(utilix_check_rights);
Datum
utilix_check_rights(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			relid;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("utilix._check_rights() must be a statement trigger")));
	relid = RelationGetRelid(td->tg_relation);
	utilix_copy_end_noforce();
	if (check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("TRUNCATE of protected table \"%s\" is not allowed",
						RelationGetRelationName(td->tg_relation)),
				 errdetail("TRUNCATE ignores row level security and would remove every tenant's rows.")));
	if (!utilix_context_has_right(utilix_current_context(false), "write"))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the current context has no write right on table \"%s\"",
						RelationGetRelationName(td->tg_relation)),
				 errhint("A tenant admin grants rights with utilix.grant_rights(); they take effect at the next login.")));
	return PointerGetDatum(NULL);
}

void
UsersInit(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = users_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = users_shmem_startup;
	}
	DefineCustomIntVariable("utilix.scrypt_log2n",
							"scrypt cost: log2 of N for new password hashes.",
							NULL, &scrypt_log2n, 15, 10, 22, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.scrypt_r",
							"scrypt block size r for new password hashes.",
							NULL, &scrypt_r, 8, 1, 32, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.scrypt_p",
							"scrypt parallelism p for new password hashes.",
							NULL, &scrypt_p, 1, 1, 16, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("utilix.default_rights",
							   "Rights of a context issued without rights, and of roles bound to a tenant.",
							   "A comma-separated list of read, write, admin, audit; empty for none.",
							   &default_rights, "read,write", PGC_SUSET, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.login_max_failures",
							"Failed logins after which a user is locked.",
							NULL, &login_max_failures, 5, 1, 1000, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.login_lockout_minutes",
							"How long a user stays locked after too many failed logins.",
							NULL, &login_lockout_minutes, 15, 1, 10080, PGC_SUSET, GUC_UNIT_MIN, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.login_ttl",
							"Lifetime of a token from utilix.login(), in seconds.",
							NULL, &login_ttl, 900, 10, 86400, PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.login_failure_capacity",
							"Users with recent failed logins that the lockout can track at once.",
							"When it is full of live entries, users without one are refused as if locked.",
							&login_failure_capacity, 65536, 1024, 16777216, PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.login_failure_tenant_share",
							"Percent of the login failure table one tenant may hold.",
							"A tenant whose users fill its share is refused as if locked for users without an entry; other tenants are not.",
							&login_failure_tenant_share, 10, 1, 100, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("utilix.min_password_length",
							"Shortest password accepted, in characters.",
							NULL, &min_password_length, 12, 8, 1024, PGC_SUSET, 0, NULL, NULL, NULL);
}
