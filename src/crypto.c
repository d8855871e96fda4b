/*
 * crypto.c
 *		The cryptographic core: the only file of utilix that includes OpenSSL.
 *
 * Random bytes, HKDF-SHA-256, HMAC-SHA-256, SHA-256, AES-256-GCM with
 * associated data, constant-time comparison and wiping.  AEAD contexts are
 * keyed once and reused: only the nonce changes per value, so the AES key
 * schedule is not recomputed for every seal or open.
 *
 * Errors from OpenSSL are reported with SQLSTATE 39000-family codes and the
 * library's own text in the detail; no key or plaintext ever reaches one.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>

#include <unistd.h>

#include "utils/memutils.h"

#include "utilix.h"

struct UtilixAead
{
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

/* Report the most recent OpenSSL failure and stop. */
static void
openssl_fail(const char *what)
{
	unsigned long e = ERR_get_error();
	char		buf[256];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		strlcpy(buf, "no error text from OpenSSL", sizeof(buf));
	ERR_clear_error();
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
			 errmsg("OpenSSL failed in %s", what),
			 errdetail("%s", buf)));
}

void
utilix_random_bytes(uint8 *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int) len) != 1)
		openssl_fail("RAND_bytes");
}

/*
 * A fresh 96-bit nonce from the CSPRNG.  Drawn in blocks: one RAND_bytes
 * call per value cost more than the AES-GCM itself.  The buffer is
 * per-backend and only ever filled after fork, so no two processes can
 * serve the same bytes.
 */
#define NONCE_POOL 4096
static uint8 nonce_pool[NONCE_POOL];
static int	nonce_pos = NONCE_POOL;
static pid_t nonce_pid = 0;

void
utilix_nonce(uint8 out[UTILIX_NONCE_LEN])
{
	if (nonce_pos + UTILIX_NONCE_LEN > NONCE_POOL || nonce_pid != getpid())
	{
		utilix_random_bytes(nonce_pool, NONCE_POOL);
		nonce_pos = 0;
		nonce_pid = getpid();
	}
	memcpy(out, nonce_pool + nonce_pos, UTILIX_NONCE_LEN);
	memset(nonce_pool + nonce_pos, 0, UTILIX_NONCE_LEN);
	nonce_pos += UTILIX_NONCE_LEN;
}

void
utilix_hkdf_sha256(const uint8 *ikm, size_t ikmlen,
				   const uint8 *salt, size_t saltlen,
				   const uint8 *info, size_t infolen,
				   uint8 *out, size_t outlen)
{
	EVP_KDF    *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM	params[5];
	OSSL_PARAM *p = params;
	static const uint8 empty[1] = {0};

	if (outlen == 0 || outlen > 255 * 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("HKDF output length must be between 1 and 8160 bytes")));

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL)
		openssl_fail("EVP_KDF_fetch");
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		openssl_fail("EVP_KDF_CTX_new");

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
											 (void *) (ikmlen ? ikm : empty), ikmlen);
	if (saltlen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
												 (void *) salt, saltlen);
	if (infolen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
												 (void *) info, infolen);
	*p = OSSL_PARAM_construct_end();

	if (EVP_KDF_derive(kctx, out, outlen, params) != 1)
	{
		EVP_KDF_CTX_free(kctx);
		openssl_fail("HKDF");
	}
	EVP_KDF_CTX_free(kctx);
}

/*
 * HMAC-SHA-256.  The MAC context of the last 32-byte key is kept keyed, so
 * that verifying one token after another (always the same subkey) does not
 * fetch the algorithm and set up the key each time.
 */
static EVP_MAC_CTX *hmac_ctx = NULL;
static uint8 hmac_key_id[32];	/* SHA-256 of the key the context holds, not the key */

void
utilix_hmac_sha256(const uint8 *key, size_t keylen,
				   const uint8 *data, size_t len, uint8 out[UTILIX_MAC_LEN])
{
	static const uint8 empty[1] = {0};
	size_t		outlen = 0;
	OSSL_PARAM	params[2];
	uint8		key_id[32];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();

	if (keylen != UTILIX_KEY_LEN)
	{
		unsigned int ol = 0;

		if (keylen > INT_MAX ||
			HMAC(EVP_sha256(), keylen ? key : empty, (int) keylen,
				 len ? data : empty, len, out, &ol) == NULL || ol != UTILIX_MAC_LEN)
			openssl_fail("HMAC-SHA-256");
		return;
	}
	utilix_sha256(key, keylen, key_id);
	if (hmac_ctx == NULL)
	{
		EVP_MAC    *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

		if (mac == NULL)
			openssl_fail("EVP_MAC_fetch");
		hmac_ctx = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);
		if (hmac_ctx == NULL)
			openssl_fail("EVP_MAC_CTX_new");
		if (EVP_MAC_init(hmac_ctx, key, keylen, params) != 1)
			openssl_fail("HMAC key setup");
		memcpy(hmac_key_id, key_id, sizeof(key_id));
	}
	else if (!utilix_ct_equal(hmac_key_id, key_id, sizeof(key_id)))
	{
		if (EVP_MAC_init(hmac_ctx, key, keylen, params) != 1)
			openssl_fail("HMAC key setup");
		memcpy(hmac_key_id, key_id, sizeof(key_id));
	}
	else if (EVP_MAC_init(hmac_ctx, NULL, 0, NULL) != 1)
		openssl_fail("HMAC reset");
	if (EVP_MAC_update(hmac_ctx, len ? data : empty, len) != 1 ||
		EVP_MAC_final(hmac_ctx, out, &outlen, UTILIX_MAC_LEN) != 1 ||
		outlen != UTILIX_MAC_LEN)
		openssl_fail("HMAC-SHA-256");
}

void
utilix_sha256(const uint8 *data, size_t len, uint8 out[32])
{
	unsigned int outlen = 0;
	static const uint8 empty[1] = {0};

	if (EVP_Digest(len ? data : empty, len, out, &outlen, EVP_sha256(), NULL) != 1 ||
		outlen != 32)
		openssl_fail("SHA-256");
}

/*
 * A keyed AES-256-GCM pair of contexts.  Lives in malloc'd memory owned by
 * OpenSSL; the caller keeps it in a cache and frees it with
 * utilix_aead_free(), which makes OpenSSL wipe the key schedule.
 */
UtilixAead *
utilix_aead_new(const uint8 key[UTILIX_KEY_LEN])
{
	UtilixAead *aead = MemoryContextAllocZero(TopMemoryContext, sizeof(UtilixAead));

	aead->enc = EVP_CIPHER_CTX_new();
	aead->dec = EVP_CIPHER_CTX_new();
	if (aead->enc == NULL || aead->dec == NULL ||
		EVP_EncryptInit_ex(aead->enc, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(aead->enc, EVP_CTRL_GCM_SET_IVLEN, UTILIX_NONCE_LEN, NULL) != 1 ||
		EVP_EncryptInit_ex(aead->enc, NULL, NULL, key, NULL) != 1 ||
		EVP_DecryptInit_ex(aead->dec, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(aead->dec, EVP_CTRL_GCM_SET_IVLEN, UTILIX_NONCE_LEN, NULL) != 1 ||
		EVP_DecryptInit_ex(aead->dec, NULL, NULL, key, NULL) != 1)
	{
		utilix_aead_free(aead);
		openssl_fail("AES-256-GCM key setup");
	}
	return aead;
}

/*
 * A keyed pseudo-random function of one block: AES-256 of a 16-byte input
 * (ECB, one block, no padding).  What masks a stored blind index: one AES
 * block per value, where an HMAC would cost a hash of its key and two of
 * the input.  Freed with utilix_prf_free(), which wipes the key schedule.
 */
UtilixPrf *
utilix_prf_new(const uint8 key[UTILIX_KEY_LEN])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL ||
		EVP_EncryptInit_ex(ctx, EVP_aes_256_ecb(), NULL, key, NULL) != 1 ||
		EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
	{
		if (ctx)
			EVP_CIPHER_CTX_free(ctx);
		openssl_fail("AES-256 key setup");
	}
	return (UtilixPrf *) ctx;
}

void
utilix_prf_free(UtilixPrf *prf)
{
	if (prf)
		EVP_CIPHER_CTX_free((EVP_CIPHER_CTX *) prf);
}

void
utilix_prf_block(UtilixPrf *prf, const uint8 in[16], uint8 out[16])
{
	int			outlen = 0;

	if (EVP_EncryptUpdate((EVP_CIPHER_CTX *) prf, out, &outlen, in, 16) != 1 || outlen != 16)
		openssl_fail("AES-256 block");
}

void
utilix_aead_free(UtilixAead *aead)
{
	if (aead == NULL)
		return;
	/* EVP_CIPHER_CTX_free cleanses the key schedule before freeing it */
	if (aead->enc)
		EVP_CIPHER_CTX_free(aead->enc);
	if (aead->dec)
		EVP_CIPHER_CTX_free(aead->dec);
	pfree(aead);
}

void
utilix_aead_seal(UtilixAead *aead, const uint8 *nonce,
				 const uint8 *aad, size_t aadlen,
				 const uint8 *pt, size_t ptlen,
				 uint8 *ct, uint8 tag[UTILIX_TAG_LEN])
{
	int			outl = 0;

	if (ptlen > INT_MAX || aadlen > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large to encrypt")));
	if (EVP_EncryptInit_ex(aead->enc, NULL, NULL, NULL, nonce) != 1)
		openssl_fail("AES-256-GCM nonce setup");
	if (aadlen > 0 &&
		EVP_EncryptUpdate(aead->enc, NULL, &outl, aad, (int) aadlen) != 1)
		openssl_fail("AES-256-GCM associated data");
	if (ptlen > 0 &&
		EVP_EncryptUpdate(aead->enc, ct, &outl, pt, (int) ptlen) != 1)
		openssl_fail("AES-256-GCM encryption");
	if (EVP_EncryptFinal_ex(aead->enc, ct + (ptlen > 0 ? outl : 0), &outl) != 1 ||
		EVP_CIPHER_CTX_ctrl(aead->enc, EVP_CTRL_GCM_GET_TAG, UTILIX_TAG_LEN, tag) != 1)
		openssl_fail("AES-256-GCM finalisation");
}

/*
 * Returns false when authentication fails; the output buffer is then wiped
 * so that no unauthenticated bytes survive.  Never raises for a bad tag:
 * the caller chooses the error, so that it can name the value's column but
 * never its contents.
 */
bool
utilix_aead_open(UtilixAead *aead, const uint8 *nonce,
				 const uint8 *aad, size_t aadlen,
				 const uint8 *ct, size_t ctlen,
				 const uint8 tag[UTILIX_TAG_LEN], uint8 *pt)
{
	int			outl = 0;
	uint8		tagcopy[UTILIX_TAG_LEN];

	if (ctlen > INT_MAX || aadlen > INT_MAX)
		return false;
	memcpy(tagcopy, tag, UTILIX_TAG_LEN);
	if (EVP_DecryptInit_ex(aead->dec, NULL, NULL, NULL, nonce) != 1)
		openssl_fail("AES-256-GCM nonce setup");
	if (aadlen > 0 &&
		EVP_DecryptUpdate(aead->dec, NULL, &outl, aad, (int) aadlen) != 1)
		openssl_fail("AES-256-GCM associated data");
	if (ctlen > 0 &&
		EVP_DecryptUpdate(aead->dec, pt, &outl, ct, (int) ctlen) != 1)
		openssl_fail("AES-256-GCM decryption");
	if (EVP_CIPHER_CTX_ctrl(aead->dec, EVP_CTRL_GCM_SET_TAG, UTILIX_TAG_LEN, tagcopy) != 1)
		openssl_fail("AES-256-GCM tag setup");
	if (EVP_DecryptFinal_ex(aead->dec, pt + (ctlen > 0 ? outl : 0), &outl) != 1)
	{
		ERR_clear_error();
		if (ctlen > 0)
			OPENSSL_cleanse(pt, ctlen);
		return false;
	}
	return true;
}

/*
 * scrypt (RFC 7914) for password hashes.  log2n, r and p come from the
 * stored hash or the settings; maxmem is sized for them.
 */
void
utilix_scrypt(const char *pass, size_t passlen, const uint8 *salt, size_t saltlen,
			  int log2n, int r, int p, uint8 *out, size_t outlen)
{
	uint64		n = UINT64CONST(1) << log2n;
	uint64		maxmem = (uint64) 128 * r * (n + p + 2) + 1024 * 1024;

	if (EVP_PBE_scrypt(pass, passlen, salt, saltlen, n, (uint64) r, (uint64) p,
					   maxmem, out, outlen) != 1)
		openssl_fail("scrypt");
}

bool
utilix_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void
utilix_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

/*
 * Memory for secrets: a chunk in the given context whose bytes are wiped
 * when the context is reset or deleted (including on transaction abort).
 */
typedef struct SecretChunk
{
	MemoryContextCallback cb;
	Size		len;
	uint8		data[FLEXIBLE_ARRAY_MEMBER];
} SecretChunk;

static void
secret_chunk_wipe(void *arg)
{
	SecretChunk *chunk = (SecretChunk *) arg;

	OPENSSL_cleanse(chunk->data, chunk->len);
}

void *
utilix_alloc_secret(MemoryContext cxt, Size len)
{
	SecretChunk *chunk;

	chunk = MemoryContextAllocZero(cxt, offsetof(SecretChunk, data) + len);
	chunk->len = len;
	chunk->cb.func = secret_chunk_wipe;
	chunk->cb.arg = chunk;
	MemoryContextRegisterResetCallback(cxt, &chunk->cb);
	return chunk->data;
}
