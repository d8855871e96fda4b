/*
 * gen_seeds.c
 *		Writes the generated part of the seed corpus: for every harness,
 *		valid inputs and near misses (one rule broken each), named
 *		gen-valid-* and gen-near-*.  Built and run by `test/fuzz/run.sh
 *		seeds`; the output is committed under test/fuzz/corpus/.
 *
 * Tokens and spills are signed with the fixed key of pgstub.c, the key
 * the harnesses use.  Everything is deterministic.
 */
#include "pgstub.h"

#include <stdio.h>
#include <stdlib.h>

#include "accesslog.h"

static const char *outdir;

static void
put_file(const char *harness, const char *name, const void *data, size_t len)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s/gen-%s", outdir, harness, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		fprintf(stderr, "gen_seeds: cannot write %s\n", path);
		exit(1);
	}
}

/* a seed whose first byte is a mode or flags byte */
static void
put_mode(const char *harness, const char *name, uint8 mode, const void *data, size_t len)
{
	uint8	   *buf = malloc(len + 1);

	buf[0] = mode;
	memcpy(buf + 1, data, len);
	put_file(harness, name, buf, len + 1);
	free(buf);
}

static void
put_str(const char *harness, const char *name, const char *s)
{
	put_file(harness, name, s, strlen(s));
}

/* ---------- base64url ---------- */

static void
gen_b64url(void)
{
	uint8		all[256];
	char	   *s;

	put_str("b64url", "valid-empty", "");
	put_str("b64url", "valid-1", utilix_b64url_encode((const uint8 *) "f", 1));
	put_str("b64url", "valid-2", utilix_b64url_encode((const uint8 *) "fo", 2));
	put_str("b64url", "valid-3", utilix_b64url_encode((const uint8 *) "foo", 3));
	put_str("b64url", "valid-6", utilix_b64url_encode((const uint8 *) "foobar", 6));
	for (int i = 0; i < 256; i++)
		all[i] = (uint8) i;
	s = utilix_b64url_encode(all, sizeof(all));
	put_str("b64url", "valid-all-bytes", s);
	put_str("b64url", "valid-dash-underscore", "-_-_");
	put_str("b64url", "near-padding", "Zm8=");
	put_str("b64url", "near-padding-2", "Zg==");
	put_str("b64url", "near-trailing-bits-1", "Zh");
	put_str("b64url", "near-trailing-bits-2", "Zm9");
	put_str("b64url", "near-length-mod-4-is-1", "Zm9vY");
	put_str("b64url", "near-plus-slash", "ab+/");
	put_str("b64url", "near-space", "Zm9v YmFy");
	put_str("b64url", "near-newline", "Zm9v\n");
	put_file("b64url", "near-nul", "Zm\0v", 4);
}

/* ---------- context tokens ---------- */

typedef struct Ctx
{
	int64		tenant;
	int64		issued;
	int64		expires;
	uint8		flags;
	const char *user;
	const char *clearance;
	int			nrights;
	const char *rights[40];
} Ctx;

static size_t
put64(uint8 *p, int64 v)
{
	for (int i = 7; i >= 0; i--)
	{
		p[i] = (uint8) ((uint64) v & 0xFF);
		v = (int64) ((uint64) v >> 8);
	}
	return 8;
}

static size_t
put_lstr(uint8 *p, const char *s)
{
	size_t		n = strlen(s);

	p[0] = (uint8) n;
	memcpy(p + 1, s, n);
	return n + 1;
}

static size_t
encode_payload(const Ctx *c, uint8 *p, uint8 version)
{
	size_t		pos = 0;

	p[pos++] = version;
	pos += put64(p + pos, c->tenant);
	pos += put64(p + pos, c->issued);
	pos += put64(p + pos, c->expires);
	memset(p + pos, 0x11, 16);	/* token id */
	pos += 16;
	memset(p + pos, 0x22, 16);	/* realm */
	pos += 16;
	p[pos++] = c->flags;
	pos += put_lstr(p + pos, c->user);
	pos += put_lstr(p + pos, c->clearance);
	p[pos++] = (uint8) c->nrights;
	for (int i = 0; i < c->nrights; i++)
		pos += put_lstr(p + pos, c->rights[i]);
	return pos;
}

static char *
sign(const uint8 *payload, size_t len)
{
	uint8		mac[UTILIX_MAC_LEN];

	utilix_token_mac(pgstub_key, payload, len, mac);
	return psprintf("%s%s.%s", UTILIX_TOKEN_PREFIX, utilix_b64url_encode(payload, len),
					utilix_b64url_encode(mac, sizeof(mac)));
}

#define TEXT 0x00				/* fuzz_token.c: even first byte, token text */
#define PAYLOAD 0x01			/* odd: a payload the harness signs */

static void
token_pair(const char *name, const uint8 *payload, size_t len)
{
	char		n[256];

	snprintf(n, sizeof(n), "%s-payload", name);
	put_mode("token", n, PAYLOAD, payload, len);
	if (len <= UTILIX_TOKEN_PAYLOAD_MAX)
	{
		char	   *t = sign(payload, len);

		snprintf(n, sizeof(n), "%s-text", name);
		put_mode("token", n, TEXT, t, strlen(t));
	}
}

static void
gen_token(void)
{
	static char long_user[256];
	static char long_words[33][64];
	static char word64[65];		/* a word of 64 bytes: one too long */
	Ctx			basic = {1, 1000, 2000, 0, "alice", "", 0, {NULL}};
	Ctx			full = {42, 786000000000000LL, 786000900000000LL, UTILIX_CTX_FLAG_PASSWORD_CHANGE,
	"alice@example.com", "secret", 4, {"read", "write", "admin", "audit"}};
	Ctx			max;
	Ctx			c;
	uint8		p[UTILIX_TOKEN_PAYLOAD_MAX + 4096];
	size_t		len;
	char	   *t;

	memset(long_user, 'u', 255);
	for (int i = 0; i < 33; i++)
	{
		memset(long_words[i], 'a' + i % 26, 63);
		long_words[i][1] = '0' + i % 10;
	}
	memset(word64, 'w', 64);
	max = (Ctx) {PG_INT64_MAX, PG_INT64_MIN, PG_INT64_MAX, 0xff, long_user, long_words[0], 32, {NULL}};
	for (int i = 0; i < 32; i++)
		max.rights[i] = long_words[i];

	/* valid */
	len = encode_payload(&basic, p, 1);
	token_pair("valid-basic", p, len);
	len = encode_payload(&full, p, 1);
	token_pair("valid-full", p, len);
	len = encode_payload(&max, p, 1);
	token_pair("valid-max", p, len);
	c = full;
	c.flags = UTILIX_CTX_FLAG_BOUND_ROLE;
	c.clearance = "";
	c.user = "x";
	len = encode_payload(&c, p, 1);
	token_pair("valid-short", p, len);

	/* near misses of the payload */
	len = encode_payload(&basic, p, 2);
	token_pair("near-version-2", p, len);
	c = basic, c.tenant = 0;
	len = encode_payload(&c, p, 1);
	token_pair("near-tenant-0", p, len);
	c = basic, c.tenant = -1;
	len = encode_payload(&c, p, 1);
	token_pair("near-tenant-negative", p, len);
	c = basic, c.expires = c.issued;
	len = encode_payload(&c, p, 1);
	token_pair("near-expires-at-issue", p, len);
	c = basic, c.user = "";
	len = encode_payload(&c, p, 1);
	token_pair("near-user-empty", p, len);
	c = basic, c.user = "ali\x1f" "ce";
	len = encode_payload(&c, p, 1);
	token_pair("near-user-control", p, len);
	c = basic, c.user = "ali\x7f" "ce";
	len = encode_payload(&c, p, 1);
	token_pair("near-user-del", p, len);
	c = basic, c.clearance = "Secret";
	len = encode_payload(&c, p, 1);
	token_pair("near-clearance-upper", p, len);
	c = basic, c.nrights = 1, c.rights[0] = "1read";
	len = encode_payload(&c, p, 1);
	token_pair("near-right-digit-first", p, len);
	c = basic, c.nrights = 2, c.rights[0] = "read", c.rights[1] = "";
	len = encode_payload(&c, p, 1);
	token_pair("near-right-empty", p, len);
	c = basic, c.nrights = 1, c.rights[0] = "re-ad";
	len = encode_payload(&c, p, 1);
	token_pair("near-right-dash", p, len);
	c = max, c.nrights = 33;
	c.rights[32] = long_words[32];
	len = encode_payload(&c, p, 1);
	token_pair("near-33-rights", p, len);
	c = max;
	c.rights[31] = word64;
	len = encode_payload(&c, p, 1);
	token_pair("near-right-64-bytes", p, len);
	c = basic;
	c.clearance = word64;
	len = encode_payload(&c, p, 1);
	token_pair("near-clearance-64-bytes", p, len);
	len = encode_payload(&basic, p, 1);
	p[len] = 0;
	token_pair("near-trailing-byte", p, len + 1);
	token_pair("near-truncated-by-1", p, len - 1);
	token_pair("near-fixed-part-only", p, 58);
	token_pair("near-fixed-part-short", p, 57);
	token_pair("near-empty", p, 0);
	len = encode_payload(&basic, p, 1);
	p[58] = 200;				/* user length beyond the end */
	token_pair("near-user-length-overrun", p, len);
	len = encode_payload(&full, p, 1);
	p[len - 1 - (5 + 6 + 6 + 6)] = 5;	/* nrights 5 with 4 present */
	token_pair("near-nrights-overrun", p, len);
	memset(p, 0, UTILIX_TOKEN_PAYLOAD_MAX + 1);
	len = encode_payload(&basic, p, 1);
	put_mode("token", "near-payload-too-long-payload", PAYLOAD, p, UTILIX_TOKEN_PAYLOAD_MAX + 1);

	/* near misses of the text */
	len = encode_payload(&full, p, 1);
	t = sign(p, len);
	t[strlen(t) - 1] ^= 1;
	put_mode("token", "near-bad-mac-text", TEXT, t, strlen(t));
	t = sign(p, len);
	t[strlen(t) - 3] = '\0';	/* MAC of 30 bytes */
	put_mode("token", "near-short-mac-text", TEXT, t, strlen(t));
	t = psprintf("%sAA", sign(p, len));	/* MAC of 33 bytes */
	put_mode("token", "near-long-mac-text", TEXT, t, strlen(t));
	t = sign(p, len);
	t[3] = '2';
	put_mode("token", "near-prefix-utx2-text", TEXT, t, strlen(t));
	t = psprintf("%s.", sign(p, len));
	put_mode("token", "near-two-dots-text", TEXT, t, strlen(t));
	t = psprintf("%s=", sign(p, len));
	put_mode("token", "near-padding-text", TEXT, t, strlen(t));
	t = psprintf("%s%s", UTILIX_TOKEN_PREFIX, utilix_b64url_encode(p, len));
	put_mode("token", "near-no-dot-text", TEXT, t, strlen(t));
	put_mode("token", "near-prefix-only-text", TEXT, "utx1.", 5);
	put_mode("token", "near-prefix-dot-text", TEXT, "utx1..", 6);
	{
		char	   *big = malloc(4200);

		memset(big, 'A', 4200);
		memcpy(big, "utx1.", 5);
		big[4000] = '.';
		put_mode("token", "near-too-long-text", TEXT, big, 4097);
		free(big);
	}
}

/* ---------- sealed values and probes ---------- */

static size_t
envelope(uint8 *out, int64 tenant, int64 column, uint32 version, bool bidx, size_t ctlen)
{
	uint8		b[UTILIX_BIDX_LEN];
	size_t		pos;

	memset(b, 0xb1, sizeof(b));
	pos = utilix_envelope_write_header(out, tenant, column, version, bidx ? b : NULL, false);
	memset(out + pos, 0x4e, UTILIX_NONCE_LEN);	/* nonce */
	pos += UTILIX_NONCE_LEN;
	memset(out + pos, 0x7a, UTILIX_TAG_LEN);	/* tag */
	pos += UTILIX_TAG_LEN;
	for (size_t i = 0; i < ctlen; i++)
		out[pos++] = (uint8) (0xc0 + i);
	return pos;
}

/* every envelope seed also becomes an armour seed */
static void
put_envelope(const char *name, const uint8 *v, size_t len)
{
	char	   *a = utilix_armour(v, len);

	put_file("envelope", name, v, len);
	put_str("armour", name, a);
}

static void
gen_envelope(void)
{
	uint8		v[512];
	uint8		b[UTILIX_BIDX_LEN];
	size_t		len;

	len = envelope(v, 1, 1, 1, false, 0);
	put_envelope("valid-empty-ct", v, len);
	len = envelope(v, 7, 123456, 3, false, 5);
	put_envelope("valid-short", v, len);
	len = envelope(v, 7, 123456, 3, true, 40);
	put_envelope("valid-bidx", v, len);
	len = envelope(v, PG_INT64_MAX, -1, PG_UINT32_MAX, true, 1);
	put_envelope("valid-extremes", v, len);
	len = envelope(v, 7, 123456, 3, false, 300);
	put_envelope("valid-long", v, len);

	len = envelope(v, 7, 123456, 3, false, 5);
	v[5] = 0x02;
	put_envelope("near-format-2", v, len);
	len = envelope(v, 7, 123456, 3, false, 5);
	v[6] = 0x02;
	put_envelope("near-flags-2", v, len);
	len = envelope(v, 7, 123456, 3, true, 5);
	v[6] = 0x03;
	put_envelope("near-flags-3", v, len);
	/* the withheld form of a searchable value: flags 0x03, blind index zeroed */
	len = envelope(v, 7, 123456, 3, true, 5);
	v[6] = 0x03;
	memset(v + utilix_envelope_header_len(true) - UTILIX_BIDX_LEN, 0, UTILIX_BIDX_LEN);
	put_envelope("valid-withheld", v, len);
	/* a masked blind index (flags 0x05), its withheld form (0x07), and 0x04 alone */
	len = envelope(v, 7, 123456, 3, true, 5);
	v[6] = 0x05;
	put_envelope("valid-bidx-masked", v, len);
	memset(v + utilix_envelope_header_len(true) - UTILIX_BIDX_LEN, 0, UTILIX_BIDX_LEN);
	v[6] = 0x07;
	put_envelope("valid-withheld-masked", v, len);
	len = envelope(v, 7, 123456, 3, false, 5);
	v[6] = 0x04;
	put_envelope("near-flags-4", v, len);
	len = envelope(v, 0, 123456, 3, false, 5);
	put_envelope("near-tenant-0", v, len);
	len = envelope(v, -7, 123456, 3, false, 5);
	put_envelope("near-tenant-negative", v, len);
	len = envelope(v, 7, 0, 3, false, 5);
	put_envelope("near-column-0", v, len);
	len = envelope(v, 7, 123456, 0, false, 5);
	put_envelope("near-key-version-0", v, len);
	len = envelope(v, 7, 123456, 3, false, 0);
	put_envelope("near-one-byte-short", v, len - 1);
	len = envelope(v, 7, 123456, 3, true, 0);
	put_envelope("near-bidx-one-byte-short", v, len - 1);
	put_envelope("near-magic-only", (const uint8 *) UTILIX_ENV_MAGIC, UTILIX_ENV_MAGIC_LEN);
	put_envelope("near-magic-format", (const uint8 *) UTILIX_ENV_MAGIC "\x01", UTILIX_ENV_MAGIC_LEN + 1);
	put_envelope("near-plaintext", (const uint8 *) "hello, world", 12);
	len = envelope(v, 7, 123456, 3, false, 5);
	v[0] = 'x';
	put_envelope("near-magic-byte-0", v, len);

	memset(b, 0xb1, sizeof(b));
	utilix_probe_write(v, 7, 123456, b);
	put_envelope("valid-probe", v, UTILIX_PROBE_LEN);
	v[UTILIX_ENV_MAGIC_LEN] = 2;
	put_envelope("near-probe-format-2", v, UTILIX_PROBE_LEN);
	utilix_probe_write(v, 7, 123456, b);
	put_envelope("near-probe-short", v, UTILIX_PROBE_LEN - 1);
	v[UTILIX_PROBE_LEN] = 0;
	put_envelope("near-probe-long", v, UTILIX_PROBE_LEN + 1);

	/* armour only */
	len = envelope(v, 7, 123456, 3, true, 40);
	put_str("armour", "near-prefix-only", "utxe1:");
	put_str("armour", "near-prefix-utxe2", psprintf("utxe2:%s", utilix_armour(v, len) + 6));
	put_str("armour", "near-prefix-upper", psprintf("UTXE1:%s", utilix_armour(v, len) + 6));
	put_str("armour", "near-padding", psprintf("%s=", utilix_armour(v, len)));
	put_str("armour", "near-newline", psprintf("%s\n", utilix_armour(v, len)));
	put_str("armour", "near-truncated", psprintf("%.*s", (int) strlen(utilix_armour(v, len)) - 1,
												utilix_armour(v, len)));
	put_str("armour", "near-no-prefix", utilix_armour(v, len) + 6);
}

/* ---------- password hashes ---------- */

static void
gen_pwhash(void)
{
	uint8		salt[UTILIX_PW_SALT_LEN];
	uint8		hash[UTILIX_PW_HASH_LEN];
	uint8		big[64];
	char	   *s64;
	char	   *h64;

	for (int i = 0; i < UTILIX_PW_SALT_LEN; i++)
		salt[i] = (uint8) (i * 17 + 3);
	for (int i = 0; i < UTILIX_PW_HASH_LEN; i++)
		hash[i] = (uint8) (i * 29 + 250);
	memset(big, 0xa5, sizeof(big));
	s64 = utilix_b64url_encode(salt, sizeof(salt));
	h64 = utilix_b64url_encode(hash, sizeof(hash));

	put_str("pwhash", "valid-default", utilix_format_password_hash(15, 8, 1, salt, hash));
	put_str("pwhash", "valid-lowest", utilix_format_password_hash(10, 1, 1, salt, hash));
	put_str("pwhash", "valid-highest", utilix_format_password_hash(22, 32, 16, salt, hash));

	put_str("pwhash", "near-ln-9", utilix_format_password_hash(9, 8, 1, salt, hash));
	put_str("pwhash", "near-ln-23", utilix_format_password_hash(23, 8, 1, salt, hash));
	put_str("pwhash", "near-r-0", utilix_format_password_hash(15, 0, 1, salt, hash));
	put_str("pwhash", "near-r-33", utilix_format_password_hash(15, 33, 1, salt, hash));
	put_str("pwhash", "near-p-0", utilix_format_password_hash(15, 8, 0, salt, hash));
	put_str("pwhash", "near-p-17", utilix_format_password_hash(15, 8, 17, salt, hash));
	put_str("pwhash", "near-ln-negative", utilix_format_password_hash(-15, 8, 1, salt, hash));
	put_str("pwhash", "near-ln-huge", psprintf("$scrypt$ln=99999999999999999999,r=8,p=1$%s$%s", s64, h64));
	put_str("pwhash", "near-salt-15", psprintf("$scrypt$ln=15,r=8,p=1$%s$%s",
											   utilix_b64url_encode(salt, 15), h64));
	put_str("pwhash", "near-salt-17", psprintf("$scrypt$ln=15,r=8,p=1$%s$%s",
											   utilix_b64url_encode(big, 17), h64));
	put_str("pwhash", "near-hash-31", psprintf("$scrypt$ln=15,r=8,p=1$%s$%s", s64,
											   utilix_b64url_encode(hash, 31)));
	put_str("pwhash", "near-hash-33", psprintf("$scrypt$ln=15,r=8,p=1$%s$%s", s64,
											   utilix_b64url_encode(big, 33)));
	put_str("pwhash", "near-hash-63-chars", psprintf("$scrypt$ln=15,r=8,p=1$%s$%s", s64,
													 utilix_b64url_encode(big, 47)));
	put_str("pwhash", "near-salt-64-chars", psprintf("$scrypt$ln=15,r=8,p=1$%s$%s",
													 utilix_b64url_encode(big, 48), h64));
	put_str("pwhash", "near-trailing", psprintf("$scrypt$ln=15,r=8,p=1$%s$%sx", s64, h64));
	put_str("pwhash", "near-trailing-dollar", psprintf("$scrypt$ln=15,r=8,p=1$%s$%s$", s64, h64));
	put_str("pwhash", "near-no-hash", psprintf("$scrypt$ln=15,r=8,p=1$%s$", s64));
	put_str("pwhash", "near-empty-salt", psprintf("$scrypt$ln=15,r=8,p=1$$%s", h64));
	put_str("pwhash", "near-padded-salt", psprintf("$scrypt$ln=15,r=8,p=1$%s==$%s", s64, h64));
	put_str("pwhash", "near-spaces", psprintf("$scrypt$ln= 15,r= 8,p= 1$%s$%s", s64, h64));
	put_str("pwhash", "near-plus", psprintf("$scrypt$ln=+15,r=+8,p=+1$%s$%s", s64, h64));
	put_str("pwhash", "near-leading-zeros", psprintf("$scrypt$ln=015,r=08,p=01$%s$%s", s64, h64));
	put_str("pwhash", "near-argon2", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
	put_str("pwhash", "near-md5", "md5c4ca4238a0b923820dcc509a6f75849b");
	put_str("pwhash", "near-empty", "");
}

/* ---------- access log spills ---------- */

#define FUZZ_DBOID 16384
#define SEAL 0x01				/* fuzz_spill.c: the harness appends the seal */
#define FIX_CRC 0x02			/* the harness sets each record's CRC */

static void
record(AlogRecord *r, uint64 seq, Oid dboid)
{
	memset(r, 0, sizeof(*r));
	r->epoch = 1700000000;
	r->seq = seq;
	r->dboid = dboid;
	r->pid = 4242;
	r->at = 786000000000000LL + (int64) seq;
	r->tenant = 7;
	r->has_tenant = true;
	r->kind = 1;
	r->outcome = 0;
	r->ntables = 1;
	r->client_port = 54321;
	r->queryid = 0x1234567890LL;
	strlcpy(r->app_user, "alice@example.com", sizeof(r->app_user));
	strlcpy(r->session_role, "app", sizeof(r->session_role));
	strlcpy(r->current_role, "app", sizeof(r->current_role));
	strlcpy(r->client_addr, "192.0.2.1", sizeof(r->client_addr));
	strlcpy(r->application_name, "psql", sizeof(r->application_name));
	strlcpy(r->query, "INSERT INTO patients VALUES ($1)", sizeof(r->query));
	strlcpy(r->tables[0].name, "public.patients", sizeof(r->tables[0].name));
	r->tables[0].ninserted = 1;
	record_set_crc(r);
}

/* header and n records; with seal, the seal too (a complete spill as utilix makes it) */
static size_t
spill(uint8 *out, int n, Oid dboid, bool seal)
{
	SpillHeader h;
	size_t		pos = 0;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, ALOG_SPILL_MAGIC, 8);
	h.record_size = sizeof(AlogRecord);
	memcpy(out, &h, sizeof(h));
	pos += sizeof(h);
	for (int i = 0; i < n; i++)
	{
		AlogRecord	r;

		record(&r, (uint64) i + 1, dboid);
		memcpy(out + pos, &r, sizeof(r));
		pos += sizeof(r);
	}
	if (seal)
	{
		utilix_hmac_sha256(pgstub_key, UTILIX_KEY_LEN, out, pos, out + pos);
		pos += UTILIX_MAC_LEN;
	}
	return pos;
}

static void
gen_spill(void)
{
	uint8	   *s = malloc(sizeof(SpillHeader) + 4 * sizeof(AlogRecord) + 64);
	size_t		len;

	len = spill(s, 1, FUZZ_DBOID, true);
	put_mode("spill", "valid-1-record-sealed", 0, s, len);
	len = spill(s, 0, FUZZ_DBOID, true);
	put_mode("spill", "valid-0-records-sealed", 0, s, len);
	len = spill(s, 2, FUZZ_DBOID, false);
	put_mode("spill", "valid-2-records", SEAL, s, len);
	len = spill(s, 1, FUZZ_DBOID, false);
	put_mode("spill", "valid-1-record-crc-by-harness", SEAL | FIX_CRC, s, len);

	len = spill(s, 1, FUZZ_DBOID, true);
	s[len - 1] ^= 1;
	put_mode("spill", "near-bad-seal", 0, s, len);
	len = spill(s, 1, FUZZ_DBOID, false);
	s[sizeof(SpillHeader) + 100] ^= 1;
	put_mode("spill", "near-bad-crc", SEAL, s, len);
	len = spill(s, 1, FUZZ_DBOID + 1, false);
	put_mode("spill", "near-other-database", SEAL, s, len);
	len = spill(s, 1, FUZZ_DBOID, false);
	put_mode("spill", "near-partial-record", SEAL, s, len - 1);
	len = spill(s, 1, FUZZ_DBOID, false);
	s[0] = 'X';
	put_mode("spill", "near-bad-magic", SEAL, s, len);
	len = spill(s, 1, FUZZ_DBOID, false);
	s[8] ^= 1;					/* record_size */
	put_mode("spill", "near-record-size", SEAL, s, len);
	len = spill(s, 0, FUZZ_DBOID, false);
	put_mode("spill", "near-header-short", SEAL, s, len - 1);
	put_mode("spill", "near-seal-only", SEAL, s, 0);
	len = spill(s, 1, FUZZ_DBOID, false);
	put_mode("spill", "near-unsealed", 0, s, len);
	free(s);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: gen_seeds CORPUS_DIR\n");
		return 2;
	}
	outdir = argv[1];
	gen_b64url();
	gen_token();
	gen_envelope();
	gen_pwhash();
	gen_spill();
	pgstub_reset();
	return 0;
}
