/*
 * encrypt.c
 *		Transparent column encryption: the encrypted types, the seal trigger,
 *		decryption on output, the blind index.
 *
 * utilix.encrypted_text, utilix.encrypted_bytea and utilix.encrypted_jsonb
 * hold either a sealed value (see envelope.c) or, transiently, the plain
 * value in its own type's format ("pending").  text, bytea and jsonb cast
 * to them without a function, so encrypt_column() changes a column's type
 * without rewriting the table, and INSERT, UPDATE, COPY and parameters of
 * the plain type need no change.  The row trigger utilix._seal_row() seals
 * every pending value with the key of the row's own tenant and the
 * column's stable id, and checks every sealed value written back (armour
 * from a dump, say) against the row's tenant and column.  A CHECK
 * constraint (utilix.is_sealed) makes sure nothing pending is ever stored.
 *
 * The output function decrypts for a context of the value's tenant whose
 * clearance reaches the column's label, and prints armour for everyone
 * else (operators, pg_dump).
 *
 * Equality is reading.  The blind index of a searchable value says which
 * values are equal, so whoever may not read a value may not compare it
 * either, by any route: the operators and functions over blind indexes
 * answer only for a session that may read the values (or a role outside
 * row level security, which reads every ciphertext anyway), the armour
 * such a reader gets has its blind index withheld, the blind index is
 * searched only with probes that utilix._blind_probe() makes for a context
 * that may read the column, and its operator classes serve utilix's own
 * blind indexes only (ddlgate.c).  Nor may such a writer write ciphertext
 * it cannot read (moving, copying or restoring a value): the seal trigger
 * takes a sealed value from it only as the row's unchanged value.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "parser/parsetree.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "parser/parse_oper.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "utilix.h"

typedef enum PlainKind
{
	KIND_TEXT = 1,
	KIND_BYTEA,
	KIND_JSONB
} PlainKind;

/* ---------- catalogs, cached per backend ---------- */

typedef struct ColumnMeta
{
	int64		column_id;
	int			label_level;	/* -1: no label */
	bool		searchable;
	PlainKind	kind;			/* the plain type of the column */
} ColumnMeta;

#define MAX_COLUMN_META 4096
static ColumnMeta column_meta[MAX_COLUMN_META];
static int	n_column_meta = 0;
static uint64 column_meta_generation = 0;

typedef struct RelMeta
{
	Oid			relid;
	int			tenant_attnum;
	int			ncols;
	int			attnums[MaxHeapAttributeNumber > 64 ? 64 : MaxHeapAttributeNumber];
	int64		column_ids[64];
	bool		searchable[64];
} RelMeta;

#define MAX_REL_META 16
static RelMeta rel_meta[MAX_REL_META];
static int	n_rel_meta = 0;
static uint64 rel_meta_generation = 0;

static char *label_levels = NULL;

/*
 * Tests only (superuser, hidden): seal searchable values in the format
 * written before blind indexes were masked, to check that such values
 * still read, match and are rewritten by reencrypt().
 */
static bool write_unmasked_bidx = false;

/* Level of a label in utilix.labels (0-based), or -2 when unknown. */
static int
label_level(const char *label)
{
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	int			i = 0;
	int			found = -2;

	if (label == NULL || label[0] == '\0')
		return -1;
	copy = pstrdup(label_levels ? label_levels : "");
	if (!SplitIdentifierString(copy, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("utilix.labels is not a comma-separated list of labels")));
	foreach(lc, names)
	{
		if (strcmp((char *) lfirst(lc), label) == 0)
		{
			found = i;
			break;
		}
		i++;
	}
	list_free(names);
	pfree(copy);
	return found;
}

/*
 * The level of a context's clearance, remembered: a scan asks for it once
 * per labelled value, and parsing utilix.labels each time would be a
 * per-row cost.  A new list of labels bumps the cache generation.
 */
static int
clearance_level(const char *clearance)
{
	static char last[64];
	static int	last_level = -2;
	static uint64 last_generation = 0;

	if (last_generation != utilix_cache_generation || strcmp(last, clearance) != 0)
	{
		last_level = label_level(clearance);
		strlcpy(last, clearance, sizeof(last));
		last_generation = utilix_cache_generation;
	}
	return last_level;
}

static bool
check_labels(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitIdentifierString(copy, ',', &names) && names != NIL;

	if (!ok)
		GUC_check_errdetail("utilix.labels must list labels from lowest to highest, separated by commas.");
	list_free(names);
	pfree(copy);
	return ok;
}

/* Label levels are cached with the column metadata: a new list refreshes them. */
static void
assign_labels(const char *newval, void *extra)
{
	utilix_cache_generation++;
}

static void
load_column_meta(void)
{
	Oid			save_userid;
	int			save_sec;

	n_column_meta = 0;
	column_meta_generation = utilix_cache_generation;
	if (!OidIsValid(utilix_catalog_relid("encrypted_column")))
		return;
	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT column_id, label, searchable, plain_type FROM utilix.encrypted_column",
						true, MAX_COLUMN_META) != SPI_OK_SELECT)
			elog(ERROR, "could not read utilix.encrypted_column");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			char	   *label = SPI_getvalue(tup, desc, 2);

			column_meta[i].column_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			column_meta[i].label_level = label_level(label);
			column_meta[i].searchable = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
			{
				char	   *pt = SPI_getvalue(tup, desc, 4);

				column_meta[i].kind = (pt && strcmp(pt, "bytea") == 0) ? KIND_BYTEA :
					(pt && strcmp(pt, "jsonb") == 0) ? KIND_JSONB : KIND_TEXT;
			}
			n_column_meta++;
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();
}

static const ColumnMeta *
get_column_meta(int64 column_id)
{
	static int	last = 0;

	if (column_meta_generation != utilix_cache_generation)
		load_column_meta();
	if (last < n_column_meta && column_meta[last].column_id == column_id)
		return &column_meta[last];
	for (int i = 0; i < n_column_meta; i++)
		if (column_meta[i].column_id == column_id)
		{
			last = i;
			return &column_meta[i];
		}
	return NULL;
}

static bool
is_encrypted_type(Oid typid)
{
	static Oid	types[3];
	static uint64 gen = 0;

	if (gen != utilix_cache_generation || !OidIsValid(types[0]))
	{
		Oid			nsp = get_namespace_oid("utilix", true);

		types[0] = OidIsValid(nsp) ? GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
													 CStringGetDatum("encrypted_text"), ObjectIdGetDatum(nsp)) : InvalidOid;
		types[1] = OidIsValid(nsp) ? GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
													 CStringGetDatum("encrypted_bytea"), ObjectIdGetDatum(nsp)) : InvalidOid;
		types[2] = OidIsValid(nsp) ? GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
													 CStringGetDatum("encrypted_jsonb"), ObjectIdGetDatum(nsp)) : InvalidOid;
		gen = utilix_cache_generation;
	}
	return OidIsValid(typid) && (typid == types[0] || typid == types[1] || typid == types[2]);
}

/* The tenant column and the encrypted columns of a table, by attribute number. */
static const RelMeta *
get_rel_meta(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	RelMeta    *m;
	Oid			save_userid;
	int			save_sec;
	Oid			types[2] = {NAMEOID, NAMEOID};
	Datum		values[2];
	Oid			parent;

	if (rel_meta_generation != utilix_cache_generation)
	{
		n_rel_meta = 0;
		rel_meta_generation = utilix_cache_generation;
	}
	for (int i = 0; i < n_rel_meta; i++)
		if (rel_meta[i].relid == relid)
			return &rel_meta[i];

	if (n_rel_meta == MAX_REL_META)
		n_rel_meta = 0;
	m = &rel_meta[n_rel_meta];
	memset(m, 0, sizeof(*m));
	m->relid = relid;

	/* a partition's columns are registered on its partitioned root */
	parent = relid;
	while (get_rel_relispartition(parent))
		parent = get_partition_parent(parent, true);
	values[0] = CStringGetDatum(get_namespace_name(get_rel_namespace(parent)));
	values[1] = CStringGetDatum(get_rel_name(parent));
	(void) utilix_catalog_relid("encrypted_column");
	(void) utilix_catalog_relid("protected_table");

	utilix_begin_internal(&save_userid, &save_sec);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT e.column_name::pg_catalog.text, e.column_id, e.searchable, "
								  "p.tenant_column::pg_catalog.text "
								  "FROM utilix.encrypted_column e JOIN utilix.protected_table p "
								  "ON e.schema_name OPERATOR(pg_catalog.=) p.schema_name "
								  "AND e.table_name OPERATOR(pg_catalog.=) p.table_name "
								  "WHERE e.schema_name OPERATOR(pg_catalog.=) $1 "
								  "AND e.table_name OPERATOR(pg_catalog.=) $2",
								  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read utilix.encrypted_column");
		for (uint64 i = 0; i < SPI_processed && m->ncols < 64; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	sdesc = SPI_tuptable->tupdesc;
			bool		isnull;
			char	   *colname = SPI_getvalue(tup, sdesc, 1);
			char	   *tenantcol = SPI_getvalue(tup, sdesc, 4);
			int			attnum;

			if (colname == NULL || tenantcol == NULL)
				continue;
			attnum = SPI_fnumber(desc, colname);
			if (attnum <= 0)
				continue;
			m->attnums[m->ncols] = attnum;
			m->column_ids[m->ncols] = DatumGetInt64(SPI_getbinval(tup, sdesc, 2, &isnull));
			m->searchable[m->ncols] = DatumGetBool(SPI_getbinval(tup, sdesc, 3, &isnull));
			m->ncols++;
			m->tenant_attnum = SPI_fnumber(desc, tenantcol);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		utilix_end_internal(save_userid, save_sec);
	}
	PG_END_TRY();

	/* every column of an encrypted type must be registered, or we refuse */
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		bool		known = false;

		if (att->attisdropped || !is_encrypted_type(att->atttypid))
			continue;
		for (int i = 0; i < m->ncols; i++)
			known |= (m->attnums[i] == att->attnum);
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of table \"%s\" has an encrypted type but is not an encrypted column",
							NameStr(att->attname), RelationGetRelationName(rel)),
					 errhint("Use utilix.encrypt_column() to encrypt a column.")));
	}
	if (m->ncols > 0 && m->tenant_attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has encrypted columns but no tenant column",
						RelationGetRelationName(rel))));
	n_rel_meta++;
	return m;
}

/* ---------- sealing and opening ---------- */

static void
aad_check_len(size_t len)
{
	if (len > (size_t) MaxAllocSize - 128)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large to encrypt")));
}

/* Seal plaintext bytes into a new sealed datum (varlena). */
static Datum
seal_bytes(int64 tenant, int64 column_id, bool searchable, const uint8 *pt, size_t len)
{
	uint8		bidx[UTILIX_BIDX_LEN];
	uint8		nonce[UTILIX_NONCE_LEN];
	UtilixTenantKey *key;
	size_t		hlen = utilix_envelope_header_len(searchable);
	size_t		total;
	bytea	   *out;
	uint8	   *p;

	aad_check_len(len);
	/* creates the tenant's keys on first use */
	key = utilix_active_tenant_key(tenant);
	utilix_nonce(nonce);
	if (searchable)
	{
		uint32		version = key->version;
		uint8		mask[UTILIX_BIDX_LEN];

		/* stored masked under the value's own nonce (envelope.c) */
		utilix_blind_index(tenant, column_id, pt, len, bidx);
		if (!write_unmasked_bidx)
		{
			(void) utilix_blind_mask(tenant, column_id, nonce, mask, false);
			for (int i = 0; i < UTILIX_BIDX_LEN; i++)
				bidx[i] ^= mask[i];
		}
		/* the blind-index lookup may have refreshed the key cache */
		key = utilix_tenant_key(tenant, version, false);
	}
	total = hlen + UTILIX_NONCE_LEN + UTILIX_TAG_LEN + len;
	out = palloc(VARHDRSZ + total);
	SET_VARSIZE(out, VARHDRSZ + total);
	p = (uint8 *) VARDATA(out);
	(void) utilix_envelope_write_header(p, tenant, column_id, key->version,
										searchable ? bidx : NULL,
										searchable && !write_unmasked_bidx);
	memcpy(p + hlen, nonce, UTILIX_NONCE_LEN);
	utilix_aead_seal(key->aead, p + hlen, p, hlen, pt, len,
					 p + hlen + UTILIX_NONCE_LEN + UTILIX_TAG_LEN,
					 p + hlen + UTILIX_NONCE_LEN);
	return PointerGetDatum(out);
}

/*
 * Open a parsed envelope into a new varlena (the plain type's datum).
 * Returns NULL when the tenant's key version no longer exists (shredded).
 * Raises 22000-family errors for values that do not authenticate.
 */
static struct varlena *open_envelope_ext(const UtilixEnvelope *env, bool quiet);

static struct varlena *
open_envelope(const UtilixEnvelope *env)
{
	return open_envelope_ext(env, false);
}

/* quiet: a value that does not authenticate gives NULL instead of an error */
static struct varlena *
open_envelope_ext(const UtilixEnvelope *env, bool quiet)
{
	static int64 last_tenant = 0;
	static uint32 last_version = 0;
	static uint64 last_generation = 0;
	static UtilixTenantKey *last_key = NULL;
	UtilixTenantKey *key;
	struct varlena *out;

	/* a scan opens value after value under the same key: skip the lookup */
	if (last_key != NULL && last_tenant == env->tenant && last_version == env->key_version &&
		last_generation == utilix_cache_generation)
		key = last_key;
	else
	{
		key = utilix_tenant_key(env->tenant, env->key_version, true);
		last_key = key;
		last_tenant = env->tenant;
		last_version = env->key_version;
		last_generation = utilix_cache_generation;
	}

	if (key == NULL)
		return NULL;
	out = palloc(VARHDRSZ + env->ct_len);
	SET_VARSIZE(out, VARHDRSZ + env->ct_len);
	if (!utilix_aead_open(key->aead, env->nonce, env->header, env->header_len,
						  env->ct, env->ct_len, env->tag, (uint8 *) VARDATA(out)))
	{
		pfree(out);
		if (quiet)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("encrypted value does not authenticate"),
				 errdetail("The value of column id " INT64_FORMAT " of tenant " INT64_FORMAT
						   " was altered, truncated or moved.", env->column_id, env->tenant)));
	}
	return out;
}

static void
parse_or_fail(const uint8 *data, size_t len, UtilixEnvelope *env)
{
	if (!utilix_envelope_parse(data, len, env))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("encrypted value is malformed")));
}

/*
 * May the current context read values of this tenant and column in
 * plaintext (or probe them through the blind index)?  Its tenant, the read
 * right, and a clearance at or above the column's label.
 */
static bool
may_read_column(const UtilixContext *ctx, int64 tenant, int64 column_id)
{
	const ColumnMeta *meta;

	if (ctx == NULL || ctx->tenant != tenant ||
		!utilix_context_has_right(ctx, "read"))
		return false;
	meta = get_column_meta(column_id);
	if (meta == NULL)
		return false;
	if (meta->label_level >= 0 || meta->label_level == -2)
	{
		int			clearance = clearance_level(ctx->clearance);

		if (meta->label_level == -2 || clearance < meta->label_level)
			return false;
	}
	return true;
}

static bool
may_read(const UtilixEnvelope *env)
{
	return may_read_column(utilix_context_for_read(), env->tenant, env->column_id);
}

/*
 * Is the current role outside row level security: a superuser or a role
 * with BYPASSRLS?  Such roles read every tenant's stored ciphertext (and
 * pg_dump, which runs as one, must carry values whole, blind index and
 * all).  Remembered for the last role asked about; any change of a role's
 * attributes forgets it.
 */
static Oid	outside_rls_role = InvalidOid;
static bool outside_rls_answer = false;
static bool outside_rls_watched = false;

static void
outside_rls_forget(Datum arg, int cacheid, uint32 hashvalue)
{
	outside_rls_role = InvalidOid;
}

static bool
role_outside_rls(void)
{
	/* during utilix's COPY FROM as the owner: the caller, not the owner */
	Oid			role = utilix_acting_writer();

	if (!outside_rls_watched)
	{
		CacheRegisterSyscacheCallback(AUTHOID, outside_rls_forget, (Datum) 0);
		outside_rls_watched = true;
	}
	if (role != outside_rls_role)
	{
		outside_rls_answer = has_bypassrls_privilege(role);
		outside_rls_role = role;
	}
	return outside_rls_answer;
}

/*
 * May the session learn which values of this tenant and column are equal:
 * compare them, hash their blind index, see it in their armour?  Equality
 * is reading: exactly when it may read them, or when its role is outside
 * row level security.  Cheap: the context's checks are made once per
 * statement (context.c), the column's label comes from the cached catalog,
 * the role's answer is remembered.
 */
static bool
may_compare(int64 tenant, int64 column_id)
{
	return may_read_column(utilix_context_for_read(), tenant, column_id) ||
		role_outside_rls();
}

/*
 * A writer that may write any ciphertext of its tables: a role outside row
 * level security (a restore, a superuser's repair), or utilix's own
 * maintenance acting as the table's owner (utilix._exec_as_owner: sealing
 * a column, re-sealing under a new key).
 */
static bool
writer_unrestricted(void)
{
	return InNoForceRLSOperation() || role_outside_rls();
}

/*
 * The armour of a stored value for a session that may not read it: the
 * blind index of a searchable value is withheld unless the session may
 * compare its values (see utilix_envelope_withhold).  withhold, when not
 * NULL, is the parsed value readable_plain() found the session may not
 * compare; NULL: armour of the value as it is.
 */
static char *
armour_for_reader(struct varlena *v, const UtilixEnvelope *withhold)
{
	const uint8 *data = (const uint8 *) VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);

	if (withhold != NULL)
	{
		uint8	   *withheld = utilix_envelope_withhold(data, len, withhold);
		char	   *out = utilix_armour(withheld, len);

		pfree(withheld);
		return out;
	}
	return utilix_armour(data, len);
}

/*
 * The plain datum of a stored value for the current context, or NULL
 * (armour) when the context may not read it.
 */
static struct varlena *
readable_plain(struct varlena *v, PlainKind kind, bool *sealed, UtilixEnvelope *withhold, bool *withheld)
{
	const uint8 *data = (const uint8 *) VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	UtilixEnvelope env;
	const ColumnMeta *meta;
	struct varlena *plain;

	*withheld = false;
	*sealed = utilix_is_sealed(data, len);
	if (!*sealed)
	{
		/* a blind-index probe is no value: it never reads as one */
		if (utilix_is_probe(data, len))
			return NULL;
		utilix_note_plaintext();
		return v;				/* pending: the caller's own plaintext */
	}
	if (!utilix_envelope_parse(data, len, &env))
	{
		/* a withheld form (typed in from armour) opens for no one */
		if (utilix_envelope_parse_withheld(data, len, &env))
			return NULL;
		parse_or_fail(data, len, &env);
	}
	if (!may_read(&env))
	{
		/* its armour withholds the blind index, unless the role reads every ciphertext */
		if (env.has_bidx && !role_outside_rls())
		{
			*withhold = env;
			*withheld = true;
		}
		return NULL;
	}

	/*
	 * The armour of a bytea column's value typed in as encrypted_jsonb would
	 * decrypt to bytes that are no jsonb: the column's plain type, not the
	 * type the value arrived in, says what the plaintext is.
	 */
	meta = get_column_meta(env.column_id);
	if (meta == NULL)
		return NULL;
	/* authenticated first: the column id is only trusted once the value opens */
	plain = open_envelope(&env);
	if (plain != NULL)
		utilix_note_plaintext();
	if (plain != NULL && meta->kind != kind)
	{
		utilix_wipe(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("this ciphertext belongs to a %s column and cannot be read as encrypted %s",
						meta->kind == KIND_TEXT ? "text" : meta->kind == KIND_BYTEA ? "bytea" : "jsonb",
						kind == KIND_TEXT ? "text" : kind == KIND_BYTEA ? "bytea" : "jsonb")));
	}
	return plain;
}

/* ---------- type input and output ---------- */

static Datum
encrypted_in(char *str, PlainKind kind)
{
	size_t		len = strlen(str);
	uint8	   *sealed;
	size_t		slen;

	utilix_require_preload();
	if (utilix_has_armour_prefix(str, len))
	{
		bytea	   *out;

		if (!utilix_dearmour(str, len, &sealed, &slen) &&
			!utilix_dearmour_withheld(str, len, &sealed, &slen))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("malformed armoured ciphertext"),
					 errhint("Armoured values start with \"utxe1:\" and come from utilix's output.")));
		out = palloc(VARHDRSZ + slen);
		SET_VARSIZE(out, VARHDRSZ + slen);
		memcpy(VARDATA(out), sealed, slen);
		return PointerGetDatum(out);
	}
	/* plaintext from here on: errors of this statement are redacted in the log */
	utilix_note_plaintext();
	if (kind == KIND_TEXT)
		return PointerGetDatum(cstring_to_text(str));

	/*
	 * bytea's and jsonb's own errors quote the input (the plaintext) in their
	 * detail and context: replace them with one that does not.
	 */
	{
		MemoryContext cxt = CurrentMemoryContext;
		volatile Datum result = (Datum) 0;
		volatile bool failed = false;

		PG_TRY();
		{
			if (kind == KIND_BYTEA)
				result = DirectFunctionCall1(byteain, CStringGetDatum(str));
			else
				result = DirectFunctionCall1(jsonb_in, CStringGetDatum(str));
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			failed = true;
		}
		PG_END_TRY();
		if (failed)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for an encrypted %s value",
							kind == KIND_BYTEA ? "bytea" : "jsonb")));
		return result;
	}
}

static char *
encrypted_out(struct varlena *v, PlainKind kind)
{
	bool		sealed;
	UtilixEnvelope env;
	bool		withheld;
	struct varlena *plain = readable_plain(v, kind, &sealed, &env, &withheld);

	if (plain == NULL)
		return armour_for_reader(v, withheld ? &env : NULL);
	switch (kind)
	{
		case KIND_TEXT:
			return text_to_cstring((text *) plain);
		case KIND_BYTEA:
			return DatumGetCString(DirectFunctionCall1(byteaout, PointerGetDatum(plain)));
		case KIND_JSONB:
			return DatumGetCString(DirectFunctionCall1(jsonb_out, PointerGetDatum(plain)));
	}
	return NULL;
}

#define DEFINE_IO(suffix, kind) \
PG_FUNCTION_INFO_V1(utilix_enc_in_##suffix); \
Datum utilix_enc_in_##suffix(PG_FUNCTION_ARGS) \
{ return encrypted_in(PG_GETARG_CSTRING(0), kind); } \
PG_FUNCTION_INFO_V1(utilix_enc_out_##suffix); \
Datum utilix_enc_out_##suffix(PG_FUNCTION_ARGS) \
{ PG_RETURN_CSTRING(encrypted_out(PG_GETARG_VARLENA_PP(0), kind)); }

DEFINE_IO(text, KIND_TEXT)
DEFINE_IO(bytea, KIND_BYTEA)
DEFINE_IO(jsonb, KIND_JSONB)

/*
 * Cast to the plain type (implicit): the plaintext for a context that may
 * read it; otherwise the armour (text) or NULL (bytea, jsonb).
 */
PG_FUNCTION_INFO_V1(utilix_decrypt_value);
Datum
utilix_decrypt_value(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	bool		sealed;
	Oid			rettype = get_fn_expr_rettype(fcinfo->flinfo);
	UtilixEnvelope env;
	bool		withheld;
	struct varlena *plain = readable_plain(v, rettype == BYTEAOID ? KIND_BYTEA :
										   rettype == JSONBOID ? KIND_JSONB : KIND_TEXT,
										   &sealed, &env, &withheld);

	if (plain != NULL)
		PG_RETURN_POINTER(plain);
	if (get_fn_expr_rettype(fcinfo->flinfo) == TEXTOID)
		PG_RETURN_TEXT_P(cstring_to_text(armour_for_reader(v, withheld ? &env : NULL)));
	PG_RETURN_NULL();
}

/* ---------- operators ---------- */

/* encrypted = plain: decrypts (slow) unless answered by a blind index. */
PG_FUNCTION_INFO_V1(utilix_enc_eq_plain);
Datum
utilix_enc_eq_plain(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	struct varlena *p = PG_GETARG_VARLENA_PP(1);
	const uint8 *data = (const uint8 *) VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	UtilixEnvelope env;
	bool		sealed = utilix_is_sealed(data, len);
	struct varlena *plain = v;
	bool		eq;

	/* leakproof: no error and no decryption for values the context may not read */
	if (sealed)
	{
		if (!utilix_envelope_parse(data, len, &env) || !may_read(&env))
			PG_RETURN_BOOL(false);
		plain = open_envelope_ext(&env, true);
		if (plain == NULL)
			PG_RETURN_BOOL(false);
		utilix_note_plaintext();
	}
	eq = VARSIZE_ANY_EXHDR(plain) == VARSIZE_ANY_EXHDR(p) &&
		memcmp(VARDATA_ANY(plain), VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p)) == 0;
	if (sealed)
	{
		utilix_wipe(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
		pfree(plain);
	}
	PG_RETURN_BOOL(eq);
}

/* A stored searchable value, parsed; false for anything else. */
static bool
searchable_envelope(struct varlena *v, UtilixEnvelope *env)
{
	return utilix_envelope_parse((const uint8 *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), env) &&
		env->has_bidx;
}

/*
 * The blind index of a parsed searchable value: unmasked (one AES block of its
 * nonce) unless it was written before masking.  False when its tenant's
 * blind root is gone and quiet (out is then the stored bytes).
 */
static bool
value_bidx(const UtilixEnvelope *env, uint8 out[UTILIX_BIDX_LEN], bool quiet)
{
	uint8		mask[UTILIX_BIDX_LEN];
	bool		ok = true;

	if (env->masked)
		ok = utilix_blind_mask(env->tenant, env->column_id, env->nonce, mask, quiet);
	else
		memset(mask, 0, sizeof(mask));
	for (int i = 0; i < UTILIX_BIDX_LEN; i++)
		out[i] = env->bidx[i] ^ mask[i];
	return ok;
}

/*
 * Called by SQL (an expression: a query, a default, an index expression)
 * rather than by the hash index access method maintaining or searching an
 * index?  The access method calls support functions with no expression, or
 * with a Const holding the operator class's options (index_getprocinfo).
 */
static bool
called_by_sql(FunctionCallInfo fcinfo)
{
	Node	   *expr = fcinfo->flinfo ? fcinfo->flinfo->fn_expr : NULL;

	return expr != NULL && !IsA(expr, Const);
}

/*
 * utilix.=# (encrypted, encrypted), utilix._bidx_eq: do two stored values
 * of one tenant's column hold the same plaintext?  Equality is reading: it
 * answers only for a session that may read them (may_compare), and false
 * otherwise.  LEAKPROOF and never raises: row level security may let the
 * planner run it on rows the session cannot see.
 */
PG_FUNCTION_INFO_V1(utilix_bidx_eq);
Datum
utilix_bidx_eq(PG_FUNCTION_ARGS)
{
	UtilixEnvelope a,
				b;
	uint8		ba[UTILIX_BIDX_LEN],
				bb[UTILIX_BIDX_LEN];

	if (!searchable_envelope(PG_GETARG_VARLENA_PP(0), &a) ||
		!searchable_envelope(PG_GETARG_VARLENA_PP(1), &b))
		PG_RETURN_BOOL(false);
	if (a.tenant != b.tenant || a.column_id != b.column_id ||
		!may_compare(a.tenant, a.column_id))
		PG_RETURN_BOOL(false);
	if (!value_bidx(&a, ba, true) || !value_bidx(&b, bb, true))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(memcmp(ba, bb, UTILIX_BIDX_LEN) == 0);
}

/*
 * utilix.=# (encrypted, utilix.blind_probe), utilix._bidx_match: the blind
 * index's own operator, the only one in its operator family, so that the
 * index is searched with probes only.  As _bidx_eq: false unless the
 * session may compare the value.
 */
PG_FUNCTION_INFO_V1(utilix_bidx_match);
Datum
utilix_bidx_match(PG_FUNCTION_ARGS)
{
	struct varlena *p = PG_GETARG_VARLENA_PP(1);
	UtilixEnvelope env;
	int64		tenant,
				column;
	const uint8 *bidx;
	uint8		vb[UTILIX_BIDX_LEN];

	if (!searchable_envelope(PG_GETARG_VARLENA_PP(0), &env) ||
		!utilix_is_probe((const uint8 *) VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p)))
		PG_RETURN_BOOL(false);
	utilix_probe_parse((const uint8 *) VARDATA_ANY(p), &tenant, &column, &bidx);
	if (env.tenant != tenant || env.column_id != column ||
		!may_compare(env.tenant, env.column_id))
		PG_RETURN_BOOL(false);
	if (!value_bidx(&env, vb, true))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(memcmp(vb, bidx, UTILIX_BIDX_LEN) == 0);
}

/*
 * utilix._bidx_hash(encrypted): the hash of a stored value's blind index,
 * the support function of the blind index.  The access method hashes every
 * value it indexes, whoever writes it; the operator classes serve utilix's
 * blind indexes only (ddlgate.c), and are searched with probes only.
 * Called from SQL, the hash would say which values are equal: it needs a
 * session that may compare them (42501 otherwise, since no constant
 * answer could stand in for it in an expression).
 */
PG_FUNCTION_INFO_V1(utilix_bidx_hash);
Datum
utilix_bidx_hash(PG_FUNCTION_ARGS)
{
	UtilixEnvelope env;

	if (!searchable_envelope(PG_GETARG_VARLENA_PP(0), &env))
		PG_RETURN_INT32(0);
	if (called_by_sql(fcinfo) && !may_compare(env.tenant, env.column_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to compare values of encrypted column id " INT64_FORMAT,
						env.column_id),
				 errdetail("The blind index of a value says which values are equal: it needs a context of the value's tenant that may read the column (its clearance reaches the column's label)."),
				 errhint("Compare with utilix.= and a plain value, which answers for the values the context may read.")));

	/*
	 * The hash of the blind index itself, so that masked and older values
	 * of equal plaintext share a bucket.  A value whose tenant's blind root
	 * was destroyed hashes its stored bytes: no probe can be made for it.
	 */
	{
		uint8		b[UTILIX_BIDX_LEN];

		(void) value_bidx(&env, b, true);
		return hash_any(b, UTILIX_BIDX_LEN);
	}
}

/* utilix._bidx_hash(utilix.blind_probe): the hash of a probe, for index searches. */
PG_FUNCTION_INFO_V1(utilix_bidx_probe_hash);
Datum
utilix_bidx_probe_hash(PG_FUNCTION_ARGS)
{
	struct varlena *p = PG_GETARG_VARLENA_PP(0);
	int64		tenant,
				column;
	const uint8 *bidx;

	if (!utilix_is_probe((const uint8 *) VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p)))
		PG_RETURN_INT32(0);
	utilix_probe_parse((const uint8 *) VARDATA_ANY(p), &tenant, &column, &bidx);
	return hash_any(bidx, UTILIX_BIDX_LEN);
}

/*
 * utilix.blind_probe has no text form: a probe is made by
 * utilix._blind_probe() for a context that may read the column, never
 * typed in (which would let whoever knows a blind index search for it).
 */
PG_FUNCTION_INFO_V1(utilix_blind_probe_in);
Datum
utilix_blind_probe_in(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("a blind-index probe cannot be typed in"),
			 errhint("utilix._blind_probe() makes probes; col OPERATOR(utilix.=) value uses it.")));
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(utilix_blind_probe_out);
Datum
utilix_blind_probe_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(pstrdup("(blind-index probe)"));
}

/* utilix._blind_probe(plain, column_id): what the blind index is searched for. */
PG_FUNCTION_INFO_V1(utilix_blind_probe);
Datum
utilix_blind_probe(PG_FUNCTION_ARGS)
{
	struct varlena *p = PG_GETARG_VARLENA_PP(0);
	int64		column_id = PG_GETARG_INT64(1);
	const UtilixContext *ctx = utilix_context_for_read();
	uint8		bidx[UTILIX_BIDX_LEN] = {0};
	bytea	   *out = palloc(VARHDRSZ + UTILIX_PROBE_LEN);
	int64		tenant = 0;

	/*
	 * Without a usable context, or one that may not read the column, the
	 * probe names no tenant and matches nothing: a probe answers the same
	 * question as decrypting would.
	 */
	utilix_note_plaintext();
	if (ctx != NULL && may_read_column(ctx, ctx->tenant, column_id))
	{
		tenant = ctx->tenant;
		utilix_blind_index(tenant, column_id, (const uint8 *) VARDATA_ANY(p),
						   VARSIZE_ANY_EXHDR(p), bidx);
	}
	SET_VARSIZE(out, VARHDRSZ + UTILIX_PROBE_LEN);
	utilix_probe_write((uint8 *) VARDATA(out), tenant, column_id, bidx);
	PG_RETURN_POINTER(out);
}

/*
 * Planner support for "encrypted = plain": when the column has a blind
 * index, add the index condition  col =# utilix._blind_probe(plain, id)
 * (lossy: the original comparison is rechecked on the rows found).
 */
PG_FUNCTION_INFO_V1(utilix_enc_eq_support);
Datum
utilix_enc_eq_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestIndexCondition *req;
	OpExpr	   *clause;
	RangeTblEntry *rte;
	AttrNumber	attnum;
	Oid			optype;
	Oid			eqop;
	Oid			probefn;
	Oid			probetype;
	Oid			argtypes[2];
	List	   *fname;
	char	   *colname;
	Datum		d;
	Oid			restype;
	volatile bool found = false;
	volatile int64 column_id = 0;
	Expr	   *rhs;

	if (!IsA(rawreq, SupportRequestIndexCondition))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestIndexCondition *) rawreq;
	if (!is_opclause(req->node) || req->indexarg != 0)
		PG_RETURN_POINTER(NULL);
	clause = (OpExpr *) req->node;
	if (list_length(clause->args) != 2)
		PG_RETURN_POINTER(NULL);
	optype = exprType(linitial(clause->args));
	{
		HeapTuple	ftup = SearchSysCache1(OPFAMILYOID, ObjectIdGetDatum(req->opfamily));
		bool		ours = false;

		if (HeapTupleIsValid(ftup))
		{
			Form_pg_opfamily fam = (Form_pg_opfamily) GETSTRUCT(ftup);

			ours = fam->opfmethod == HASH_AM_OID &&
				fam->opfnamespace == get_namespace_oid("utilix", true) &&
				strstr(NameStr(fam->opfname), "_blind_ops") != NULL;
			ReleaseSysCache(ftup);
		}
		if (!ours)
			PG_RETURN_POINTER(NULL);
	}
	attnum = req->index->indexkeys[req->indexcol];
	if (attnum <= 0)
		PG_RETURN_POINTER(NULL);
	rte = planner_rt_fetch(req->index->rel->relid, req->root);
	colname = get_attname(rte->relid, attnum, true);
	if (colname == NULL)
		PG_RETURN_POINTER(NULL);

	/* the column's stable id */
	{
		Oid			save_userid;
		int			save_sec;
		Oid			types[3] = {NAMEOID, NAMEOID, NAMEOID};
		Datum		values[3];
		Oid			parent = rte->relid;

		while (get_rel_relispartition(parent))
			parent = get_partition_parent(parent, true);
		values[0] = CStringGetDatum(get_namespace_name(get_rel_namespace(parent)));
		values[1] = CStringGetDatum(get_rel_name(parent));
		values[2] = CStringGetDatum(colname);
		utilix_begin_internal(&save_userid, &save_sec);
		PG_TRY();
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (SPI_execute_with_args("SELECT column_id FROM utilix.encrypted_column "
									  "WHERE schema_name OPERATOR(pg_catalog.=) $1 "
									  "AND table_name OPERATOR(pg_catalog.=) $2 "
									  "AND column_name OPERATOR(pg_catalog.=) $3 AND searchable",
									  3, types, values, NULL, true, 1) == SPI_OK_SELECT &&
				SPI_processed == 1)
			{
				bool		isnull;

				d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
				if (!isnull)
				{
					column_id = DatumGetInt64(d);
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
	}
	(void) restype;
	if (!found)
		PG_RETURN_POINTER(NULL);

	rhs = (Expr *) lsecond(clause->args);
	argtypes[0] = exprType((Node *) rhs);
	argtypes[1] = INT8OID;
	fname = list_make2(makeString("utilix"), makeString("_blind_probe"));
	probefn = LookupFuncName(fname, 2, argtypes, true);
	if (!OidIsValid(probefn))
		PG_RETURN_POINTER(NULL);
	/* the blind index's operator: (encrypted type, utilix.blind_probe) */
	probetype = get_func_rettype(probefn);
	eqop = get_opfamily_member(req->opfamily, optype, probetype, 1);
	if (!OidIsValid(eqop))
		PG_RETURN_POINTER(NULL);
	req->lossy = true;
	PG_RETURN_POINTER(list_make1(make_opclause(eqop, BOOLOID, false,
											   (Expr *) linitial(clause->args),
											   (Expr *) makeFuncExpr(probefn, probetype,
																	 list_make2(rhs,
																				makeConst(INT8OID, -1, InvalidOid, 8,
																						  Int64GetDatum(column_id), false, true)),
																	 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL),
											   InvalidOid, InvalidOid)));
}

/* ---------- the seal trigger ---------- */

/*
 * What one call of the seal trigger leaves for the next one, and only the
 * next one, in the same statement:
 *
 *  - the values it sealed from plaintext.  INSERT ... ON CONFLICT DO UPDATE
 *    SET col = EXCLUDED.col seals the proposed row's value in the BEFORE
 *    INSERT, then writes it in the BEFORE UPDATE of the existing row: a
 *    value the writer sealed itself from its own plaintext a moment ago.
 *
 *  - the unchanged values of a row that an UPDATE may move to another
 *    partition.  The row is deleted from its partition and inserted into
 *    the other one: the trigger sees its values first in a BEFORE UPDATE
 *    and then, with no old row, in the destination's BEFORE INSERT, taken
 *    once the source row shows that this transaction moved it.
 *
 * Only writers that may not write those values' ciphertext otherwise need
 * the note (see utilix_seal_row).  A note the next call does not take is
 * gone.
 */
#define MAX_NOTED_VALUES 64

typedef struct NotedValue
{
	int64		column_id;
	uint8		nonce[UTILIX_NONCE_LEN];
} NotedValue;

typedef struct CallNote
{
	bool		valid;
	LocalTransactionId lxid;
	TimestampTz stmt;
	int			nsealed;
	NotedValue	sealed[MAX_NOTED_VALUES];
	Oid			relid;			/* the source partition of a move */
	ItemPointerData tid;		/* the source row */
	int			nmoved;
	NotedValue	moved[MAX_NOTED_VALUES];
} CallNote;

/* two notes, used in turn: the previous call's, and this call's */
static CallNote call_notes[2];
static int	call_note_current = 0;

static void
note_value(NotedValue *list, int *n, int64 column_id, const uint8 *nonce)
{
	if (*n >= MAX_NOTED_VALUES)
		return;
	list[*n].column_id = column_id;
	memcpy(list[*n].nonce, nonce, UTILIX_NONCE_LEN);
	(*n)++;
}

static bool
noted(const NotedValue *list, int n, const UtilixEnvelope *env)
{
	for (int i = 0; i < n; i++)
		if (list[i].column_id == env->column_id &&
			memcmp(list[i].nonce, env->nonce, UTILIX_NONCE_LEN) == 0)
			return true;
	return false;
}

/* Has this transaction moved the row at tid of relid to another partition? */
static bool
source_row_moved(Oid relid, const ItemPointerData *tid)
{
	Relation	r;
	HeapTupleData tup;
	Buffer		buf;
	bool		moved = false;

	r = try_table_open(relid, AccessShareLock);
	if (r == NULL)
		return false;
	if (r->rd_tableam == GetHeapamTableAmRoutine())
	{
		tup.t_self = *tid;
		if (heap_fetch(r, SnapshotAny, &tup, &buf, true))
		{
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			moved = HeapTupleHeaderIndicatesMovedPartitions(tup.t_data) &&
				TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmax(tup.t_data));
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		}
		if (BufferIsValid(buf))
			ReleaseBuffer(buf);
	}
	table_close(r, AccessShareLock);
	return moved;
}

/*
 * utilix._seal_row(): BEFORE INSERT OR UPDATE row trigger on every table
 * with encrypted columns.  Pending values are sealed under the row's tenant;
 * sealed values are kept when unchanged by an UPDATE, and otherwise
 * verified to belong to this tenant and column.
 *
 * Ciphertext is written by whoever may read it: a sealed value other than
 * the row's own unchanged one (copied from another row, restored from an
 * earlier read, moved from a table of the writer's) is taken only from a
 * context that may read it, a role outside row level security, or utilix's
 * maintenance (42501 otherwise).  A writer below a column's label may write
 * plaintext there, or leave the value as it is, but cannot move, copy or
 * restore a value it cannot read.  The withheld form of a value (what such
 * a reader gets as armour) is taken back only as the unchanged value of the
 * row it was read from.
 *
 * Why the row is not bound into the ciphertext (its key in the associated
 * data): a value must open from its bytes alone (the output function sees
 * no row), so the key would have to be stored in the header, checked here
 * against the row, and every value resealed when its key changes (UPDATE
 * of the key, ON UPDATE CASCADE, a move to another partition); tables
 * without a primary key could not be bound at all; the format would change.
 * And it would not stop a restore: an earlier value of the same row carries
 * the same key.  The rule above stops moves, copies and restores alike, for
 * exactly the writers that cannot read the value, and costs nothing where
 * plaintext is written.  Whoever may read a value may also write it as
 * plaintext, so letting it write the ciphertext gives it nothing more.
 */
PG_FUNCTION_INFO_V1(utilix_seal_row);
Datum
utilix_seal_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tuple;
	HeapTuple	oldtuple = NULL;
	const RelMeta *m;
	Datum		tenant_d;
	bool		isnull;
	int64		tenant;
	int			natts;
	int		   *cols;
	Datum	   *vals;
	bool	   *nulls;
	int			nrepl = 0;
	const CallNote *prev;
	CallNote   *note;
	bool		prev_ok;
	int			unrestricted = -1;	/* writer_unrestricted(), asked once */

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("utilix._seal_row() must be a BEFORE INSERT OR UPDATE row trigger")));
	utilix_require_preload();
	/* the previous call's note is for this call only; this call leaves its own */
	prev = &call_notes[call_note_current];
	call_note_current ^= 1;
	note = &call_notes[call_note_current];
	prev_ok = prev->valid && prev->lxid == MyProc->lxid &&
		prev->stmt == GetCurrentStatementStartTimestamp();
	note->valid = false;
	note->nsealed = 0;
	note->nmoved = 0;
	note->relid = InvalidOid;
	/* COPY FROM runs as the owner without row level security only until its first row */
	utilix_copy_end_noforce();
	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		tuple = td->tg_newtuple;
		oldtuple = td->tg_trigtuple;
	}
	else
		tuple = td->tg_trigtuple;

	m = get_rel_meta(rel);
	if (m->ncols == 0)
		return PointerGetDatum(tuple);
	tenant_d = heap_getattr(tuple, m->tenant_attnum, desc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);	/* NOT NULL on the tenant column refuses the row */
	tenant = DatumGetInt64(tenant_d);

	natts = m->ncols;
	cols = palloc(sizeof(int) * natts);
	vals = palloc(sizeof(Datum) * natts);
	nulls = palloc0(sizeof(bool) * natts);

	for (int i = 0; i < m->ncols; i++)
	{
		int			attnum = m->attnums[i];
		Datum		d = heap_getattr(tuple, attnum, desc, &isnull);
		struct varlena *v;
		const uint8 *data;
		size_t		len;
		uint8	   *dearmoured = NULL;
		size_t		dlen;
		UtilixEnvelope env;
		bool		oldnull = true;
		Datum		od = (Datum) 0;
		bool		unchanged = false;
		const char *colname = NameStr(TupleDescAttr(desc, attnum - 1)->attname);

		if (isnull)
			continue;
		v = PG_DETOAST_DATUM_PACKED(d);
		data = (const uint8 *) VARDATA_ANY(v);
		len = VARSIZE_ANY_EXHDR(v);
		if (oldtuple != NULL)
			od = heap_getattr(oldtuple, attnum, desc, &oldnull);

		/* armour passed as a plain-typed value (a text parameter, say) */
		if (!utilix_is_sealed(data, len) && utilix_has_armour_prefix((const char *) data, len))
		{
			if (!utilix_dearmour((const char *) data, len, &dearmoured, &dlen) &&
				!utilix_dearmour_withheld((const char *) data, len, &dearmoured, &dlen))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("malformed armoured ciphertext for column \"%s\"", colname)));
			data = dearmoured;
			len = dlen;
		}

		/*
		 * The withheld form: taken back only as the unchanged value of this
		 * row, which is stored again as it was.
		 */
		if (utilix_envelope_parse_withheld(data, len, &env))
		{
			bool		same = false;

			if (!oldnull)
			{
				struct varlena *ov = PG_DETOAST_DATUM_PACKED(od);
				const uint8 *odata = (const uint8 *) VARDATA_ANY(ov);
				size_t		olen = VARSIZE_ANY_EXHDR(ov);
				UtilixEnvelope oenv;

				if (olen == len && utilix_envelope_parse(odata, olen, &oenv) && oenv.has_bidx)
				{
					uint8	   *w = utilix_envelope_withhold(odata, olen, &oenv);

					same = memcmp(w, data, len) == 0;
					pfree(w);
				}
			}
			if (!same)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("the blind index of this value of column \"%s\" was withheld", colname),
						 errdetail("Armour read without the clearance for a column can only be written back unchanged, to the row it was read from."),
						 errhint("Write the plaintext, or leave the column out of the statement.")));
			cols[nrepl] = attnum;
			vals[nrepl] = od;
			nrepl++;
			continue;
		}

		if (!utilix_is_sealed(data, len))
		{
			Datum		sealed;

			utilix_note_plaintext();
			sealed = seal_bytes(tenant, m->column_ids[i], m->searchable[i], data, len);
			/* its nonce follows its header */
			note_value(note->sealed, &note->nsealed, m->column_ids[i],
					   (const uint8 *) VARDATA(DatumGetPointer(sealed)) +
					   utilix_envelope_header_len(m->searchable[i]));
			cols[nrepl] = attnum;
			vals[nrepl] = sealed;
			nrepl++;
			continue;
		}

		/* sealed: the row's own value, unchanged? */
		if (!oldnull)
		{
			if (dearmoured == NULL)
				unchanged = datumIsEqual(od, d, false, -1);
			else
			{
				struct varlena *ov = PG_DETOAST_DATUM_PACKED(od);

				unchanged = VARSIZE_ANY_EXHDR(ov) == len &&
					memcmp(VARDATA_ANY(ov), data, len) == 0;
			}
		}

		/* an UPDATE that did not touch the column keeps it as it is */
		if (unchanged && dearmoured == NULL)
		{
			/*
			 * reencrypt() (utilix._act_as_owner with reseal): a value
			 * sealed under an older key version of its tenant is sealed
			 * anew under the active one.
			 */
			if (utilix_reseal_mode && td->tg_updatedcols != NULL &&
				bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, td->tg_updatedcols))
			{
				UtilixTenantKey *active = utilix_active_tenant_key(tenant);
				struct varlena *plain;

				parse_or_fail(data, len, &env);
				/* or one whose blind index was stored before masking */
				if (env.tenant != tenant || env.column_id != m->column_ids[i] ||
					(env.key_version >= active->version && !(env.has_bidx && !env.masked)))
					continue;
				plain = open_envelope(&env);
				if (plain == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("encrypted value of column \"%s\" was sealed with a key that no longer exists",
									colname)));
				cols[nrepl] = attnum;
				vals[nrepl] = seal_bytes(tenant, m->column_ids[i], m->searchable[i],
										 (const uint8 *) VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
				nrepl++;
				utilix_wipe(VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
				pfree(plain);
			}
			else if (rel->rd_rel->relispartition && utilix_envelope_parse(data, len, &env) &&
					 !may_read(&env))
			{
				/* in case this UPDATE moves the row to another partition */
				if (unrestricted < 0)
					unrestricted = writer_unrestricted();
				if (!unrestricted)
				{
					note->relid = RelationGetRelid(rel);
					note->tid = oldtuple->t_self;
					note_value(note->moved, &note->nmoved, env.column_id, env.nonce);
				}
			}
			continue;
		}
		parse_or_fail(data, len, &env);
		if (env.tenant != tenant || env.column_id != m->column_ids[i])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("encrypted value does not belong to this tenant and column"),
					 errdetail("A sealed value of column \"%s\" can only be written back to a row of the tenant and column it was sealed for.",
							   colname)));

		/*
		 * Ciphertext other than the row's own unchanged value: only from a
		 * writer that may read it (or an unrestricted one); or a value the
		 * writer sealed from its own plaintext in the previous call (an
		 * upsert's EXCLUDED value); or the row's own value arriving in its
		 * new partition.
		 */
		if (!unchanged && !may_read(&env))
		{
			if (unrestricted < 0)
				unrestricted = writer_unrestricted();
			if (!unrestricted &&
				!(prev_ok && noted(prev->sealed, prev->nsealed, &env)) &&
				!(prev_ok && oldtuple == NULL && noted(prev->moved, prev->nmoved, &env) &&
				  source_row_moved(prev->relid, &prev->tid)))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied to write ciphertext of column \"%s\"", colname),
						 errdetail("A sealed value can only be written by a context that may read it; this context may not read column \"%s\" (its clearance is below the column's label, or it lacks the read right).",
								   colname),
						 errhint("Write the plaintext, or leave the column's value unchanged.")));
		}
		{
			struct varlena *plain = open_envelope(&env);

			if (plain == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("encrypted value of column \"%s\" was sealed with a key that no longer exists",
								colname)));
			utilix_wipe(VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
			pfree(plain);
		}
		if (dearmoured != NULL)
		{
			bytea	   *out = palloc(VARHDRSZ + len);

			SET_VARSIZE(out, VARHDRSZ + len);
			memcpy(VARDATA(out), data, len);
			cols[nrepl] = attnum;
			vals[nrepl] = PointerGetDatum(out);
			nrepl++;
		}
	}
	if (note->nsealed > 0 || note->nmoved > 0)
	{
		note->lxid = MyProc->lxid;
		note->stmt = GetCurrentStatementStartTimestamp();
		note->valid = true;
	}
	if (nrepl > 0)
		tuple = heap_modify_tuple_by_cols(tuple, desc, nrepl, cols, vals, nulls);
	return PointerGetDatum(tuple);
}

/* ---------- helpers for SQL ---------- */

PG_FUNCTION_INFO_V1(utilix_is_sealed_value);
Datum
utilix_is_sealed_value(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	UtilixEnvelope env;

	PG_RETURN_BOOL(utilix_envelope_parse((const uint8 *) VARDATA_ANY(v),
										 VARSIZE_ANY_EXHDR(v), &env));
}

/*
 * utilix._bidx_unmasked(value): does the stored value carry its blind index
 * unmasked (written before masking)?  reencrypt() rewrites such values.
 */
PG_FUNCTION_INFO_V1(utilix_bidx_unmasked);
Datum
utilix_bidx_unmasked(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	UtilixEnvelope env;

	PG_RETURN_BOOL(utilix_envelope_parse((const uint8 *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), &env) &&
				   env.has_bidx && !env.masked);
}

PG_FUNCTION_INFO_V1(utilix_key_version_of);
Datum
utilix_key_version_of(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	UtilixEnvelope env;

	if (!utilix_envelope_parse((const uint8 *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), &env))
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) env.key_version);
}

/*
 * utilix._plain(value): the plaintext without any context check.  Internal:
 * for re-encryption, decrypt_column() and tenant export; granted to no one.
 */
PG_FUNCTION_INFO_V1(utilix_plain_value);
Datum
utilix_plain_value(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	const uint8 *data = (const uint8 *) VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	UtilixEnvelope env;
	struct varlena *plain;

	if (!utilix_is_sealed(data, len))
	{
		if (utilix_is_probe(data, len))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a blind-index probe is not a value")));
		PG_RETURN_POINTER(v);
	}
	parse_or_fail(data, len, &env);
	plain = open_envelope(&env);
	if (plain == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key %u of tenant " INT64_FORMAT " was destroyed",
						env.key_version, env.tenant)));
	utilix_note_plaintext();
	{
		Oid			rettype = get_fn_expr_rettype(fcinfo->flinfo);
		PlainKind	kind = rettype == BYTEAOID ? KIND_BYTEA : rettype == JSONBOID ? KIND_JSONB : KIND_TEXT;
		const ColumnMeta *meta = get_column_meta(env.column_id);

		if (meta != NULL && meta->kind != kind)
		{
			utilix_wipe(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("this ciphertext belongs to a column of another plain type")));
		}
	}
	PG_RETURN_POINTER(plain);
}

/*
 * Has the relation (table, view, foreign table) a column of an encrypted
 * type?  For redact.c, at the start of each statement: the relcache entry,
 * no catalog query.  The caller holds a lock on the relation.
 */
bool
utilix_relation_has_encrypted_columns(Oid relid)
{
	Relation	rel;
	TupleDesc	desc;
	bool		found = false;

	/* (is_encrypted_type is false for every type in a database without utilix) */
	rel = RelationIdGetRelation(relid);
	if (!RelationIsValid(rel))
		return false;
	desc = RelationGetDescr(rel);
	for (int a = 0; a < desc->natts && !found; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		found = !att->attisdropped && is_encrypted_type(att->atttypid);
	}
	RelationClose(rel);
	return found;
}

void
EncryptInit(void)
{
	DefineCustomStringVariable("utilix.labels",
							   "Classification labels, lowest first.",
							   "A context reads a labelled column only with a clearance at or above its label.",
							   &label_levels, "public,internal,confidential,secret",
							   PGC_SUSET, GUC_LIST_INPUT,
							   check_labels, assign_labels, NULL);
	DefineCustomBoolVariable("utilix.test_unmasked_blind_index",
							 "Tests only: seal searchable values with an unmasked blind index, as before masking.",
							 NULL, &write_unmasked_bidx, false,
							 PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							 NULL, NULL, NULL);
}
