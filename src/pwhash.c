/*
 * pwhash.c
 *		The text form of a password hash:
 *
 *	 $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt, base64url>$<hash, base64url>
 *
 * users.c computes and verifies the hashes.  Pure, so that the parser of
 * stored hashes can be fuzzed.
 */
#include "postgres.h"

#include "utilix.h"

char *
utilix_format_password_hash(int log2n, int r, int p, const uint8 *salt, const uint8 *hash)
{
	return psprintf("$scrypt$ln=%d,r=%d,p=%d$%s$%s", log2n, r, p,
					utilix_b64url_encode(salt, UTILIX_PW_SALT_LEN),
					utilix_b64url_encode(hash, UTILIX_PW_HASH_LEN));
}

/* Parse a stored hash; false when it is not one of ours. */
bool
utilix_parse_password_hash(const char *s, int *log2n, int *r, int *p, uint8 *salt, uint8 *hash)
{
	char		saltb[64];
	char		hashb[64];
	size_t		n;
	int			consumed = 0;

	if (sscanf(s, "$scrypt$ln=%d,r=%d,p=%d$%63[A-Za-z0-9_-]$%63[A-Za-z0-9_-]%n",
			   log2n, r, p, saltb, hashb, &consumed) != 5 || s[consumed] != '\0')
		return false;
	if (*log2n < 10 || *log2n > 22 || *r < 1 || *r > 32 || *p < 1 || *p > 16)
		return false;
	if (!utilix_b64url_decode(saltb, strlen(saltb), salt, UTILIX_PW_SALT_LEN, &n) || n != UTILIX_PW_SALT_LEN)
		return false;
	if (!utilix_b64url_decode(hashb, strlen(hashb), hash, UTILIX_PW_HASH_LEN, &n) || n != UTILIX_PW_HASH_LEN)
		return false;
	return true;
}
