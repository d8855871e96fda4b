/*
 * keyring.c
 *		Per-tenant data keys: creation, wrapping, unwrapping and the
 *		per-backend cache.
 *
 * Each tenant has random 256-bit data keys, one per version (1, 2, ...;
 * the newest active one seals new values) and a blind-index root key
 * (version 0, never rotated, so that blind indexes stay comparable across
 * rotations).  They are stored only wrapped, in utilix.data_key: AES-256-GCM
 * under the wrapping subkey of the master key, with associated data naming
 * the tenant and version, as nonce (12) | ciphertext (32) | tag (16).
 *
 * Unwrapped keys live only in this backend's cache, as keyed AES-GCM
 * contexts; the cache is emptied (and every key wiped) whenever utilix's
 * catalogs change (rotation, shredding), and at process exit.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "utilix.h"

#define WRAPPED_LEN (UTILIX_NONCE_LEN + UTILIX_KEY_LEN + UTILIX_TAG_LEN)

typedef struct KeyCacheKey
{
	int64		tenant;
	int64		version;		/* -1: the active version of the tenant */
} KeyCacheKey;

typedef struct KeyCacheEntry
{
	KeyCacheKey key;
	bool		present;		/* false: no such key (or destroyed) */
	UtilixTenantKey tk;
	uint8		blind_root[UTILIX_KEY_LEN]; /* version 0 only */
	uint32		active_version; /* version -1 entries only */
} KeyCacheEntry;

typedef struct BlindKeyEntry
{
	int64		tenant;
	int64		column_id;
	uint8		key[UTILIX_KEY_LEN];
	UtilixPrf  *mask_prf;		/* masks the blind index as stored */
} BlindKeyEntry;

static HTAB *key_cache = NULL;
static uint64 key_cache_generation = 0;
static BlindKeyEntry blind_keys[16];
static int	n_blind_keys = 0;

/* Drop the cached blind keys, their mask contexts freed (and wiped) */
static void
forget_blind_keys(void)
{
	for (int i = 0; i < n_blind_keys; i++)
		utilix_prf_free(blind_keys[i].mask_prf);
	utilix_wipe(blind_keys, sizeof(blind_keys));
	n_blind_keys = 0;
}
static UtilixAead *wrap_aead = NULL;

static void
wrap_aad(uint8 *aad, int64 tenant, uint32 version)
{
	static const char label[] = "utilix data key v1";

	memcpy(aad, label, sizeof(label) - 1);
	for (int i = 0; i < 8; i++)
		aad[sizeof(label) - 1 + i] = (uint8) ((uint64) tenant >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		aad[sizeof(label) - 1 + 8 + i] = (uint8) (version >> (24 - 8 * i));
}
#define WRAP_AAD_LEN (sizeof("utilix data key v1") - 1 + 12)

static UtilixAead *
get_wrap_aead(void)
{
	if (wrap_aead == NULL)
		wrap_aead = utilix_aead_new(utilix_subkey(UTILIX_SUBKEY_WRAP));
	return wrap_aead;
}

static void
flush_cache(void)
{
	HASH_SEQ_STATUS seq;
	KeyCacheEntry *e;

	if (key_cache != NULL)
	{
		hash_seq_init(&seq, key_cache);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			if (e->tk.aead)
				utilix_aead_free(e->tk.aead);
			utilix_wipe(e->blind_root, sizeof(e->blind_root));
		}
		hash_destroy(key_cache);
		key_cache = NULL;
	}
	forget_blind_keys();
	if (wrap_aead)
	{
		utilix_aead_free(wrap_aead);
		wrap_aead = NULL;
	}
}

static void
keyring_exit(int code, Datum arg)
{
	flush_cache();
}

static HTAB *
get_cache(void)
{
	if (key_cache != NULL && key_cache_generation != utilix_cache_generation)
		flush_cache();
	if (key_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(KeyCacheKey);
		ctl.entrysize = sizeof(KeyCacheEntry);
		ctl.hcxt = TopMemoryContext;
		key_cache = hash_create("utilix data keys", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		key_cache_generation = utilix_cache_generation;
		(void) utilix_catalog_relid("data_key");
	}
	return key_cache;
}

/*
 * Run a query as utilix internally; returns SPI_processed.  The caller
 * connects and finishes SPI.  Outside parallel mode, queries run as
 * non-read-only so that they take a fresh snapshot and see keys created
 * earlier in the same statement.
 */
static uint64
internal_query(const char *sql, int nargs, Oid *types, Datum *values, bool read_only)
{
	int			rc;

	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, read_only, 0);
	if (rc < 0)
		elog(ERROR, "utilix keyring query failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Unwrap under the current master key or, during a rotation, the previous
 * one.  False when neither authenticates.
 */
static bool
unwrap(int64 tenant, uint32 version, const uint8 *wrapped, uint8 key[UTILIX_KEY_LEN])
{
	uint8		aad[WRAP_AAD_LEN];
	const uint8 *prev;
	bool		ok;

	wrap_aad(aad, tenant, version);
	if (utilix_aead_open(get_wrap_aead(), wrapped, aad, sizeof(aad),
						 wrapped + UTILIX_NONCE_LEN, UTILIX_KEY_LEN,
						 wrapped + UTILIX_NONCE_LEN + UTILIX_KEY_LEN, key))
		return true;
	prev = utilix_previous_wrap_subkey();
	if (prev == NULL)
		return false;
	{
		UtilixAead *old = utilix_aead_new(prev);

		ok = utilix_aead_open(old, wrapped, aad, sizeof(aad),
							  wrapped + UTILIX_NONCE_LEN, UTILIX_KEY_LEN,
							  wrapped + UTILIX_NONCE_LEN + UTILIX_KEY_LEN, key);
		utilix_aead_free(old);
	}
	return ok;
}

static void
wrap_into(int64 tenant, uint32 version, const uint8 *key, uint8 *p)
{
	uint8		aad[WRAP_AAD_LEN];

	utilix_random_bytes(p, UTILIX_NONCE_LEN);
	wrap_aad(aad, tenant, version);
	utilix_aead_seal(get_wrap_aead(), p, aad, sizeof(aad), key, UTILIX_KEY_LEN,
					 p + UTILIX_NONCE_LEN, p + UTILIX_NONCE_LEN + UTILIX_KEY_LEN);
}

/*
 * utilix._rewrap_key(tenant, version, wrapped): the same data key wrapped
 * under the current master key (it may be under the previous one).
 */
PG_FUNCTION_INFO_V1(utilix_rewrap_key);
Datum
utilix_rewrap_key(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	int32		version = PG_GETARG_INT32(1);
	bytea	   *in = PG_GETARG_BYTEA_PP(2);
	uint8		key[UTILIX_KEY_LEN];
	bytea	   *out;

	utilix_require_master_key();
	if (VARSIZE_ANY_EXHDR(in) != WRAPPED_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("wrapped data key %d of tenant " INT64_FORMAT " is malformed", version, tenant)));
	if (!unwrap(tenant, (uint32) version, (const uint8 *) VARDATA_ANY(in), key))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("data key %d of tenant " INT64_FORMAT " does not unwrap under the current or previous master key",
						version, tenant)));
	out = palloc(VARHDRSZ + WRAPPED_LEN);
	SET_VARSIZE(out, VARHDRSZ + WRAPPED_LEN);
	PG_TRY();
	{
		wrap_into(tenant, (uint32) version, key, (uint8 *) VARDATA(out));
	}
	PG_CATCH();
	{
		utilix_wipe(key, sizeof(key));
		PG_RE_THROW();
	}
	PG_END_TRY();
	utilix_wipe(key, sizeof(key));
	PG_RETURN_BYTEA_P(out);
}

/* Fetch and unwrap one key.  Returns false when it does not exist or was destroyed. */
static bool
load_key(int64 tenant, uint32 version, uint8 key[UTILIX_KEY_LEN])
{
	Oid			save_userid;
	int			save_sec;
	volatile bool found = false;
	uint8		wrapped[WRAPPED_LEN];
	volatile bool have_wrapped = false;

	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		Oid			types[2] = {INT8OID, INT4OID};
		Datum		values[2] = {Int64GetDatum(tenant), Int32GetDatum((int32) version)};

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (internal_query("SELECT wrapped FROM utilix.data_key "
						   "WHERE tenant_id OPERATOR(pg_catalog.=) $1 "
						   "AND version OPERATOR(pg_catalog.=) $2 "
						   "AND wrapped IS NOT NULL",
						   2, types, values, IsInParallelMode()) > 0)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				bytea	   *b = DatumGetByteaPP(d);

				if (VARSIZE_ANY_EXHDR(b) != WRAPPED_LEN)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("wrapped data key %d of tenant " INT64_FORMAT " is malformed",
									version, tenant)));
				memcpy(wrapped, VARDATA_ANY(b), WRAPPED_LEN);
				have_wrapped = true;
			}
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();

	if (have_wrapped)
	{
		if (!unwrap(tenant, version, wrapped, key))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("data key %d of tenant " INT64_FORMAT " does not unwrap", version, tenant),
					 errdetail("The wrapped key was altered, or it was wrapped under another master key.")));
		found = true;
	}
	utilix_wipe(wrapped, sizeof(wrapped));
	return found;
}

/* A keyed context; the raw key is wiped whether or not setup succeeds. */
static UtilixAead *
aead_and_wipe(uint8 *key)
{
	UtilixAead *volatile aead = NULL;

	PG_TRY();
	{
		aead = utilix_aead_new(key);
	}
	PG_CATCH();
	{
		utilix_wipe(key, UTILIX_KEY_LEN);
		PG_RE_THROW();
	}
	PG_END_TRY();
	utilix_wipe(key, UTILIX_KEY_LEN);
	return aead;
}

/* Create the tenant's keys when missing; returns its active version or 0. */
static uint32
ensure_tenant_keys(int64 tenant)
{
	Oid			save_userid;
	int			save_sec;
	volatile uint32 active = 0;

	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(tenant)};
		bool		isnull = true;
		Datum		d = (Datum) 0;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (internal_query("SELECT utilix._ensure_tenant_keys($1)", 1, types, values, false) > 0)
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			active = (uint32) DatumGetInt32(d);
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();
	return active;
}

UtilixTenantKey *
utilix_tenant_key(int64 tenant, uint32 version, bool missing_ok)
{
	HTAB	   *cache;
	KeyCacheKey k;
	KeyCacheEntry *e;
	bool		found;
	uint8		key[UTILIX_KEY_LEN];

	utilix_require_master_key();
	cache = get_cache();
	k.tenant = tenant;
	k.version = version;
	e = hash_search(cache, &k, HASH_FIND, NULL);
	if (e == NULL)
	{
		bool		present = load_key(tenant, version, key);

		/* loading may not change the catalogs, so the cache is still ours */
		UtilixAead *aead = NULL;

		/* build the keyed context before the entry exists: never half an entry */
		if (present && version != 0)
			aead = aead_and_wipe(key);
		e = hash_search(get_cache(), &k, HASH_ENTER, &found);
		e->present = present;
		e->tk.tenant = tenant;
		e->tk.version = version;
		e->tk.aead = aead;
		if (present && version == 0)
			memcpy(e->blind_root, key, UTILIX_KEY_LEN);
		utilix_wipe(key, sizeof(key));
	}
	if (!e->present)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key %u of tenant " INT64_FORMAT " does not exist or was destroyed",
						version, tenant)));
	}
	return &e->tk;
}

/* The key that seals new values of a tenant; created on first use. */
UtilixTenantKey *
utilix_active_tenant_key(int64 tenant)
{
	KeyCacheKey k;
	KeyCacheEntry *e;
	uint32		active = 0;

	utilix_require_master_key();
	k.tenant = tenant;
	k.version = -1;
	e = hash_search(get_cache(), &k, HASH_FIND, NULL);
	if (e == NULL)
	{
		active = ensure_tenant_keys(tenant);
		if (active == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant " INT64_FORMAT " has no active data key", tenant),
					 errhint("Its keys were destroyed, or it is not an active tenant.")));
		/* creating keys may have invalidated the cache: look up afresh */
		e = hash_search(get_cache(), &k, HASH_ENTER, NULL);
		e->present = true;
		e->active_version = active;
		e->tk.aead = NULL;
	}
	return utilix_tenant_key(tenant, e->active_version, false);
}

/* A keyed PRF context; the key is wiped, whether or not setting it up fails */
static UtilixPrf *
prf_wiping_key(uint8 key[UTILIX_KEY_LEN])
{
	UtilixPrf  *volatile prf = NULL;

	PG_TRY();
	{
		prf = utilix_prf_new(key);
	}
	PG_CATCH();
	{
		utilix_wipe(key, UTILIX_KEY_LEN);
		PG_RE_THROW();
	}
	PG_END_TRY();
	utilix_wipe(key, UTILIX_KEY_LEN);
	return prf;
}

/*
 * The blind keys of a tenant's column: the key of its blind index (HMAC of
 * the plaintext) and the key that masks the blind index as stored.  NULL
 * when the tenant has no blind root (shredded) and missing_ok.
 */
static BlindKeyEntry *
blind_key_entry(int64 tenant, int64 column_id, bool missing_ok)
{
	BlindKeyEntry *bk = NULL;
	KeyCacheKey k;
	KeyCacheEntry *e;
	uint8		label[16];
	uint8		mask_key[UTILIX_KEY_LEN];
	static const char mask_info[] = "utilix blind-index mask";

	(void) get_cache();			/* flushes blind keys when the catalogs changed */
	for (int i = 0; i < n_blind_keys; i++)
		if (blind_keys[i].tenant == tenant && blind_keys[i].column_id == column_id)
			return &blind_keys[i];
	if (utilix_tenant_key(tenant, 0, missing_ok) == NULL)
		return NULL;
	k.tenant = tenant;
	k.version = 0;
	e = hash_search(get_cache(), &k, HASH_FIND, NULL);
	Assert(e != NULL && e->present);
	if (n_blind_keys == lengthof(blind_keys))
		forget_blind_keys();
	bk = &blind_keys[n_blind_keys];
	bk->tenant = tenant;
	bk->column_id = column_id;
	memcpy(label, "column\0\0", 8);
	for (int i = 0; i < 8; i++)
		label[8 + i] = (uint8) ((uint64) column_id >> (56 - 8 * i));
	utilix_hmac_sha256(e->blind_root, UTILIX_KEY_LEN, label, sizeof(label), bk->key);
	/* a key of its own: the mask says nothing of the blind index's key */
	utilix_hkdf_sha256(bk->key, UTILIX_KEY_LEN, NULL, 0,
					   (const uint8 *) mask_info, sizeof(mask_info) - 1,
					   mask_key, UTILIX_KEY_LEN);
	bk->mask_prf = prf_wiping_key(mask_key);
	n_blind_keys++;				/* only a whole entry counts */
	return bk;
}

/* Blind index of a plaintext: HMAC under a per-tenant, per-column key, truncated. */
void
utilix_blind_index(int64 tenant, int64 column_id, const uint8 *data, size_t len,
				   uint8 out[UTILIX_BIDX_LEN])
{
	uint8		mac[UTILIX_MAC_LEN];
	BlindKeyEntry *bk = blind_key_entry(tenant, column_id, false);

	utilix_hmac_sha256(bk->key, UTILIX_KEY_LEN, data, len, mac);
	memcpy(out, mac, UTILIX_BIDX_LEN);
	utilix_wipe(mac, sizeof(mac));
}

/*
 * The mask of the blind index stored in a value with this nonce: AES-256 of
 * the nonce (zero-padded to a block) under the column's mask key.  The nonce is unique per
 * value, so equal plaintexts store unrelated bytes.  Masking and unmasking
 * are the same XOR.  False (out zeroed) when the tenant's blind root is gone
 * and missing_ok.
 */
bool
utilix_blind_mask(int64 tenant, int64 column_id, const uint8 *nonce,
				  uint8 out[UTILIX_BIDX_LEN], bool missing_ok)
{
	uint8		block[16] = {0};
	BlindKeyEntry *bk = blind_key_entry(tenant, column_id, missing_ok);

	StaticAssertStmt(UTILIX_BIDX_LEN == 16 && UTILIX_NONCE_LEN <= 16,
					 "a blind index is one AES block, a nonce fits in one");
	if (bk == NULL)
	{
		memset(out, 0, UTILIX_BIDX_LEN);
		return false;
	}
	memcpy(block, nonce, UTILIX_NONCE_LEN);
	utilix_prf_block(bk->mask_prf, block, out);
	return true;
}

/* utilix._wrap_new_key(tenant, version): a fresh random key, wrapped. */
PG_FUNCTION_INFO_V1(utilix_wrap_new_key);
Datum
utilix_wrap_new_key(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	int32		version = PG_GETARG_INT32(1);
	uint8		key[UTILIX_KEY_LEN];
	bytea	   *out;
	uint8	   *p;

	if (tenant <= 0 || version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid tenant or key version")));
	out = palloc(VARHDRSZ + WRAPPED_LEN);
	SET_VARSIZE(out, VARHDRSZ + WRAPPED_LEN);
	p = (uint8 *) VARDATA(out);
	utilix_random_bytes(key, sizeof(key));
	PG_TRY();
	{
		wrap_into(tenant, (uint32) version, key, p);
	}
	PG_CATCH();
	{
		utilix_wipe(key, sizeof(key));
		PG_RE_THROW();
	}
	PG_END_TRY();
	utilix_wipe(key, sizeof(key));
	PG_RETURN_BYTEA_P(out);
}

/* utilix._random_id(): a random positive bigint (stable column ids). */
PG_FUNCTION_INFO_V1(utilix_random_id);
Datum
utilix_random_id(PG_FUNCTION_ARGS)
{
	uint64		v;

	do
	{
		utilix_random_bytes((uint8 *) &v, sizeof(v));
		v &= INT64CONST(0x7FFFFFFFFFFFFFFF);
	} while (v == 0);
	PG_RETURN_INT64((int64) v);
}

void
KeyringInit(void)
{
	on_proc_exit(keyring_exit, (Datum) 0);
}
