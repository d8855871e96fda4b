/*
 * codec.c
 *		Text encodings of binary values: unpadded base64url (RFC 4648, section
 *		5), used by context tokens and armoured ciphertext.
 *
 * The decoder is strict: it accepts only the URL-safe alphabet, no padding,
 * no whitespace, and no length that cannot come from the encoder, so one
 * binary value has exactly one text form.
 */
#include "postgres.h"

#include "utilix.h"

static const char b64url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
utilix_b64url_encode(const uint8 *src, size_t len)
{
	char	   *out = palloc(((len + 2) / 3) * 4 + 1);
	char	   *p = out;
	size_t		i = 0;

	while (i + 3 <= len)
	{
		uint32		v = ((uint32) src[i] << 16) | ((uint32) src[i + 1] << 8) | src[i + 2];

		*p++ = b64url_alphabet[(v >> 18) & 63];
		*p++ = b64url_alphabet[(v >> 12) & 63];
		*p++ = b64url_alphabet[(v >> 6) & 63];
		*p++ = b64url_alphabet[v & 63];
		i += 3;
	}
	if (len - i == 1)
	{
		uint32		v = (uint32) src[i] << 16;

		*p++ = b64url_alphabet[(v >> 18) & 63];
		*p++ = b64url_alphabet[(v >> 12) & 63];
	}
	else if (len - i == 2)
	{
		uint32		v = ((uint32) src[i] << 16) | ((uint32) src[i + 1] << 8);

		*p++ = b64url_alphabet[(v >> 18) & 63];
		*p++ = b64url_alphabet[(v >> 12) & 63];
		*p++ = b64url_alphabet[(v >> 6) & 63];
	}
	*p = '\0';
	return out;
}

size_t
utilix_b64url_decoded_max(size_t srclen)
{
	return (srclen / 4) * 3 + 2;
}

static inline int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decode srclen characters into dst (capacity dstcap).  Returns false for
 * any character outside the alphabet, an impossible length, non-zero
 * trailing bits, or output that would not fit.
 */
bool
utilix_b64url_decode(const char *src, size_t srclen,
					 uint8 *dst, size_t dstcap, size_t *dstlen)
{
	size_t		n = 0;
	uint32		acc = 0;
	int			bits = 0;

	if (srclen % 4 == 1)
		return false;
	for (size_t i = 0; i < srclen; i++)
	{
		int			v = b64url_value((unsigned char) src[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (n >= dstcap)
				return false;
			dst[n++] = (uint8) ((acc >> bits) & 0xFF);
		}
	}
	/* leftover bits must be zero, or two encodings would decode alike */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return false;
	*dstlen = n;
	return true;
}
