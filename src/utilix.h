/*
 * utilix.h
 *		Declarations shared by the C files of utilix.
 *
 * Each concern lives in its own file: crypto.c (the only file that includes
 * OpenSSL), cryptofuncs.c (SQL access to it), keys.c (master key and
 * subkeys), codec.c (text encodings), context.c (signed tenant context),
 * token.c (its token format), tenancy.c (protection helpers and hooks),
 * envelope.c (ciphertext format), keyring.c (tenant data keys), encrypt.c
 * (encrypted types and the seal trigger), users.c (passwords and rights),
 * pwhash.c (password hash strings), worker.c (retention worker), redact.c
 * (log redaction).  utilix.c holds _PG_init and the few helpers
 * every file needs.
 */
#ifndef UTILIX_H
#define UTILIX_H

#include "fmgr.h"
#include "utils/timestamp.h"

#define UTILIX_KEY_LEN		32
#define UTILIX_NONCE_LEN	12
#define UTILIX_TAG_LEN		16
#define UTILIX_MAC_LEN		32

/* utilix.c */
extern bool utilix_preloaded;
extern void utilix_require_preload(void);
extern bool utilix_internal_depth_active(void);
extern void utilix_begin_internal(Oid *save_userid, int *save_sec);
extern void utilix_end_internal(Oid save_userid, int save_sec);
extern uint64 utilix_cache_generation;
extern Oid utilix_catalog_relid(const char *relname);

/* crypto.c: every OpenSSL call of the project */
typedef struct UtilixAead UtilixAead;

extern void utilix_random_bytes(uint8 *buf, size_t len);
extern void utilix_nonce(uint8 out[UTILIX_NONCE_LEN]);
extern void utilix_hkdf_sha256(const uint8 *ikm, size_t ikmlen,
							   const uint8 *salt, size_t saltlen,
							   const uint8 *info, size_t infolen,
							   uint8 *out, size_t outlen);
extern void utilix_hmac_sha256(const uint8 *key, size_t keylen,
							   const uint8 *data, size_t len,
							   uint8 out[UTILIX_MAC_LEN]);
extern void utilix_sha256(const uint8 *data, size_t len, uint8 out[32]);
extern UtilixAead *utilix_aead_new(const uint8 key[UTILIX_KEY_LEN]);
extern void utilix_aead_free(UtilixAead *aead);
typedef struct UtilixPrf UtilixPrf;
extern UtilixPrf *utilix_prf_new(const uint8 key[UTILIX_KEY_LEN]);
extern void utilix_prf_free(UtilixPrf *prf);
extern void utilix_prf_block(UtilixPrf *prf, const uint8 in[16], uint8 out[16]);
extern void utilix_aead_seal(UtilixAead *aead, const uint8 *nonce,
							 const uint8 *aad, size_t aadlen,
							 const uint8 *pt, size_t ptlen,
							 uint8 *ct, uint8 tag[UTILIX_TAG_LEN]);
extern bool utilix_aead_open(UtilixAead *aead, const uint8 *nonce,
							 const uint8 *aad, size_t aadlen,
							 const uint8 *ct, size_t ctlen,
							 const uint8 tag[UTILIX_TAG_LEN], uint8 *pt);
extern void utilix_scrypt(const char *pass, size_t passlen, const uint8 *salt, size_t saltlen,
						  int log2n, int r, int p, uint8 *out, size_t outlen);
extern bool utilix_ct_equal(const void *a, const void *b, size_t len);
extern void utilix_wipe(void *p, size_t len);
extern void *utilix_alloc_secret(MemoryContext cxt, Size len);

/* codec.c */
extern char *utilix_b64url_encode(const uint8 *src, size_t len);
extern bool utilix_b64url_decode(const char *src, size_t srclen,
								 uint8 *dst, size_t dstcap, size_t *dstlen);
extern size_t utilix_b64url_decoded_max(size_t srclen);

/* envelope.c: the stored form of an encrypted value */
#define UTILIX_ENV_MAGIC		"\xffUTXE"
#define UTILIX_PROBE_MAGIC		"\xffUTXP"
#define UTILIX_ENV_MAGIC_LEN	5
#define UTILIX_ENV_FORMAT		0x01
#define UTILIX_ENV_FLAG_BIDX	0x01
#define UTILIX_ENV_FLAG_WITHHELD 0x02	/* only in the withheld form, never stored */
#define UTILIX_ENV_FLAG_MASKED	0x04	/* the blind index is stored masked (with 0x01) */
#define UTILIX_BIDX_LEN			16
#define UTILIX_PROBE_LEN		(UTILIX_ENV_MAGIC_LEN + 1 + 8 + 8 + UTILIX_BIDX_LEN)
#define UTILIX_ARMOUR_PREFIX	"utxe1:"
#define UTILIX_ARMOUR_PREFIX_LEN 6

typedef struct UtilixEnvelope
{
	int64		tenant;
	int64		column_id;
	uint32		key_version;
	bool		has_bidx;
	bool		masked;			/* bidx is the blind index XOR its mask */
	const uint8 *header;		/* the associated data: header_len bytes */
	size_t		header_len;
	const uint8 *bidx;
	const uint8 *nonce;
	const uint8 *tag;
	const uint8 *ct;
	size_t		ct_len;
	bool		withheld;		/* parsed by utilix_envelope_parse_withheld */
} UtilixEnvelope;

extern bool utilix_is_sealed(const uint8 *data, size_t len);
extern bool utilix_is_probe(const uint8 *data, size_t len);
extern size_t utilix_envelope_header_len(bool has_bidx);
extern bool utilix_envelope_parse(const uint8 *data, size_t len, UtilixEnvelope *env);
extern size_t utilix_envelope_write_header(uint8 *out, int64 tenant, int64 column_id,
										   uint32 key_version, const uint8 *bidx,
										   bool masked);
extern void utilix_probe_write(uint8 *out, int64 tenant, int64 column_id, const uint8 *bidx);
extern void utilix_probe_parse(const uint8 *data, int64 *tenant, int64 *column_id,
							   const uint8 **bidx);
extern char *utilix_armour(const uint8 *data, size_t len);
extern bool utilix_has_armour_prefix(const char *s, size_t len);
extern bool utilix_dearmour(const char *s, size_t len, uint8 **out, size_t *outlen);
extern bool utilix_envelope_parse_withheld(const uint8 *data, size_t len, UtilixEnvelope *env);
extern uint8 *utilix_envelope_withhold(const uint8 *data, size_t len, const UtilixEnvelope *env);
extern bool utilix_dearmour_withheld(const char *s, size_t len, uint8 **out, size_t *outlen);

/* keyring.c: per-tenant data keys */
typedef struct UtilixTenantKey
{
	int64		tenant;
	uint32		version;
	UtilixAead *aead;
} UtilixTenantKey;

extern UtilixTenantKey *utilix_tenant_key(int64 tenant, uint32 version, bool missing_ok);
extern UtilixTenantKey *utilix_active_tenant_key(int64 tenant);
extern void utilix_blind_index(int64 tenant, int64 column_id, const uint8 *data, size_t len,
							   uint8 out[UTILIX_BIDX_LEN]);
extern bool utilix_blind_mask(int64 tenant, int64 column_id, const uint8 *nonce,
							  uint8 out[UTILIX_BIDX_LEN], bool missing_ok);
extern void KeyringInit(void);
extern void EncryptInit(void);

/* keys.c */
typedef enum UtilixSubkey
{
	UTILIX_SUBKEY_TOKEN = 0,	/* context token signing */
	UTILIX_SUBKEY_WRAP,			/* wrapping of tenant data keys */
	UTILIX_SUBKEY_BLIND,		/* blind index */
	UTILIX_SUBKEY_CHAIN,		/* access log chain */
	UTILIX_SUBKEY_CHECK,		/* key-check value */
	UTILIX_NUM_SUBKEYS
} UtilixSubkey;

extern void KeysInit(void);
extern bool utilix_master_key_loaded(void);
extern const uint8 *utilix_subkey_unchecked(UtilixSubkey which);
extern const uint8 *utilix_subkey(UtilixSubkey which);
extern void utilix_require_master_key(void);
extern const uint8 *utilix_previous_wrap_subkey(void);

/* context.c */
typedef struct UtilixContext
{
	int64		tenant;
	TimestampTz issued_at;
	TimestampTz expires_at;
	uint8		token_id[16];
	uint8		realm[16];		/* the database the token was issued in */
	uint8		flags;
	char		app_user[256];
	char		clearance[64];
	int			nrights;
	char		rights[32][64];
} UtilixContext;

#define UTILIX_CTX_FLAG_PASSWORD_CHANGE	0x01
#define UTILIX_CTX_FLAG_BOUND_ROLE		0x80

extern void ContextInit(void);

/* token.c: the format of a context token (context.c issues and sets them) */
#define UTILIX_TOKEN_PREFIX			"utx1."
#define UTILIX_TOKEN_PREFIX_LEN		5
#define UTILIX_TOKEN_PAYLOAD_MAX	2600
#define UTILIX_TOKEN_PAYLOAD_VERSION 1

extern bool utilix_token_word_ok(const char *s, size_t len);
extern bool utilix_token_app_user_ok(const char *s, size_t len);
extern void utilix_token_mac(const uint8 *key, const uint8 *payload, size_t len,
							 uint8 mac[UTILIX_MAC_LEN]);
extern bool utilix_token_parse(const char *token, UtilixContext *out,
							   const char **why);
extern const UtilixContext *utilix_current_context(bool missing_ok);
extern const UtilixContext *utilix_context_for_read(void);
extern const UtilixContext *utilix_context_unchecked(void);

/* tenancy.c */
extern void TenancyInit(void);
struct RelationData;
extern bool utilix_relation_is_protected(struct RelationData *rel);
extern void utilix_copy_end_noforce(void);
extern Oid	utilix_acting_writer(void);
extern bool utilix_reseal_mode;

/* ddlgate.c: DDL a role under row level security may run on protected tables */
extern void utilix_ddl_gate(struct Node *parsetree, bool *sanitize);
struct LockStmt;
struct List;
extern void utilix_gate_lock(struct LockStmt *stmt, struct List *relids);

/* pwhash.c: the text form of a password hash (users.c computes and checks them) */
#define UTILIX_PW_SALT_LEN	16
#define UTILIX_PW_HASH_LEN	32

extern char *utilix_format_password_hash(int log2n, int r, int p, const uint8 *salt,
										 const uint8 *hash);
extern bool utilix_parse_password_hash(const char *s, int *log2n, int *r, int *p,
									   uint8 *salt, uint8 *hash);

/* users.c */
extern void UsersInit(void);
extern void WorkerInit(void);
extern bool utilix_worker_transaction(const char *activity, void (*work) (void *arg), void *arg,
									  bool *installed);
extern bool utilix_context_has_right(const UtilixContext *ctx, const char *right);
extern void utilix_default_rights(UtilixContext *ctx);

/* accesslog.c */
extern void AccessLogInit(void);
extern void utilix_access_log_launch_writers(void);

/* redact.c */
extern void RedactInit(void);
extern bool utilix_text_is_sensitive(const char *text);
extern char *utilix_mask_literals(const char *text);
extern char *utilix_mask_literals_same_length(const char *text);
extern char *utilix_normalise_query(const char *text);
extern bool utilix_redact_literals_enabled(void);
extern void utilix_note_plaintext(void);
extern bool utilix_statement_saw_plaintext(void);

/* encrypt.c */
extern bool utilix_relation_has_encrypted_columns(Oid relid);

#endif							/* UTILIX_H */
