/*
 * cryptofuncs.c
 *		SQL access to the crypto core, for known-answer tests and benchmarks.
 *
 * These functions take their key as an argument and never touch the master
 * key.  The AES-GCM pair keeps the context of the last key used, so a scan
 * that seals or opens many values under one key sets the key up once.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/memutils.h"

#include "utilix.h"

static UtilixAead *cached_aead = NULL;
static uint8 cached_key[UTILIX_KEY_LEN];

static UtilixAead *
aead_for_key(bytea *key)
{
	if (VARSIZE_ANY_EXHDR(key) != UTILIX_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("AES-256-GCM key must be 32 bytes")));
	if (cached_aead == NULL ||
		!utilix_ct_equal(cached_key, VARDATA_ANY(key), UTILIX_KEY_LEN))
	{
		if (cached_aead)
			utilix_aead_free(cached_aead);
		utilix_wipe(cached_key, UTILIX_KEY_LEN);
		cached_aead = NULL;
		cached_aead = utilix_aead_new((const uint8 *) VARDATA_ANY(key));
		memcpy(cached_key, VARDATA_ANY(key), UTILIX_KEY_LEN);
	}
	return cached_aead;
}

static void
check_nonce(bytea *nonce)
{
	if (VARSIZE_ANY_EXHDR(nonce) != UTILIX_NONCE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("AES-256-GCM nonce must be 12 bytes")));
}

PG_FUNCTION_INFO_V1(utilix_crypto_seal);
Datum
utilix_crypto_seal(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *nonce = PG_GETARG_BYTEA_PP(1);
	bytea	   *aad = PG_GETARG_BYTEA_PP(2);
	bytea	   *pt = PG_GETARG_BYTEA_PP(3);
	size_t		ptlen = VARSIZE_ANY_EXHDR(pt);
	bytea	   *out;
	UtilixAead *aead;

	check_nonce(nonce);
	aead = aead_for_key(key);
	if (ptlen > MaxAllocSize - VARHDRSZ - UTILIX_TAG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large to encrypt")));
	out = palloc(VARHDRSZ + ptlen + UTILIX_TAG_LEN);
	SET_VARSIZE(out, VARHDRSZ + ptlen + UTILIX_TAG_LEN);
	utilix_aead_seal(aead, (const uint8 *) VARDATA_ANY(nonce),
					 (const uint8 *) VARDATA_ANY(aad), VARSIZE_ANY_EXHDR(aad),
					 (const uint8 *) VARDATA_ANY(pt), ptlen,
					 (uint8 *) VARDATA(out), (uint8 *) VARDATA(out) + ptlen);
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(utilix_crypto_open);
Datum
utilix_crypto_open(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *nonce = PG_GETARG_BYTEA_PP(1);
	bytea	   *aad = PG_GETARG_BYTEA_PP(2);
	bytea	   *sealed = PG_GETARG_BYTEA_PP(3);
	size_t		slen = VARSIZE_ANY_EXHDR(sealed);
	size_t		ctlen;
	const uint8 *s = (const uint8 *) VARDATA_ANY(sealed);
	bytea	   *out;
	UtilixAead *aead;

	check_nonce(nonce);
	aead = aead_for_key(key);
	if (slen < UTILIX_TAG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("sealed value is too short")));
	ctlen = slen - UTILIX_TAG_LEN;
	out = palloc(VARHDRSZ + ctlen);
	SET_VARSIZE(out, VARHDRSZ + ctlen);
	if (!utilix_aead_open(aead, (const uint8 *) VARDATA_ANY(nonce),
						  (const uint8 *) VARDATA_ANY(aad), VARSIZE_ANY_EXHDR(aad),
						  s, ctlen, s + ctlen, (uint8 *) VARDATA(out)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("sealed value does not authenticate"),
				 errdetail("The key, nonce, associated data, ciphertext or tag is wrong.")));
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(utilix_crypto_hkdf);
Datum
utilix_crypto_hkdf(PG_FUNCTION_ARGS)
{
	bytea	   *ikm = PG_GETARG_BYTEA_PP(0);
	bytea	   *salt = PG_GETARG_BYTEA_PP(1);
	bytea	   *info = PG_GETARG_BYTEA_PP(2);
	int32		len = PG_GETARG_INT32(3);
	bytea	   *out;

	if (len < 1 || len > 255 * 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("HKDF output length must be between 1 and 8160 bytes")));
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	utilix_hkdf_sha256((const uint8 *) VARDATA_ANY(ikm), VARSIZE_ANY_EXHDR(ikm),
					   (const uint8 *) VARDATA_ANY(salt), VARSIZE_ANY_EXHDR(salt),
					   (const uint8 *) VARDATA_ANY(info), VARSIZE_ANY_EXHDR(info),
					   (uint8 *) VARDATA(out), len);
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(utilix_crypto_hmac);
Datum
utilix_crypto_hmac(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *data = PG_GETARG_BYTEA_PP(1);
	bytea	   *out = palloc(VARHDRSZ + UTILIX_MAC_LEN);

	SET_VARSIZE(out, VARHDRSZ + UTILIX_MAC_LEN);
	utilix_hmac_sha256((const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
					   (const uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
					   (uint8 *) VARDATA(out));
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(utilix_crypto_random);
Datum
utilix_crypto_random(PG_FUNCTION_ARGS)
{
	int32		len = PG_GETARG_INT32(0);
	bytea	   *out;

	if (len < 0 || len > 1024 * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("length must be between 0 and 1048576")));
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	utilix_random_bytes((uint8 *) VARDATA(out), len);
	PG_RETURN_BYTEA_P(out);
}
