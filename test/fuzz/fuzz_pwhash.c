/*
 * fuzz_pwhash.c
 *		Fuzzes utilix_parse_password_hash() (pwhash.c), which reads the
 *		stored hashes of utilix.app_user at every login: a row written by a
 *		tenant admin's restore, a migration or a bug must not crash it.
 *
 * The input is the stored text.  Checked besides memory safety: what
 * parses has parameters inside the accepted ranges (scrypt must never be
 * asked for more than ln=22, r=32, p=16), and formatting the parsed hash
 * and parsing that again gives the same parameters, salt and hash.
 */
#include "pgstub.h"

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	/* a C string, as text_to_cstring() gives it: exactly the bytes and a NUL */
	char	   *s = malloc(size + 1);
	int			log2n,
				r,
				p;
	uint8		salt[UTILIX_PW_SALT_LEN];
	uint8		hash[UTILIX_PW_HASH_LEN];

	memcpy(s, data, size);
	s[size] = '\0';
	if (utilix_parse_password_hash(s, &log2n, &r, &p, salt, hash))
	{
		char	   *again;
		int			log2n2,
					r2,
					p2;
		uint8		salt2[UTILIX_PW_SALT_LEN];
		uint8		hash2[UTILIX_PW_HASH_LEN];

		FUZZ_CHECK(log2n >= 10 && log2n <= 22);
		FUZZ_CHECK(r >= 1 && r <= 32);
		FUZZ_CHECK(p >= 1 && p <= 16);
		again = utilix_format_password_hash(log2n, r, p, salt, hash);
		FUZZ_CHECK(utilix_parse_password_hash(again, &log2n2, &r2, &p2, salt2, hash2));
		FUZZ_CHECK(log2n2 == log2n && r2 == r && p2 == p);
		FUZZ_CHECK(memcmp(salt2, salt, sizeof(salt)) == 0 && memcmp(hash2, hash, sizeof(hash)) == 0);
	}
	free(s);
	pgstub_reset();
	return 0;
}
