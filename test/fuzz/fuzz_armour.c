/*
 * fuzz_armour.c
 *		Fuzzes utilix_dearmour() (envelope.c): the text form "utxe1:" +
 *		base64url(sealed value) that encrypted types accept as input and
 *		the seal trigger accepts in place of a sealed value.
 *
 * The input is the text, as bytes (the trigger passes a value's bytes, so
 * it may hold anything, NUL included).  Checked besides memory safety:
 *  - what dearmours is a sealed value that parses as an envelope;
 *  - armouring it again gives back exactly the input (one value, one text);
 *  - the same for utilix_dearmour_withheld(), whose result is a withheld
 *    form, and never also a sealed value.
 */
#include "pgstub.h"

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	/* an exact copy: any read past the end is an overrun ASan sees */
	char	   *text = malloc(size ? size : 1);
	uint8	   *out = NULL;
	size_t		outlen = 0;

	memcpy(text, data, size);
	if (utilix_dearmour(text, size, &out, &outlen))
	{
		UtilixEnvelope env;
		char	   *again;

		FUZZ_CHECK(utilix_has_armour_prefix(text, size));
		FUZZ_CHECK(utilix_is_sealed(out, outlen));
		FUZZ_CHECK(utilix_envelope_parse(out, outlen, &env));
		again = utilix_armour(out, outlen);
		FUZZ_CHECK(strlen(again) == size && memcmp(again, text, size) == 0);
	}
	if (utilix_dearmour_withheld(text, size, &out, &outlen))
	{
		UtilixEnvelope env;
		char	   *again;

		FUZZ_CHECK(utilix_envelope_parse_withheld(out, outlen, &env));
		FUZZ_CHECK(!utilix_envelope_parse(out, outlen, &env));
		again = utilix_armour(out, outlen);
		FUZZ_CHECK(strlen(again) == size && memcmp(again, text, size) == 0);
	}
	free(text);
	pgstub_reset();
	return 0;
}
