/*
 * redact.c
 *		Keeps tokens and passwords out of the server log.
 *
 * With log_statement = 'all', log_min_error_statement or
 * log_min_duration_statement, PostgreSQL logs statement text and bind
 * parameters.  A statement that sets utilix.context or calls a function that
 * takes a token or a password is logged as "<redacted by utilix>" instead,
 * its parameters dropped, and it is not repeated as a STATEMENT line.
 *
 * Plaintext of encrypted columns: a statement that decrypted a value, took
 * plaintext for an encrypted column, or reads or writes a table with
 * encrypted columns is marked (utilix_note_plaintext()).  Until the next
 * top-level statement, every message it raises reaches the server log only
 * as a redacted copy: the English message skeleton with every argument
 * masked, its SQLSTATE, no DETAIL, HINT or statement, and only CONTEXT
 * lines that name a function.  The client still gets the original.  With
 * utilix.redact_literals, data exceptions (SQLSTATE class 22, which quote
 * the value that failed) get the same treatment in any statement.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "parser/parser.h"
#include "utils/guc.h"

#include "utilix.h"

static emit_log_hook_type prev_emit_log_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static bool redact_literals = true;

static char *mask_literals(const char *text, bool same_length);
static char *mask_literals_ext(const char *text, bool same_length, bool respect_identifiers, bool strict);
static void note_encrypted_relations(QueryDesc *queryDesc);

/* Words whose presence makes a statement sensitive (matched case-blind). */
static const char *const sensitive_words[] = {
	"utx1.",					/* any context token */
	"utilix.context",
	"set_context",
	"issue_context",
	"_sign_token",
	"utilix.login",
	"password",
	"create_user",
	"create_tenant_admin",
	"crypto_",					/* the self-test functions take raw keys */
	"master_key",
	NULL
};

bool
utilix_redact_literals_enabled(void)
{
	return redact_literals;
}

bool
utilix_text_is_sensitive(const char *text)
{
	if (text == NULL)
		return false;
	for (int i = 0; sensitive_words[i] != NULL; i++)
		if (strcasestr(text, sensitive_words[i]) != NULL)
			return true;
	return false;
}

/* Replace every token in a text ("utx1." and what follows it) by a marker. */
static char *
mask_tokens(const char *text)
{
	StringInfoData buf;
	const char *p = text;
	const char *hit;

	initStringInfo(&buf);
	while ((hit = strcasestr(p, "utx1.")) != NULL)
	{
		appendBinaryStringInfo(&buf, p, hit - p);
		appendStringInfoString(&buf, "utx1.<redacted>");
		p = hit + 5;
		while (*p && (isalnum((unsigned char) *p) || *p == '-' || *p == '_' || *p == '.'))
			p++;
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

/*
 * The statement text with every string literal replaced by '***': quoted
 * strings (with '' and, after E, backslash escapes) and dollar-quoted
 * strings.  Identifiers, numbers, comments and $n parameters stay.
 */
char *
utilix_mask_literals(const char *text)
{
	return mask_literals(text, false);
}

/* Same length as the input: literal bytes become '*', quotes stay. */
char *
utilix_mask_literals_same_length(const char *text)
{
	return mask_literals(text, true);
}

static char *
mask_literals(const char *text, bool same_length)
{
	return mask_literals_ext(text, same_length, true, false);
}

/*
 * For the access log: string literals become '***', numbers ?, and
 * comments are left out, so that nothing a statement carried as data
 * remains.
 */
char *
utilix_normalise_query(const char *text)
{
	return mask_literals_ext(text, false, true, true);
}

/*
 * respect_identifiers: skip double-quoted identifiers (statement text);
 * false for messages that quote whole statements in double quotes (CONTEXT
 * lines such as: SQL statement "SELECT ...").
 */
static char *
mask_literals_ext(const char *text, bool same_length, bool respect_identifiers, bool strict)
{
	StringInfoData buf;
	const char *p = text;

	initStringInfo(&buf);
	while (*p)
	{
		/* comments: an apostrophe in one starts no literal */
		if (respect_identifiers && p[0] == '-' && p[1] == '-')
		{
			const char *q = p;

			while (*q && *q != '\n')
				q++;
			if (!strict)
				appendBinaryStringInfo(&buf, p, q - p);
			p = q;
			continue;
		}
		if (respect_identifiers && p[0] == '/' && p[1] == '*')
		{
			const char *q = p + 2;
			int			depth = 1;

			while (*q && depth > 0)
			{
				if (q[0] == '/' && q[1] == '*')
				{
					depth++;
					q += 2;
				}
				else if (q[0] == '*' && q[1] == '/')
				{
					depth--;
					q += 2;
				}
				else
					q++;
			}
			if (!strict)
				appendBinaryStringInfo(&buf, p, q - p);
			else
				appendStringInfoChar(&buf, ' ');
			p = q;
			continue;
		}
		if (strict && isdigit((unsigned char) *p) &&
			(p == text || !(isalnum((unsigned char) p[-1]) || p[-1] == '_' || p[-1] == '$' ||
							(unsigned char) p[-1] >= 0x80)))
		{
			/* a number: digits, a point, an exponent */
			while (isalnum((unsigned char) *p) || *p == '.' || *p == '_' ||
				   ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
				p++;
			appendStringInfoChar(&buf, '?');
			continue;
		}
		if (*p == '"' && respect_identifiers)
		{
			const char *q = p + 1;

			while (*q && !(*q == '"' && q[1] != '"'))
				q += (*q == '"' ? 2 : 1);
			if (*q)
				q++;
			appendBinaryStringInfo(&buf, p, q - p);
			p = q;
		}
		else if (*p == '\'')
		{
			/* backslashes escape in E'' strings, and in all of them without standard_conforming_strings */
			bool		escapes = !standard_conforming_strings ||
				(p > text && (p[-1] == 'E' || p[-1] == 'e') &&
				 (p - 1 == text || !isalnum((unsigned char) p[-2])));
			const char *start = p;

			p++;
			while (*p)
			{
				if (escapes && *p == '\\' && p[1])
					p += 2;
				else if (*p == '\'' && p[1] == '\'')
					p += 2;
				else if (*p == '\'')
					break;
				else
					p++;
			}
			if (*p)
				p++;
			if (same_length)
			{
				appendStringInfoChar(&buf, '\'');
				for (const char *q = start + 1; q < p - 1; q++)
					appendStringInfoChar(&buf, '*');
				if (p - start >= 2 && p[-1] == '\'')
					appendStringInfoChar(&buf, '\'');
			}
			else
				appendStringInfoString(&buf, "'***'");
		}
		else if (*p == '$' && (p[1] == '$' || isalpha((unsigned char) p[1]) || p[1] == '_') &&
				 (p == text || !(isalnum((unsigned char) p[-1]) || p[-1] == '_')))
		{
			const char *q = p + 1;
			size_t		taglen;
			const char *end;
			char	   *tag;

			while (*q && (isalnum((unsigned char) *q) || *q == '_'))
				q++;
			if (*q != '$')
			{
				appendStringInfoChar(&buf, *p++);
				continue;
			}
			taglen = q - p + 1;
			tag = pnstrdup(p, taglen);
			end = strstr(q + 1, tag);
			if (same_length)
			{
				const char *stop = end ? end : p + strlen(p);

				appendBinaryStringInfo(&buf, p, taglen);
				for (const char *c = q + 1; c < stop; c++)
					appendStringInfoChar(&buf, (*c == '\n') ? '\n' : '*');
				if (end)
					appendBinaryStringInfo(&buf, end, taglen);
			}
			else
				appendStringInfoString(&buf, "$$***$$");
			pfree(tag);
			p = end ? end + taglen : p + strlen(p);
		}
		else
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/* COPY's error context quotes the input line: keep only "COPY t, line n". */
static char *
mask_copy_context(const char *text)
{
	StringInfoData buf;
	const char *p = text;
	const char *hit;

	initStringInfo(&buf);
	while ((hit = strstr(p, "COPY ")) != NULL)
	{
		const char *colon = strstr(hit, ": \"");
		const char *eol = strchr(hit, '\n');

		if (colon == NULL || (eol != NULL && colon > eol))
		{
			appendBinaryStringInfo(&buf, p, hit + 5 - p);
			p = hit + 5;
			continue;
		}
		appendBinaryStringInfo(&buf, p, colon - p);
		appendStringInfoString(&buf, " (line redacted by utilix)");
		p = eol ? eol : colon + strlen(colon);
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

static bool
is_statement_message(const char *msg)
{
	return strncmp(msg, "statement: ", 11) == 0 ||
		strncmp(msg, "execute ", 8) == 0 ||
		strncmp(msg, "duration: ", 10) == 0;
}

/* ---------- plaintext of encrypted columns in messages ---------- */

/*
 * The statement (by its start time, which PostgreSQL sets for each
 * top-level statement, protocol message and fast-path call) that last
 * handled plaintext.  A timestamp rather than a flag cleared by a hook: it
 * needs no hook at statement start, survives COMMIT inside a procedure
 * (the plaintext may still sit in a PL/pgSQL variable), and a parallel
 * worker shares its leader's statement start.
 */
static bool plaintext_seen = false;
static TimestampTz plaintext_statement = 0;

/* Called by encrypt.c wherever plaintext of an encrypted column is handled. */
void
utilix_note_plaintext(void)
{
	plaintext_seen = true;
	plaintext_statement = GetCurrentStatementStartTimestamp();
}

bool
utilix_statement_saw_plaintext(void)
{
	return plaintext_seen && plaintext_statement == GetCurrentStatementStartTimestamp();
}

/*
 * A statement that reads or writes a table with encrypted columns is marked
 * before it runs: a value that fails a cast before anything was decrypted
 * (a write, say) or an error that a parallel worker decrypted and the
 * leader re-throws is covered as well.
 */
static void
redact_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	bool		worker = IsParallelWorker();

	/* EXPLAIN without ANALYZE reads no value: its errors stay as they are */
	bool		reads = (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0;

	/* a parallel worker takes its locks in ExecutorStart: look after it */
	if (reads && !worker)
		note_encrypted_relations(queryDesc);
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (reads && worker)
		note_encrypted_relations(queryDesc);
}

static void
note_encrypted_relations(QueryDesc *queryDesc)
{
	ListCell   *lc;

	if (queryDesc->plannedstmt == NULL || utilix_statement_saw_plaintext())
		return;
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind == RTE_RELATION && utilix_relation_has_encrypted_columns(rte->relid))
		{
			utilix_note_plaintext();
			return;
		}
	}
}

/* The domain of our own redacted copies: how the hook knows them. */
static const char redacted_domain[] = "utilix-redacted";

/* The message being redacted, while its copy is emitted. */
static ErrorData *redacting = NULL;

/*
 * The message's English format with every argument replaced by ***: the
 * words PostgreSQL wrote, none of the values it quoted.  NULL when the
 * format is only arguments (RAISE '%', elog("%s")): free text.
 */
static char *
message_skeleton(const char *fmt)
{
	StringInfoData buf;
	bool		words = false;

	if (fmt == NULL)
		return NULL;
	initStringInfo(&buf);
	for (const char *p = fmt; *p; p++)
	{
		if (*p != '%')
		{
			if (isalpha((unsigned char) *p))
				words = true;
			appendStringInfoChar(&buf, *p);
			continue;
		}
		if (p[1] == '%')
		{
			appendStringInfoChar(&buf, '%');
			p++;
			continue;
		}
		/* position, flags, width, precision, length; then the conversion */
		p++;
		while (*p && strchr("0123456789$#-+ '*.hlLqjzt", *p) != NULL)
			p++;
		appendStringInfoString(&buf, "***");
		if (*p == '\0')
			break;
	}
	if (!words)
	{
		pfree(buf.data);
		return NULL;
	}
	return buf.data;
}

/*
 * CONTEXT lines that only name the function and line are kept; every other
 * line (a SQL statement, JSON input, a COPY line, a parameter, an
 * assignment) is replaced by a marker.
 */
static char *
redact_context(const char *context)
{
	static const char *const keep[] = {
		"PL/pgSQL function ",
		"SQL function \"",
		"parallel worker",
		NULL
	};
	StringInfoData buf;
	const char *p = context;

	if (context == NULL || context[0] == '\0')
		return NULL;
	initStringInfo(&buf);
	while (*p)
	{
		const char *eol = strchr(p, '\n');
		size_t		len = eol ? (size_t) (eol - p) : strlen(p);
		bool		kept = false;

		for (int i = 0; keep[i] != NULL; i++)
			if (strncmp(p, keep[i], strlen(keep[i])) == 0 &&
				memchr(p, '\'', len) == NULL && memchr(p, ':', len) == NULL)
				kept = true;
		if (buf.len > 0)
			appendStringInfoChar(&buf, '\n');
		if (kept)
			appendBinaryStringInfo(&buf, p, len);
		else
			appendStringInfoString(&buf, "(context line redacted by utilix)");
		p += len;
		if (*p == '\n')
			p++;
	}
	return buf.data;
}

/* PostgreSQL's own statement-logging lines, known by their format. */
static bool
is_statement_log(const ErrorData *edata)
{
	const char *id = edata->message_id;

	return id != NULL && edata->elevel == LOG &&
		(strncmp(id, "statement: ", 11) == 0 ||
		 strncmp(id, "execute ", 8) == 0 ||
		 strncmp(id, "duration: ", 10) == 0);
}

/* Might this message quote plaintext of an encrypted column, or a value? */
static bool
may_carry_values(const ErrorData *edata)
{
	if (is_statement_log(edata))
		return false;
	if (utilix_statement_saw_plaintext())
		return true;
	return redact_literals && ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_DATA_EXCEPTION;
}

/*
 * Keep the message out of the server log; write its redacted copy there
 * instead.  The copy is a LOG_SERVER_ONLY report of its own (the hook gives
 * it the original's severity and location, and keeps it from the client);
 * the original goes on to the client only.  Deep in error recursion, where
 * another report could overflow the error stack, the message itself is
 * redacted instead, for the client too.
 */
static void
redact_values(ErrorData *edata)
{
	char	   *skeleton = message_skeleton(edata->message_id);
	char	   *message;
	char	   *context = redact_context(edata->context);
	bool		detail = edata->detail != NULL || edata->detail_log != NULL;
	bool		hint = edata->hint != NULL;
	char		sqlstate[6];

	memcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(sqlstate));

	/*
	 * PostgreSQL's integrity violations name only the column, relation and
	 * constraint in their message; the row's values are in the DETAIL.  Such
	 * a message is kept as it is (free text raised with a class 23 code has
	 * no skeleton and is not).
	 */
	if (skeleton && edata->message &&
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
		message = psprintf("%s (redacted by utilix, SQLSTATE %s)", edata->message, sqlstate);
	else if (skeleton)
		message = psprintf("%s (redacted by utilix, SQLSTATE %s)", skeleton, sqlstate);
	else
		message = psprintf("message text redacted by utilix (SQLSTATE %s)", sqlstate);

	if (in_error_recursion_trouble() || redacting != NULL)
	{
		edata->message = message;
		edata->detail = detail ? pstrdup("(detail redacted by utilix)") : NULL;
		edata->detail_log = NULL;
		edata->hint = hint ? pstrdup("(hint redacted by utilix)") : NULL;
		edata->context = context;
		edata->internalquery = NULL;
		edata->hide_stmt = true;
		return;
	}

	edata->output_to_server = false;
	{
		ErrorContextCallback *save_context = error_context_stack;

		/* no context callback may add its (unredacted) line to the copy */
		error_context_stack = NULL;
		redacting = edata;
		/* errfinish() checks for interrupts: not in the middle of this report */
		HOLD_INTERRUPTS();
		ereport_domain(LOG_SERVER_ONLY, redacted_domain,
					   (errcode(edata->sqlerrcode),
						errmsg_internal("%s", message),
						detail ? errdetail_internal("%s", "(detail redacted by utilix)") : 0,
						hint ? errhint("%s", "(hint redacted by utilix)") : 0,
						context ? errcontext("%s", context) : 0,
						errhidecontext(context == NULL),
						errhidestmt(true)));
		RESUME_INTERRUPTS();
		redacting = NULL;
		error_context_stack = save_context;
	}
}

static void
utilix_emit_log(ErrorData *edata)
{
	/* our redacted copy: the original's severity and place, server only */
	if (edata->domain == redacted_domain)
	{
		if (redacting != NULL)
		{
			edata->elevel = redacting->elevel;
			edata->filename = redacting->filename;
			edata->lineno = redacting->lineno;
			edata->funcname = redacting->funcname;
		}
		edata->output_to_client = false;
		if (prev_emit_log_hook)
			prev_emit_log_hook(edata);
		return;
	}
	if (edata->output_to_server && edata->message)
	{
		/* statement logging: the whole text, and its parameters, go */
		if (is_statement_message(edata->message) &&
			(utilix_text_is_sensitive(edata->message) ||
			 (debug_query_string && utilix_text_is_sensitive(debug_query_string))))
		{
			const char *colon = strstr(edata->message, ": ");
			int			keep = colon ? (int) (colon - edata->message) : 0;

			/* a duration line may itself contain ": " before the statement */
			if (strncmp(edata->message, "duration: ", 10) == 0)
				keep = 8;
			edata->message = psprintf("%.*s: <redacted by utilix>", keep, edata->message);
			edata->detail = NULL;
			edata->detail_log = NULL;
		}
		/* statement text in the log: no literal values, no parameters */
		else if (redact_literals && is_statement_message(edata->message))
		{
			edata->message = utilix_mask_literals(edata->message);
			if (edata->detail && strncmp(edata->detail, "parameters: ", 12) == 0)
				edata->detail = NULL;
			if (edata->detail_log && strncmp(edata->detail_log, "parameters: ", 12) == 0)
				edata->detail_log = NULL;
		}
		/* row values in constraint errors stay with the client, not the log */
		if (redact_literals && edata->detail &&
			(strncmp(edata->detail, "Failing row contains", 20) == 0 ||
			 strncmp(edata->detail, "Key (", 5) == 0))
			edata->detail_log = pstrdup("(row values redacted by utilix)");
		if (redact_literals && edata->context && strstr(edata->context, "COPY ") != NULL)
			edata->context = mask_copy_context(edata->context);
		if (redact_literals && edata->detail && strncmp(edata->detail, "prepare: ", 9) == 0)
			edata->detail = utilix_mask_literals(edata->detail);
		/* CONTEXT lines quote the statements of functions, literals and all */
		if (edata->context && (redact_literals || utilix_text_is_sensitive(edata->context)))
			edata->context = mask_literals_ext(edata->context, false, false, false);
		/* any other message: tokens are masked wherever they appear */
		if (strcasestr(edata->message, "utx1.") != NULL)
			edata->message = mask_tokens(edata->message);
		if (edata->detail && strcasestr(edata->detail, "utx1.") != NULL)
			edata->detail = mask_tokens(edata->detail);
		if (edata->detail_log && strcasestr(edata->detail_log, "utx1.") != NULL)
			edata->detail_log = mask_tokens(edata->detail_log);
		if (edata->hint && strcasestr(edata->hint, "utx1.") != NULL)
			edata->hint = mask_tokens(edata->hint);
		if (edata->context && strcasestr(edata->context, "utx1.") != NULL)
			edata->context = mask_tokens(edata->context);
		if (utilix_text_is_sensitive(edata->internalquery))
			edata->internalquery = NULL;
		/*
		 * The STATEMENT: line that follows an error repeats the query as
		 * written; it is left out when the query carries a secret or, with
		 * utilix.redact_literals, any literal.
		 */
		if (debug_query_string &&
			(utilix_text_is_sensitive(debug_query_string) ||
			 (redact_literals && (strchr(debug_query_string, '\'') != NULL ||
								  strchr(debug_query_string, '$') != NULL))))
			edata->hide_stmt = true;

		/* values: the original is kept from the log (and from other hooks) */
		if (may_carry_values(edata))
		{
			redact_values(edata);
			if (!edata->output_to_server)
				return;
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
RedactInit(void)
{
	DefineCustomBoolVariable("utilix.redact_literals",
							 "Keep literal values and bind parameters out of statement lines in the server log.",
							 "Also keeps row values of constraint errors and COPY input lines out of the log.",
							 &redact_literals, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = utilix_emit_log;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = redact_ExecutorStart;
}
