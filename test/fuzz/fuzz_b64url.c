/*
 * fuzz_b64url.c
 *		Fuzzes utilix_b64url_decode() (codec.c), the decoder under context
 *		tokens, armoured ciphertext and password hashes.
 *
 * The input is the text to decode.  Checked besides memory safety:
 *  - the output fits the capacity given, whatever the capacity (the first
 *    input byte takes 0 to 3 off the documented maximum);
 *  - the decoder is strict: whatever it accepts, the encoder gives back
 *    exactly (one binary value, one text form);
 *  - the input read as bytes survives encode and decode unchanged.
 */
#include "pgstub.h"

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	size_t		cap = utilix_b64url_decoded_max(size);
	size_t		shrink = size > 0 ? data[0] % 4 : 0;
	size_t		small_cap = cap > shrink ? cap - shrink : 0;
	char	   *text = malloc(size ? size : 1);
	uint8	   *out = malloc(cap);
	uint8	   *small = malloc(small_cap ? small_cap : 1);
	size_t		n = 0;
	size_t		small_n = 0;
	bool		ok;
	bool		small_ok;

	/* an exact copy: any read past the end is an overrun ASan sees */
	memcpy(text, data, size);
	ok = utilix_b64url_decode(text, size, out, cap, &n);
	small_ok = utilix_b64url_decode(text, size, small, small_cap, &small_n);
	if (ok)
	{
		char	   *again = utilix_b64url_encode(out, n);

		FUZZ_CHECK(n <= cap);
		FUZZ_CHECK(n == size * 3 / 4);
		FUZZ_CHECK(strlen(again) == size && memcmp(again, text, size) == 0);
		/* with less room it fails rather than write past the end */
		FUZZ_CHECK(small_ok == (n <= small_cap));
		if (small_ok)
			FUZZ_CHECK(small_n == n && memcmp(small, out, n) == 0);
	}
	else
		FUZZ_CHECK(!small_ok);

	/* the other way round: bytes -> text -> the same bytes */
	{
		char	   *enc = utilix_b64url_encode(data, size);
		size_t		elen = strlen(enc);
		size_t		dcap = utilix_b64url_decoded_max(elen);
		uint8	   *dec = malloc(dcap);
		size_t		dn = 0;

		FUZZ_CHECK(elen == (size * 4 + 2) / 3);
		FUZZ_CHECK(utilix_b64url_decode(enc, elen, dec, dcap, &dn));
		FUZZ_CHECK(dn == size && memcmp(dec, data, size) == 0);
		free(dec);
	}

	free(text);
	free(out);
	free(small);
	pgstub_reset();
	return 0;
}
