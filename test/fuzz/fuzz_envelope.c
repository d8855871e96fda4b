/*
 * fuzz_envelope.c
 *		Fuzzes the parsers of stored encrypted values (envelope.c):
 *		utilix_envelope_parse(), and utilix_is_probe() with
 *		utilix_probe_parse() the way encrypt.c calls them.
 *
 * The input is the stored bytes.  Checked besides memory safety:
 *  - a parsed envelope's parts (header, blind index, nonce, tag,
 *    ciphertext) lie inside the value, in order, and cover all of it;
 *  - the parsed fields obey the format (positive tenant, non-zero column
 *    and key version) and writing them again gives back the same header;
 *  - a probe read and written again is the same probe;
 *  - armour of the bytes dearmours to the same bytes exactly when they
 *    parse as an envelope;
 *  - the withheld form (utilix_envelope_parse_withheld) is never a sealed
 *    value, has flags 0x03 and a blind index of zeroes inside the value,
 *    and withholding a parsed searchable envelope gives one.
 */
#include "pgstub.h"

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

static void
check_envelope(const uint8 *v, size_t len)
{
	UtilixEnvelope env;
	bool		ok = utilix_envelope_parse(v, len, &env);

	if (!ok)
		return;
	FUZZ_CHECK(utilix_is_sealed(v, len));
	FUZZ_CHECK(env.header == v);
	FUZZ_CHECK(env.header_len == utilix_envelope_header_len(env.has_bidx));
	FUZZ_CHECK(env.tenant > 0 && env.column_id != 0 && env.key_version != 0);
	if (env.has_bidx)
		FUZZ_CHECK(env.bidx == v + env.header_len - UTILIX_BIDX_LEN);
	else
		FUZZ_CHECK(env.bidx == NULL);
	FUZZ_CHECK(env.nonce == v + env.header_len);
	FUZZ_CHECK(env.tag == env.nonce + UTILIX_NONCE_LEN);
	FUZZ_CHECK(env.ct == env.tag + UTILIX_TAG_LEN);
	FUZZ_CHECK(env.header_len + UTILIX_NONCE_LEN + UTILIX_TAG_LEN + env.ct_len == len);

	/* the same header, written from the parsed fields */
	{
		uint8		hdr[64];
		size_t		hlen = utilix_envelope_write_header(hdr, env.tenant, env.column_id,
														env.key_version, env.bidx, env.masked);

		FUZZ_CHECK(hlen == env.header_len);
		FUZZ_CHECK(memcmp(hdr, env.header, hlen) == 0);
	}
	/* every byte of the ciphertext is readable (ASan checks the bounds) */
	{
		volatile uint8 x = 0;

		for (size_t i = 0; i < env.ct_len; i++)
			x ^= env.ct[i];
		for (size_t i = 0; i < UTILIX_TAG_LEN; i++)
			x ^= env.tag[i] ^ env.nonce[i % UTILIX_NONCE_LEN];
		(void) x;
	}
}

static void
check_probe(const uint8 *v, size_t len)
{
	int64		tenant;
	int64		column;
	const uint8 *bidx;
	uint8		again[UTILIX_PROBE_LEN];

	/* encrypt.c parses a probe only after utilix_is_probe() said it is one */
	if (!utilix_is_probe(v, len))
		return;
	utilix_probe_parse(v, &tenant, &column, &bidx);
	FUZZ_CHECK(bidx >= v && bidx + UTILIX_BIDX_LEN == v + len);
	utilix_probe_write(again, tenant, column, bidx);
	FUZZ_CHECK(memcmp(again, v, UTILIX_PROBE_LEN) == 0);
}

static void
check_armour_round_trip(const uint8 *v, size_t len)
{
	UtilixEnvelope env;
	bool		parses = utilix_envelope_parse(v, len, &env);
	char	   *text = utilix_armour(v, len);
	size_t		tlen = strlen(text);
	uint8	   *back = NULL;
	size_t		blen = 0;

	FUZZ_CHECK(utilix_has_armour_prefix(text, tlen));
	FUZZ_CHECK(utilix_dearmour(text, tlen, &back, &blen) == parses);
	if (parses)
		FUZZ_CHECK(blen == len && memcmp(back, v, len) == 0);
}

static void
check_withheld(const uint8 *v, size_t len)
{
	UtilixEnvelope env;
	UtilixEnvelope w;

	if (utilix_envelope_parse_withheld(v, len, &w))
	{
		FUZZ_CHECK(!utilix_envelope_parse(v, len, &env));
		FUZZ_CHECK(w.withheld && w.has_bidx);
		FUZZ_CHECK(v[UTILIX_ENV_MAGIC_LEN + 1] == (UTILIX_ENV_FLAG_BIDX | UTILIX_ENV_FLAG_WITHHELD |
												   (w.masked ? UTILIX_ENV_FLAG_MASKED : 0)));
		FUZZ_CHECK(w.bidx == v + w.header_len - UTILIX_BIDX_LEN);
		for (int i = 0; i < UTILIX_BIDX_LEN; i++)
			FUZZ_CHECK(w.bidx[i] == 0);
		FUZZ_CHECK(w.header_len + UTILIX_NONCE_LEN + UTILIX_TAG_LEN + w.ct_len == len);
	}
	if (utilix_envelope_parse(v, len, &env) && env.has_bidx)
	{
		uint8	   *h = utilix_envelope_withhold(v, len, &env);

		FUZZ_CHECK(utilix_envelope_parse_withheld(h, len, &w));
		FUZZ_CHECK(w.tenant == env.tenant && w.column_id == env.column_id &&
				   w.key_version == env.key_version);
		FUZZ_CHECK(memcmp(w.nonce, env.nonce, UTILIX_NONCE_LEN) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	/* an exact copy: any read past the end is an overrun ASan sees */
	uint8	   *v = malloc(size ? size : 1);

	memcpy(v, data, size);
	check_envelope(v, size);
	check_probe(v, size);
	check_armour_round_trip(v, size);
	check_withheld(v, size);
	free(v);
	pgstub_reset();
	return 0;
}
