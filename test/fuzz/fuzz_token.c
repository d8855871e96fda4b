/*
 * fuzz_token.c
 *		Fuzzes utilix_token_parse() (token.c): the context tokens that any
 *		client may hand to utilix.set_context() or SET utilix.context.
 *
 * The first input byte picks what the rest is:
 *	even: the token text, as a client would send it.  Without the key the
 *		  fuzzer cannot forge a MAC, so this covers the outer form: the
 *		  prefix, the dot, both base64url parts, the length limits.
 *	odd:  a payload, which the harness signs with the fixed key of pgstub.c
 *		  and wraps as "utx1." payload "." MAC, so that the payload parser
 *		  behind the MAC check is reached with anything at all.
 *
 * Checked besides memory safety: a parsed context obeys the format's
 * rules (positive tenant, expiry after issue, a user name of 1 to 255
 * bytes without control characters, clearance and at most 32 rights that
 * are lower-case words, every string terminated inside its field), and a
 * signed payload that parses encodes back to exactly the same bytes; one
 * that does not parse is refused for its contents, not for its signature.
 * The payload parser is also run directly on an exact-size copy, and must
 * agree.
 */
#include "pgstub.h"

/*
 * token.c itself, so that its static payload parser can also be called on
 * a buffer of exactly the payload's size: behind utilix_token_parse() the
 * payload sits in a larger stack buffer, where AddressSanitizer would not
 * see a read past its end.
 */
#include "../../src/token.c"

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

static bool
is_word(const char *s)
{
	size_t		len = strnlen(s, 64);

	if (len == 0 || len > 63 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static void
check_context(const UtilixContext *c)
{
	size_t		ulen = strnlen(c->app_user, sizeof(c->app_user));

	FUZZ_CHECK(c->tenant > 0);
	FUZZ_CHECK(c->expires_at > c->issued_at);
	FUZZ_CHECK(ulen >= 1 && ulen < sizeof(c->app_user));
	for (size_t i = 0; i < ulen; i++)
		FUZZ_CHECK((unsigned char) c->app_user[i] >= 0x20 && c->app_user[i] != 0x7f);
	FUZZ_CHECK(strnlen(c->clearance, sizeof(c->clearance)) < sizeof(c->clearance));
	FUZZ_CHECK(c->clearance[0] == '\0' || is_word(c->clearance));
	FUZZ_CHECK(c->nrights >= 0 && c->nrights <= 32);
	for (int i = 0; i < c->nrights; i++)
		FUZZ_CHECK(is_word(c->rights[i]));
}

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
put_str(uint8 *p, const char *s)
{
	size_t		n = strlen(s);

	p[0] = (uint8) n;
	memcpy(p + 1, s, n);
	return n + 1;
}

/* The payload of a context, written from the format's description (not from context.c). */
static size_t
encode_payload(const UtilixContext *c, uint8 *p)
{
	size_t		pos = 0;

	p[pos++] = 1;
	pos += put64(p + pos, c->tenant);
	pos += put64(p + pos, c->issued_at);
	pos += put64(p + pos, c->expires_at);
	memcpy(p + pos, c->token_id, 16);
	pos += 16;
	memcpy(p + pos, c->realm, 16);
	pos += 16;
	p[pos++] = c->flags;
	pos += put_str(p + pos, c->app_user);
	pos += put_str(p + pos, c->clearance);
	p[pos++] = (uint8) c->nrights;
	for (int i = 0; i < c->nrights; i++)
		pos += put_str(p + pos, c->rights[i]);
	return pos;
}

static void
fuzz_text(const uint8 *data, size_t size)
{
	char	   *token = malloc(size + 1);
	UtilixContext ctx;
	const char *why = NULL;

	memcpy(token, data, size);
	token[size] = '\0';
	if (utilix_token_parse(token, &ctx, &why))
		check_context(&ctx);
	else
		FUZZ_CHECK(why != NULL);
	free(token);
}

static void
fuzz_signed_payload(const uint8 *payload, size_t plen)
{
	uint8		mac[UTILIX_MAC_LEN] = {0};
	char	   *p64;
	char	   *m64;
	char	   *token;
	UtilixContext ctx;
	const char *why = NULL;
	bool		ok;

	/* utilix_token_mac() takes at most UTILIX_TOKEN_PAYLOAD_MAX bytes, as the parser does */
	if (plen <= UTILIX_TOKEN_PAYLOAD_MAX)
		utilix_token_mac(pgstub_key, payload, plen, mac);
	p64 = utilix_b64url_encode(payload, plen);
	m64 = utilix_b64url_encode(mac, sizeof(mac));
	token = psprintf("%s%s.%s", UTILIX_TOKEN_PREFIX, p64, m64);
	ok = utilix_token_parse(token, &ctx, &why);
	{
		UtilixContext direct;
		bool		direct_ok = parse_payload(payload, plen, &direct);

		/* a longer payload never reaches parse_payload() in the server */
		if (plen <= UTILIX_TOKEN_PAYLOAD_MAX)
			FUZZ_CHECK(direct_ok == ok);
	}
	if (plen > UTILIX_TOKEN_PAYLOAD_MAX)
	{
		FUZZ_CHECK(!ok);
		return;
	}
	if (ok)
	{
		uint8		again[UTILIX_TOKEN_PAYLOAD_MAX + 64];
		size_t		alen;

		check_context(&ctx);
		alen = encode_payload(&ctx, again);
		FUZZ_CHECK(alen == plen && memcmp(again, payload, plen) == 0);
	}
	else
		FUZZ_CHECK(strcmp(why, "The token's contents are malformed.") == 0);
}

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		fuzz_text(data + 1, size - 1);
	else
	{
		/* an exact copy: any read past the end is an overrun ASan sees */
		uint8	   *payload = malloc(size - 1 ? size - 1 : 1);

		memcpy(payload, data + 1, size - 1);
		fuzz_signed_payload(payload, size - 1);
		free(payload);
	}
	pgstub_reset();
	return 0;
}
