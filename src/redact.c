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

#include "utilix.h"

static emit_log_hook_type prev_emit_log_hook = NULL;

/* Words whose presence makes a statement sensitive (matched case-blind). */
static const char *const sensitive_words[] = {
	"utx1.",					/* any context token */
	"utilix.context",
	"set_context",
	"issue_context",
	"_sign_token",
	"utilix.login",
	"password",
	"master_key",
	NULL
};

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
		/* the STATEMENT: line that follows an error repeats the query */
		if (debug_query_string && utilix_text_is_sensitive(debug_query_string))
			edata->hide_stmt = true;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
RedactInit(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = utilix_emit_log;
}
