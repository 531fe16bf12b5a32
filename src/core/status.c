/*-------------------------------------------------------------------------
 *
 * status.c
 *	  Writing status messages: the operator-visible log of every component.
 *
 * A status message is a row of smsdist.status_messages, as in SMS's status
 * system: site, component, machine, severity, message ID, time, text and the
 * IDs it refers to (job, package, advertisement).  Components write one for
 * every state change and every failure, in the same transaction as the
 * change itself, so the log and the tables never disagree.  The message IDs
 * are listed in docs/status-messages.md.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "smsdist.h"
#include "message_text.h"
#include "status.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

static const char *const severity_names[] = {"informational", "warning", "error"};

static Datum
text_or_null(const char *s, char *nullflag)
{
	if (s == NULL)
	{
		*nullflag = 'n';
		return (Datum) 0;
	}
	*nullflag = ' ';
	return CStringGetTextDatum(s);
}

/*
 * Insert one status message.  Must be called with SPI connected, inside a
 * transaction.
 */
void
sms_status_message(SmsComponentId component, SmsSeverity severity,
				   int message_id, const SmsStatusRefs *refs,
				   const char *fmt,...)
{
	static const SmsStatusRefs no_refs = {0};
	char	   *text;
	Oid			argtypes[9] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[9];
	char		nulls[10];
	const char *site;
	int			ret;

	if (refs == NULL)
		refs = &no_refs;

	{
		va_list		ap;

		va_start(ap, fmt);
		text = sms_vformat(fmt, ap);
		va_end(ap);
	}

	site = refs->site_code;
	if (site == NULL && sms_site_code != NULL && sms_site_code[0] != '\0')
		site = sms_site_code;

	values[0] = text_or_null(site, &nulls[0]);
	values[1] = text_or_null(sms_components[component].name, &nulls[1]);
	values[2] = text_or_null(severity_names[severity], &nulls[2]);
	values[3] = Int32GetDatum(message_id);
	nulls[3] = ' ';
	values[4] = text_or_null(text, &nulls[4]);
	values[5] = text_or_null(refs->job_id, &nulls[5]);
	values[6] = text_or_null(refs->package_id, &nulls[6]);
	values[7] = text_or_null(refs->advert_id, &nulls[7]);
	values[8] = text_or_null(refs->machine, &nulls[8]);
	nulls[9] = '\0';

	ret = sms_execute_kept(
						   "INSERT INTO smsdist.status_messages "
						   "(site_code, component, severity, message_id, message, "
						   " job_id, package_id, advert_id, machine) "
						   "VALUES ($1, $2, $3::smsdist.severity, $4, $5, $6, $7, $8, $9)",
						   9, argtypes, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record status message: SPI_execute_with_args returned %d", ret);
}
