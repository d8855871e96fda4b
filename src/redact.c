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
	"login",
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

static void
utilix_emit_log(ErrorData *edata)
{
	if (edata->output_to_server)
	{
		if (utilix_text_is_sensitive(edata->message))
		{
			const char *colon = strchr(edata->message, ':');
			int			keep = colon ? (int) (colon - edata->message) : 0;

			/* keep "statement", "execute <name>" or "duration: ..." prefixes */
			if (keep > 0 && keep < 64 &&
				(strncmp(edata->message, "statement", 9) == 0 ||
				 strncmp(edata->message, "execute", 7) == 0 ||
				 strncmp(edata->message, "duration", 8) == 0))
				edata->message = psprintf("%.*s: <redacted by utilix>", keep, edata->message);
			else
				edata->message = pstrdup("<message redacted by utilix>");
			edata->detail = NULL;
			edata->detail_log = NULL;
		}
		if (utilix_text_is_sensitive(edata->detail) || utilix_text_is_sensitive(edata->detail_log))
		{
			edata->detail = NULL;
			edata->detail_log = NULL;
		}
		if (utilix_text_is_sensitive(edata->internalquery))
			edata->internalquery = NULL;
		if (utilix_text_is_sensitive(edata->context))
			edata->context = NULL;
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
