/*
 * fuzz_spill.c
 *		Fuzzes utilix_access_log_spill_parse() (spill.c): the check of the
 *		bytes an operator hands to utilix.load_access_log_spill().
 *
 * The first input byte holds two flags; the rest is the spill:
 *	0x01  the harness appends the seal (HMAC-SHA-256 under the fixed key of
 *		  pgstub.c), so that the checks behind the seal are reached;
 *	0x02  the harness sets the CRC-32C of every whole record after the
 *		  header, so that the fuzzer can change records and still pass the
 *		  CRC check.
 * The database is FUZZ_DBOID.
 *
 * An ereport(ERROR) is a refusal, as in the server.  Checked besides
 * memory safety: what is accepted is a header of this build, whole
 * records each with a good CRC and of this database, and a seal that
 * verifies; the records returned are the records given.
 */
#include "pgstub.h"

#include "accesslog.h"

#define FUZZ_DBOID 16384

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

typedef struct SpillCall
{
	const char *p;
	size_t		len;
	size_t		nrec;
	AlogRecord *recs;
} SpillCall;

static void
call_parse(void *arg)
{
	SpillCall  *c = arg;

	c->recs = utilix_access_log_spill_parse(c->p, c->len, FUZZ_DBOID, &c->nrec);
}

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	uint8		flags;
	size_t		len;
	char	   *spill;
	SpillCall	c;

	if (size == 0)
		return 0;
	flags = data[0];
	data++;
	size--;
	len = size + ((flags & 0x01) ? UTILIX_MAC_LEN : 0);
	/* an exact copy: any read past the end is an overrun ASan sees */
	spill = malloc(len ? len : 1);
	memcpy(spill, data, size);
	if (flags & 0x02)
	{
		for (size_t off = sizeof(SpillHeader); off + sizeof(AlogRecord) <= size; off += sizeof(AlogRecord))
		{
			AlogRecord	rec;

			memcpy(&rec, spill + off, sizeof(rec));
			record_set_crc(&rec);
			memcpy(spill + off, &rec, sizeof(rec));
		}
	}
	if (flags & 0x01)
		utilix_hmac_sha256(pgstub_key, UTILIX_KEY_LEN, (const uint8 *) spill, size,
						   (uint8 *) spill + size);

	c.p = spill;
	c.len = len;
	c.nrec = 0;
	c.recs = NULL;
	if (pgstub_call(call_parse, &c))
	{
		SpillHeader h;
		uint8		mac[UTILIX_MAC_LEN];

		FUZZ_CHECK(len >= sizeof(h) + UTILIX_MAC_LEN);
		memcpy(&h, spill, sizeof(h));
		FUZZ_CHECK(memcmp(h.magic, ALOG_SPILL_MAGIC, 8) == 0 && h.record_size == sizeof(AlogRecord));
		FUZZ_CHECK(sizeof(h) + c.nrec * sizeof(AlogRecord) + UTILIX_MAC_LEN == len);
		utilix_hmac_sha256(pgstub_key, UTILIX_KEY_LEN, (const uint8 *) spill, len - UTILIX_MAC_LEN, mac);
		FUZZ_CHECK(memcmp(mac, spill + len - UTILIX_MAC_LEN, UTILIX_MAC_LEN) == 0);
		FUZZ_CHECK(c.recs != NULL);
		for (size_t i = 0; i < c.nrec; i++)
		{
			FUZZ_CHECK(record_crc_ok(&c.recs[i]));
			FUZZ_CHECK(c.recs[i].dboid == FUZZ_DBOID);
			FUZZ_CHECK(memcmp(&c.recs[i], spill + sizeof(h) + i * sizeof(AlogRecord), sizeof(AlogRecord)) == 0);
		}
	}
	else
		FUZZ_CHECK(pgstub_last_error[0] != '\0');
	free(spill);
	pgstub_reset();
	return 0;
}
