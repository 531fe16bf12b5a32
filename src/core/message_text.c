/*-------------------------------------------------------------------------
 *
 * message_text.c
 *	  The text a format and its arguments make, in palloc'd memory: for the
 *	  functions that take "..." (status messages, error details).
 *
 * A module of its own, with no other dependency than the server's
 * StringInfo, so that the fuzz targets link it as it is.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "message_text.h"

#include "lib/stringinfo.h"

/* The arguments are read as often as the buffer must grow, each time from a copy. */
char *
sms_vformat(const char *fmt, va_list args)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		copy;
		int			needed;

		va_copy(copy, args);
		needed = appendStringInfoVA(&buf, fmt, copy);
		va_end(copy);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	return buf.data;
}
