/*
 * spill.c
 *		The check of a spill handed in as bytes, by
 *		utilix.load_access_log_spill(): the header, the seal, then each
 *		record's CRC and database.  Pure (no file, no shared memory) so that
 *		it can be fuzzed; accesslog.c does the rest.
 */
#include "postgres.h"

#include "utilix.h"
#include "accesslog.h"

/*
 * The records of the spill at p (len bytes, seal included), for database
 * dboid: a palloc'd copy, their number in *nrec.  Raises an error for
 * anything else, so that nothing of a damaged spill is loaded.
 */
AlogRecord *
utilix_access_log_spill_parse(const char *p, size_t len, Oid dboid, size_t *nrec)
{
	SpillHeader h;
	AlogRecord *recs;
	size_t		n;

	if (len < sizeof(h) + UTILIX_MAC_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("this is not an access log spill of utilix")));
	memcpy(&h, p, sizeof(h));
	if (memcmp(h.magic, ALOG_SPILL_MAGIC, 8) != 0 || h.record_size != sizeof(AlogRecord) ||
		(len - sizeof(h) - UTILIX_MAC_LEN) % sizeof(AlogRecord) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("this is not an access log spill of this build of utilix")));
	{
		uint8		mac[UTILIX_MAC_LEN];

		utilix_hmac_sha256(utilix_subkey(UTILIX_SUBKEY_CHAIN), UTILIX_KEY_LEN,
						   (const uint8 *) p, len - UTILIX_MAC_LEN, mac);
		if (!utilix_ct_equal(mac, p + len - UTILIX_MAC_LEN, UTILIX_MAC_LEN))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the spill's seal does not verify; nothing was loaded"),
					 errdetail("It was changed after utilix.access_log_spill() made it, or made under another master key.")));
	}
	len -= UTILIX_MAC_LEN;
	n = (len - sizeof(h)) / sizeof(AlogRecord);
	recs = palloc(sizeof(AlogRecord) * Max(n, 1));
	memcpy(recs, p + sizeof(h), sizeof(AlogRecord) * n);
	for (size_t i = 0; i < n; i++)
	{
		if (!record_crc_ok(&recs[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("record %zu of the spill is damaged; nothing was loaded", i + 1)));
		if (recs[i].dboid != dboid)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("record %zu of the spill belongs to another database; nothing was loaded", i + 1)));
	}
	*nrec = n;
	return recs;
}
