/*
 * pgstub.c
 *		Stand-ins for the PostgreSQL backend functions that utilix's parsers
 *		call, so that codec.c, envelope.c, token.c, pwhash.c and crypto.c can
 *		be linked into a fuzzer outside the server.
 *
 * Memory: palloc and friends are malloc, each block exactly the size asked
 * for (so that AddressSanitizer sees any overrun), and every block is
 * remembered until pgstub_reset() frees them all, as the end of a statement
 * resets its memory context.  As in the server, a request above
 * MaxAllocSize (MaxAllocHugeSize for the _huge variants) is an ERROR.
 *
 * Errors: ereport(ERROR) inside pgstub_call() jumps back out of it, the way
 * the server aborts a statement; outside pgstub_call(), and at FATAL or
 * above, it aborts the process.  Lower levels are dropped.
 *
 * Keys: utilix_subkey() and utilix_subkey_unchecked() return a fixed key,
 * so that the seed generator can sign tokens the token fuzzer accepts.
 */
#include "pgstub.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "utils/memutils.h"

/* ---------- memory ---------- */

MemoryContext CurrentMemoryContext = NULL;
MemoryContext TopMemoryContext = NULL;

static void **blocks = NULL;
static size_t nblocks = 0;
static size_t blocks_cap = 0;

static void
remember(void *p)
{
	if (nblocks == blocks_cap)
	{
		blocks_cap = blocks_cap ? blocks_cap * 2 : 64;
		blocks = realloc(blocks, blocks_cap * sizeof(void *));
		if (blocks == NULL)
			abort();
	}
	blocks[nblocks++] = p;
}

/* The index of a block we handed out; a pointer that is not one is a bug. */
static size_t
find_block(void *p)
{
	for (size_t i = nblocks; i > 0; i--)
		if (blocks[i - 1] == p)
			return i - 1;
	pgstub_fail("pfree or repalloc of %p, which palloc did not return (or already freed)", p);
}

static void *
alloc(Size size, bool zero, bool huge)
{
	void	   *p;

	if (size > (huge ? MaxAllocHugeSize : MaxAllocSize))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	/* malloc(0) may return NULL; PostgreSQL's palloc(0) returns a chunk */
	p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);
	if (p == NULL)
		elog(ERROR, "out of memory");
	remember(p);
	return p;
}

void *
palloc(Size size)
{
	return alloc(size, false, false);
}

void *
palloc0(Size size)
{
	return alloc(size, true, false);
}

void *
palloc_extended(Size size, int flags)
{
	return alloc(size, (flags & MCXT_ALLOC_ZERO) != 0, (flags & MCXT_ALLOC_HUGE) != 0);
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return alloc(size, false, false);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return alloc(size, true, false);
}

void *
MemoryContextAllocHuge(MemoryContext context, Size size)
{
	return alloc(size, false, true);
}

static void *
realloc_block(void *pointer, Size size, bool huge)
{
	size_t		i = find_block(pointer);
	void	   *p;

	if (size > (huge ? MaxAllocHugeSize : MaxAllocSize))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	p = realloc(pointer, size ? size : 1);
	if (p == NULL)
		elog(ERROR, "out of memory");
	blocks[i] = p;
	return p;
}

void *
repalloc(void *pointer, Size size)
{
	return realloc_block(pointer, size, false);
}

void *
repalloc_huge(void *pointer, Size size)
{
	return realloc_block(pointer, size, true);
}

void
pfree(void *pointer)
{
	size_t		i = find_block(pointer);

	blocks[i] = blocks[--nblocks];
	free(pointer);
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *out = palloc(len + 1);

	memcpy(out, in, len + 1);
	return out;
}

char *
psprintf(const char *fmt,...)
{
	va_list		args;
	int			len;
	char	   *out;

	va_start(args, fmt);
	len = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	if (len < 0)
		elog(ERROR, "psprintf: bad format");
	out = palloc((Size) len + 1);
	va_start(args, fmt);
	vsnprintf(out, (size_t) len + 1, fmt, args);
	va_end(args);
	return out;
}

/* Reset callbacks: only TopMemoryContext gets them here, and it is never reset. */
void
MemoryContextRegisterResetCallback(MemoryContext context, MemoryContextCallback *cb)
{
}

void
pgstub_reset(void)
{
	for (size_t i = 0; i < nblocks; i++)
		free(blocks[i]);
	nblocks = 0;
}

/* ---------- errors ---------- */

static sigjmp_buf *error_jmp = NULL;
static int	error_level = 0;
char		pgstub_last_error[1024];

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;
	error_level = elevel;
	pgstub_last_error[0] = '\0';
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (error_level >= FATAL || error_jmp == NULL)
	{
		fprintf(stderr, "pgstub: ereport(%s) at %s:%d (%s): %s\n",
				error_level >= FATAL ? "FATAL or PANIC" : "ERROR outside pgstub_call",
				filename, lineno, funcname ? funcname : "?", pgstub_last_error);
		abort();
	}
	siglongjmp(*error_jmp, 1);
}

int
errcode(int sqlerrcode)
{
	return 0;
}

int
errcode_for_file_access(void)
{
	return 0;
}

int
errmsg(const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(pgstub_last_error, sizeof(pgstub_last_error), fmt, args);
	va_end(args);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(pgstub_last_error, sizeof(pgstub_last_error), fmt, args);
	va_end(args);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

bool
pgstub_call(void (*fn) (void *arg), void *arg)
{
	sigjmp_buf	jb;
	sigjmp_buf *volatile saved = error_jmp;

	if (sigsetjmp(jb, 0) != 0)
	{
		error_jmp = saved;
		return false;
	}
	error_jmp = &jb;
	fn(arg);
	error_jmp = saved;
	return true;
}

void
pgstub_fail(const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	fputs("utilix fuzz: ", stderr);
	vfprintf(stderr, fmt, args);
	fputc('\n', stderr);
	va_end(args);
	abort();
}

/* ---------- keys.c ---------- */

const uint8 pgstub_key[UTILIX_KEY_LEN] = "utilix fuzzing key, not secret.";

const uint8 *
utilix_subkey_unchecked(UtilixSubkey which)
{
	return pgstub_key;
}

const uint8 *
utilix_subkey(UtilixSubkey which)
{
	return pgstub_key;
}
