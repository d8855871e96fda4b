/*
 * token.c
 *		The context token format: its payload, its MAC and its parser.  Pure
 *		(no catalog, no clock, no setting) so that it can be fuzzed; context.c
 *		issues tokens and holds the setting that carries them.
 *
 * A token is  "utx1." base64url(payload) "." base64url(HMAC-SHA-256)
 * where the MAC, under the token subkey of the master key, covers the
 * prefix and the payload.  The payload is binary and length-prefixed:
 *
 *	 version(1) tenant(8) issued_at(8) expires_at(8) token_id(16) realm(16) flags(1)
 *	 user_len(1) user  clearance_len(1) clearance  nrights(1)
 *	 { right_len(1) right } ...
 *
 * (integers big-endian, times as TimestampTz).
 */
#include "postgres.h"

#include "utilix.h"

#define TOKEN_MAX_TEXT		4096

static int64
get_int64(const uint8 *p)
{
	uint64		u = 0;

	for (int i = 0; i < 8; i++)
		u = (u << 8) | p[i];
	return (int64) u;
}

/* A right: 1 to 63 bytes of [a-z0-9_], starting with a letter. */
bool
utilix_token_word_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* An application user name: 1 to 255 bytes, no control characters. */
bool
utilix_token_app_user_ok(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool
parse_payload(const uint8 *p, size_t len, UtilixContext *out)
{
	size_t		pos = 0;
	size_t		n;

#define NEED(k) do { if (len - pos < (size_t) (k)) return false; } while (0)

	memset(out, 0, sizeof(UtilixContext));
	NEED(1 + 8 + 8 + 8 + 16 + 16 + 1);
	if (p[pos++] != UTILIX_TOKEN_PAYLOAD_VERSION)
		return false;
	out->tenant = get_int64(p + pos);
	pos += 8;
	out->issued_at = get_int64(p + pos);
	pos += 8;
	out->expires_at = get_int64(p + pos);
	pos += 8;
	memcpy(out->token_id, p + pos, 16);
	pos += 16;
	memcpy(out->realm, p + pos, 16);
	pos += 16;
	out->flags = p[pos++];
	if (out->tenant <= 0 || out->expires_at <= out->issued_at)
		return false;

	NEED(1);
	n = p[pos++];
	NEED(n);
	if (!utilix_token_app_user_ok((const char *) p + pos, n))
		return false;
	memcpy(out->app_user, p + pos, n);
	out->app_user[n] = '\0';
	pos += n;

	NEED(1);
	n = p[pos++];
	NEED(n);
	if (n > 0 && !utilix_token_word_ok((const char *) p + pos, n))
		return false;
	memcpy(out->clearance, p + pos, n);
	out->clearance[n] = '\0';
	pos += n;

	NEED(1);
	out->nrights = p[pos++];
	if (out->nrights > 32)
		return false;
	for (int i = 0; i < out->nrights; i++)
	{
		NEED(1);
		n = p[pos++];
		NEED(n);
		if (!utilix_token_word_ok((const char *) p + pos, n))
			return false;
		memcpy(out->rights[i], p + pos, n);
		out->rights[i][n] = '\0';
		pos += n;
	}
#undef NEED
	return pos == len;
}

void
utilix_token_mac(const uint8 *key, const uint8 *payload, size_t len, uint8 mac[UTILIX_MAC_LEN])
{
	uint8		buf[UTILIX_TOKEN_PREFIX_LEN + UTILIX_TOKEN_PAYLOAD_MAX];

	memcpy(buf, UTILIX_TOKEN_PREFIX, UTILIX_TOKEN_PREFIX_LEN);
	memcpy(buf + UTILIX_TOKEN_PREFIX_LEN, payload, len);
	utilix_hmac_sha256(key, UTILIX_KEY_LEN, buf, UTILIX_TOKEN_PREFIX_LEN + len, mac);
}

/*
 * Verify a token's form and signature and parse it.  Does not look at the
 * clock or the database.  On failure *why says what is wrong, in words
 * that never contain the token.
 */
bool
utilix_token_parse(const char *token, UtilixContext *out, const char **why)
{
	size_t		len = strlen(token);
	const char *dot;
	uint8		payload[UTILIX_TOKEN_PAYLOAD_MAX];
	size_t		plen;
	uint8		mac[UTILIX_MAC_LEN + 4];
	size_t		maclen;
	uint8		expect[UTILIX_MAC_LEN];
	const uint8 *key;

	*why = "The token is malformed.";
	if (len < UTILIX_TOKEN_PREFIX_LEN + 2 || len > TOKEN_MAX_TEXT ||
		memcmp(token, UTILIX_TOKEN_PREFIX, UTILIX_TOKEN_PREFIX_LEN) != 0)
		return false;
	dot = strchr(token + UTILIX_TOKEN_PREFIX_LEN, '.');
	if (dot == NULL)
		return false;
	if (!utilix_b64url_decode(token + UTILIX_TOKEN_PREFIX_LEN, dot - (token + UTILIX_TOKEN_PREFIX_LEN),
							  payload, sizeof(payload), &plen))
		return false;
	if (!utilix_b64url_decode(dot + 1, len - (dot + 1 - token), mac, sizeof(mac), &maclen) ||
		maclen != UTILIX_MAC_LEN)
		return false;

	key = utilix_subkey_unchecked(UTILIX_SUBKEY_TOKEN);
	if (key == NULL)
	{
		*why = "The server has no master key, so no token can be verified.";
		return false;
	}
	utilix_token_mac(key, payload, plen, expect);
	if (!utilix_ct_equal(expect, mac, UTILIX_MAC_LEN))
	{
		*why = "The token's signature does not verify.";
		return false;
	}
	if (!parse_payload(payload, plen, out))
	{
		*why = "The token's contents are malformed.";
		return false;
	}
	return true;
}
