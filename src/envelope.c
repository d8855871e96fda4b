/*
 * envelope.c
 *		The self-describing format of an encrypted value, and its armour.
 *
 * A sealed value, as stored:
 *
 *	 magic "\xffUTXE" (5) | format 0x01 (1) | flags (1) | tenant (8) |
 *	 column id (8) | key version (4) | [blind index (16) if flag 0x01] |
 *	 nonce (12) | tag (16) | ciphertext (n)
 *
 * Flags: 0x01 the value has a blind index; 0x04 (only with 0x01) the blind
 * index is stored masked, XORed with AES-256(mask key of the column, nonce
 * zero-padded to a block) (keyring.c, utilix_blind_mask).  The nonce is unique
 * per value, so two values of equal plaintext store unrelated bytes there:
 * nothing that compares or compresses stored bytes (record image operators,
 * pglz over an array of values) learns which values are equal.  Values
 * written before masking (0x01 alone) still read and match; reencrypt()
 * rewrites them masked.
 *
 * Integers are big-endian.  Everything before the nonce is the header and is
 * the AES-GCM associated data, so a value cannot be moved to another
 * tenant or column, or have its key version or blind index changed, and
 * still open.  The first byte, 0xFF, never starts valid UTF-8 text, so a
 * plaintext text value (the "pending" form the seal trigger sees) and a
 * sealed one are told apart by the magic alone.
 *
 * A probe is what a blind-index lookup compares against:
 *	 magic "\xffUTXP" (5) | format 0x01 | tenant (8) | column id (8) | bidx (16)
 *
 * Armour is the text form for anyone who may not read the value:
 *	 "utxe1:" base64url(sealed value)
 *
 * The withheld form of a searchable value is what a reader under row level
 * security that may not read the value gets instead: the same bytes with
 * flag 0x02 added and the blind index zeroed.  It tells nobody which values
 * are equal, does not open, and is no sealed value (utilix_envelope_parse
 * refuses it): the seal trigger takes it back only as the unchanged value
 * of the row it came from.
 *
 * These functions only parse and build bytes; they are pure so that they
 * can be fuzzed.
 */
#include "postgres.h"

#include "utilix.h"

static void
put_be64(uint8 *p, uint64 v)
{
	for (int i = 7; i >= 0; i--)
	{
		p[i] = (uint8) (v & 0xFF);
		v >>= 8;
	}
}

static uint64
get_be64(const uint8 *p)
{
	uint64		v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

bool
utilix_is_sealed(const uint8 *data, size_t len)
{
	return len >= UTILIX_ENV_MAGIC_LEN &&
		memcmp(data, UTILIX_ENV_MAGIC, UTILIX_ENV_MAGIC_LEN) == 0;
}

bool
utilix_is_probe(const uint8 *data, size_t len)
{
	return len == UTILIX_PROBE_LEN &&
		memcmp(data, UTILIX_PROBE_MAGIC, UTILIX_ENV_MAGIC_LEN) == 0 &&
		data[UTILIX_ENV_MAGIC_LEN] == UTILIX_ENV_FORMAT;
}

size_t
utilix_envelope_header_len(bool has_bidx)
{
	return UTILIX_ENV_MAGIC_LEN + 1 + 1 + 8 + 8 + 4 + (has_bidx ? UTILIX_BIDX_LEN : 0);
}

/* Strictly parse a sealed value; false for anything malformed. */
bool
utilix_envelope_parse(const uint8 *data, size_t len, UtilixEnvelope *env)
{
	size_t		pos;
	uint8		flags;

	memset(env, 0, sizeof(*env));
	if (!utilix_is_sealed(data, len) || len < UTILIX_ENV_MAGIC_LEN + 2)
		return false;
	pos = UTILIX_ENV_MAGIC_LEN;
	if (data[pos++] != UTILIX_ENV_FORMAT)
		return false;
	flags = data[pos++];
	if (flags != 0 && flags != UTILIX_ENV_FLAG_BIDX &&
		flags != (UTILIX_ENV_FLAG_BIDX | UTILIX_ENV_FLAG_MASKED))
		return false;
	env->has_bidx = (flags & UTILIX_ENV_FLAG_BIDX) != 0;
	env->masked = (flags & UTILIX_ENV_FLAG_MASKED) != 0;
	env->header_len = utilix_envelope_header_len(env->has_bidx);
	if (len < env->header_len + UTILIX_NONCE_LEN + UTILIX_TAG_LEN)
		return false;
	env->tenant = (int64) get_be64(data + pos);
	pos += 8;
	env->column_id = (int64) get_be64(data + pos);
	pos += 8;
	env->key_version = ((uint32) data[pos] << 24) | ((uint32) data[pos + 1] << 16) |
		((uint32) data[pos + 2] << 8) | data[pos + 3];
	pos += 4;
	if (env->tenant <= 0 || env->column_id == 0 || env->key_version == 0)
		return false;
	if (env->has_bidx)
	{
		env->bidx = data + pos;
		pos += UTILIX_BIDX_LEN;
	}
	env->nonce = data + pos;
	pos += UTILIX_NONCE_LEN;
	env->tag = data + pos;
	pos += UTILIX_TAG_LEN;
	env->ct = data + pos;
	env->ct_len = len - pos;
	env->header = data;
	return true;
}

/*
 * Strictly parse the withheld form of a searchable value (flags 0x03 or
 * 0x07, a blind index of zeroes); false for anything else, sealed values included.
 * env is filled as for the sealed value it came from, except that its blind
 * index is the zeroes and nothing in it opens.
 */
bool
utilix_envelope_parse_withheld(const uint8 *data, size_t len, UtilixEnvelope *env)
{
	uint8	   *copy;
	bool		ok;
	uint8		flags;

	memset(env, 0, sizeof(*env));
	if (!utilix_is_sealed(data, len) || len < UTILIX_ENV_MAGIC_LEN + 2 ||
		data[UTILIX_ENV_MAGIC_LEN] != UTILIX_ENV_FORMAT)
		return false;
	flags = data[UTILIX_ENV_MAGIC_LEN + 1];
	if (flags != (UTILIX_ENV_FLAG_BIDX | UTILIX_ENV_FLAG_WITHHELD) &&
		flags != (UTILIX_ENV_FLAG_BIDX | UTILIX_ENV_FLAG_WITHHELD | UTILIX_ENV_FLAG_MASKED))
		return false;
	/* parse it as the sealed value it would be with the flag cleared */
	copy = palloc(len);
	memcpy(copy, data, len);
	copy[UTILIX_ENV_MAGIC_LEN + 1] = flags & ~UTILIX_ENV_FLAG_WITHHELD;
	ok = utilix_envelope_parse(copy, len, env);
	if (ok)
	{
		for (int i = 0; i < UTILIX_BIDX_LEN; i++)
			ok &= (env->bidx[i] == 0);
	}
	pfree(copy);
	if (!ok)
	{
		memset(env, 0, sizeof(*env));
		return false;
	}
	/* point into the caller's bytes, not the copy */
	env->header = data;
	env->bidx = data + (env->header_len - UTILIX_BIDX_LEN);
	env->nonce = data + env->header_len;
	env->tag = env->nonce + UTILIX_NONCE_LEN;
	env->ct = env->tag + UTILIX_TAG_LEN;
	env->withheld = true;
	return true;
}

/*
 * The withheld form of a sealed searchable value (which the caller has
 * parsed): a palloc'd copy with flag 0x02 set and the blind index zeroed.
 * A masked blind index tells nothing either, but it is withheld all the
 * same: the withheld form stays one form, whatever the stored one.
 */
uint8 *
utilix_envelope_withhold(const uint8 *data, size_t len, const UtilixEnvelope *env)
{
	uint8	   *out = palloc(len);

	memcpy(out, data, len);
	out[UTILIX_ENV_MAGIC_LEN + 1] = UTILIX_ENV_FLAG_BIDX | UTILIX_ENV_FLAG_WITHHELD |
		(env->masked ? UTILIX_ENV_FLAG_MASKED : 0);
	memset(out + (env->bidx - data), 0, UTILIX_BIDX_LEN);
	return out;
}

/*
 * Write the header of a sealed value into out (which has room for the
 * header, nonce, tag and ciphertext) and return the header length.
 */
size_t
utilix_envelope_write_header(uint8 *out, int64 tenant, int64 column_id,
							 uint32 key_version, const uint8 *bidx, bool masked)
{
	size_t		pos = 0;

	memcpy(out, UTILIX_ENV_MAGIC, UTILIX_ENV_MAGIC_LEN);
	pos += UTILIX_ENV_MAGIC_LEN;
	out[pos++] = UTILIX_ENV_FORMAT;
	out[pos++] = bidx ? (UTILIX_ENV_FLAG_BIDX | (masked ? UTILIX_ENV_FLAG_MASKED : 0)) : 0;
	put_be64(out + pos, (uint64) tenant);
	pos += 8;
	put_be64(out + pos, (uint64) column_id);
	pos += 8;
	out[pos++] = (uint8) (key_version >> 24);
	out[pos++] = (uint8) (key_version >> 16);
	out[pos++] = (uint8) (key_version >> 8);
	out[pos++] = (uint8) key_version;
	if (bidx)
	{
		memcpy(out + pos, bidx, UTILIX_BIDX_LEN);
		pos += UTILIX_BIDX_LEN;
	}
	return pos;
}

void
utilix_probe_write(uint8 *out, int64 tenant, int64 column_id, const uint8 *bidx)
{
	size_t		pos = 0;

	memcpy(out, UTILIX_PROBE_MAGIC, UTILIX_ENV_MAGIC_LEN);
	pos += UTILIX_ENV_MAGIC_LEN;
	out[pos++] = UTILIX_ENV_FORMAT;
	put_be64(out + pos, (uint64) tenant);
	pos += 8;
	put_be64(out + pos, (uint64) column_id);
	pos += 8;
	memcpy(out + pos, bidx, UTILIX_BIDX_LEN);
}

void
utilix_probe_parse(const uint8 *data, int64 *tenant, int64 *column_id, const uint8 **bidx)
{
	*tenant = (int64) get_be64(data + UTILIX_ENV_MAGIC_LEN + 1);
	*column_id = (int64) get_be64(data + UTILIX_ENV_MAGIC_LEN + 9);
	*bidx = data + UTILIX_ENV_MAGIC_LEN + 17;
}

/* Armour: "utxe1:" + base64url.  Returns a palloc'd string. */
char *
utilix_armour(const uint8 *data, size_t len)
{
	char	   *b64 = utilix_b64url_encode(data, len);
	char	   *out = psprintf("%s%s", UTILIX_ARMOUR_PREFIX, b64);

	pfree(b64);
	return out;
}

bool
utilix_has_armour_prefix(const char *s, size_t len)
{
	return len >= UTILIX_ARMOUR_PREFIX_LEN &&
		memcmp(s, UTILIX_ARMOUR_PREFIX, UTILIX_ARMOUR_PREFIX_LEN) == 0;
}

/* Armour decoded into a palloc'd buffer, kept when parse accepts it. */
static bool
dearmour_with(const char *s, size_t len, uint8 **out, size_t *outlen,
			  bool (*parse) (const uint8 *, size_t, UtilixEnvelope *))
{
	size_t		cap;
	uint8	   *buf;
	UtilixEnvelope env;

	if (!utilix_has_armour_prefix(s, len))
		return false;
	s += UTILIX_ARMOUR_PREFIX_LEN;
	len -= UTILIX_ARMOUR_PREFIX_LEN;
	cap = utilix_b64url_decoded_max(len);
	buf = palloc(cap);
	if (!utilix_b64url_decode(s, len, buf, cap, outlen) || !parse(buf, *outlen, &env))
	{
		pfree(buf);
		return false;
	}
	*out = buf;
	return true;
}

/*
 * Decode armour into a palloc'd sealed value.  Returns false unless the text
 * is armour whose content parses as a sealed value.
 */
bool
utilix_dearmour(const char *s, size_t len, uint8 **out, size_t *outlen)
{
	return dearmour_with(s, len, out, outlen, utilix_envelope_parse);
}

/* Decode armour of a withheld form (see above); false for anything else. */
bool
utilix_dearmour_withheld(const char *s, size_t len, uint8 **out, size_t *outlen)
{
	return dearmour_with(s, len, out, outlen, utilix_envelope_parse_withheld);
}
