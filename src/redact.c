/*
 * redact.c
 *		Keeps tokens and passwords out of the server log.
 *
 * With log_statement = 'all', log_min_error_statement or
 * log_min_duration_statement, PostgreSQL logs statement text and bind
 * parameters.  A statement that sets utilix.context or calls a function that
 * takes a token or a password is logged as "<redacted by utilix>" instead,
 * its parameters dropped, and it is not repeated as a STATEMENT line.
 */
#include "postgres.h"

#include <ctype.h>

#include "lib/stringinfo.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "parser/parser.h"
#include "utils/guc.h"

#include "utilix.h"

static emit_log_hook_type prev_emit_log_hook = NULL;
static bool redact_literals = true;

static char *mask_literals(const char *text, bool same_length);
static char *mask_literals_ext(const char *text, bool same_length, bool respect_identifiers, bool strict);

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

static void
utilix_emit_log(ErrorData *edata)
{
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
}
