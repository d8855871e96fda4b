/*
 * accesslog.h
 *		The access log record and the spill file format, shared by
 *		accesslog.c and spill.c (and the spill fuzzer).  Not part of
 *		utilix.h: nothing else needs them.
 *
 * A spill file is a SpillHeader and whole records; the bytes of
 * utilix.access_log_spill() are the same followed by an HMAC-SHA-256
 * (the seal) over them.  Each record carries a CRC-32C of itself.
 */
#ifndef UTILIX_ACCESSLOG_H
#define UTILIX_ACCESSLOG_H

#include "port/pg_crc32c.h"
#include "utils/timestamp.h"

#define ALOG_MAX_TABLES		8
#define ALOG_NAME_LEN		132		/* "schema.table", both quoted if needed */
#define ALOG_USER_LEN		128
#define ALOG_ROLE_LEN		NAMEDATALEN
#define ALOG_ADDR_LEN		64
#define ALOG_APP_LEN		64
#define ALOG_DETAIL_LEN		256
#define ALOG_QUERY_LEN		1024

typedef struct AlogTable
{
	char		name[ALOG_NAME_LEN];
	int64		nread;
	int64		ninserted;
	int64		nupdated;
	int64		ndeleted;
} AlogTable;

typedef struct AlogRecord
{
	uint64		epoch;			/* with seq: the record's unique id */
	uint64		seq;
	Oid			dboid;
	int32		pid;
	TimestampTz at;
	int64		tenant;
	bool		has_tenant;
	uint8		kind;
	uint8		outcome;
	uint8		ntables;
	int32		sqlerrcode;
	int32		client_port;
	int64		queryid;
	char		app_user[ALOG_USER_LEN];
	char		session_role[ALOG_ROLE_LEN];
	char		current_role[ALOG_ROLE_LEN];
	char		client_addr[ALOG_ADDR_LEN];
	char		application_name[ALOG_APP_LEN];
	char		detail[ALOG_DETAIL_LEN];
	char		query[ALOG_QUERY_LEN];
	AlogTable	tables[ALOG_MAX_TABLES];
	pg_crc32c	crc;			/* over everything above */
} AlogRecord;

#define ALOG_CRC_LEN offsetof(AlogRecord, crc)

#define ALOG_SPILL_MAGIC "UTXALOG1"

typedef struct SpillHeader
{
	char		magic[8];
	uint32		record_size;
	uint32		version;
} SpillHeader;

/*
 * Every string of a record ends inside its field, whatever the bytes of a
 * spill file said (a record is written whole, so this changes nothing in a
 * record utilix made).
 */
static inline void
record_terminate(AlogRecord *rec)
{
	rec->app_user[ALOG_USER_LEN - 1] = '\0';
	rec->session_role[ALOG_ROLE_LEN - 1] = '\0';
	rec->current_role[ALOG_ROLE_LEN - 1] = '\0';
	rec->client_addr[ALOG_ADDR_LEN - 1] = '\0';
	rec->application_name[ALOG_APP_LEN - 1] = '\0';
	rec->detail[ALOG_DETAIL_LEN - 1] = '\0';
	rec->query[ALOG_QUERY_LEN - 1] = '\0';
	for (int i = 0; i < ALOG_MAX_TABLES; i++)
		rec->tables[i].name[ALOG_NAME_LEN - 1] = '\0';
	if (rec->ntables > ALOG_MAX_TABLES)
		rec->ntables = ALOG_MAX_TABLES;
}

static inline bool
record_crc_ok(const AlogRecord *rec)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, rec, ALOG_CRC_LEN);
	FIN_CRC32C(crc);
	return EQ_CRC32C(crc, rec->crc);
}

static inline void
record_set_crc(AlogRecord *rec)
{
	INIT_CRC32C(rec->crc);
	COMP_CRC32C(rec->crc, rec, ALOG_CRC_LEN);
	FIN_CRC32C(rec->crc);
}

/* accesslog.c: called by the assign hook of utilix.context, before the change */
extern void utilix_access_log_context_changing(void);

/* context.c: the context in force, for the access log (no error, no lookup) */
#define UTILIX_LOGCTX_NONE		0
#define UTILIX_LOGCTX_VERIFIED	1
#define UTILIX_LOGCTX_REFUSED	2
extern int	utilix_context_for_log(int64 *tenant, const char **app_user, const char **why);
/* context.c: verify it now, where lookups are safe (quiet, cheap once verified) */
extern void utilix_context_verify_for_log(void);

/* spill.c */
extern AlogRecord *utilix_access_log_spill_parse(const char *p, size_t len, Oid dboid,
												 size_t *nrec);

#endif							/* UTILIX_ACCESSLOG_H */
