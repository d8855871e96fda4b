/*
 * pgstub.h
 *		What the fuzz harnesses and the seed generator use of pgstub.c, the
 *		stand-in for the few PostgreSQL backend functions that utilix's
 *		parsers call (memory, error reports, the master key's subkeys).
 */
#ifndef PGSTUB_H
#define PGSTUB_H

#include "postgres.h"

#include "utilix.h"

/* The fixed "subkeys" that utilix_subkey() and utilix_subkey_unchecked() return. */
extern const uint8 pgstub_key[UTILIX_KEY_LEN];

/*
 * Run fn(arg) as PostgreSQL would run a statement: an ereport(ERROR) inside
 * it ends the call (returns false, with the message in pgstub_last_error)
 * instead of the process.  Everything palloc'd stays until pgstub_reset().
 */
extern bool pgstub_call(void (*fn) (void *arg), void *arg);
extern char pgstub_last_error[1024];

/* Free everything palloc'd since the last reset: the end of a "statement". */
extern void pgstub_reset(void);

/* Report a broken property of the code under test and abort (a crash for libFuzzer). */
extern void pgstub_fail(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

#define FUZZ_CHECK(cond) \
	do { if (!(cond)) pgstub_fail("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); } while (0)

#endif							/* PGSTUB_H */
