/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  The one definition of every rule for names, IDs and paths.
 *
 * The same functions back the SQL domains (so bad input is refused at
 * INSERT with a message that says what a valid value looks like) and are
 * called again by the workers before a value becomes part of a file name,
 * so a row that reached a table some other way still cannot lead a worker
 * out of its directory.  Site codes and SMS IDs are checked by the formats
 * library (src/formats/values.c), which the client agent shares: one
 * definition for the server and the workstation.
 *
 * Terms:
 *	site code	three characters A-Z/0-9, e.g. CEN.
 *	SMS ID		site code + five upper-case hexadecimal digits, e.g. CEN00001;
 *				used for packages, jobs, collections, advertisements and
 *				systems.  It names files (PCM files, SMS_PKGx/<id>), so its
 *				alphabet is deliberately narrow.
 *	object name	a display name (package, program, collection, site): 1-128
 *				characters, none of them a control character or one of
 *				\ / : * ? " < > |, not "." or "..", no leading or trailing
 *				space, no trailing dot -- the Windows file-name rules, so a
 *				name is safe wherever SMS would have used it.
 *	NetBIOS name a machine, user-domain or group-domain name: 1-15 of
 *				A-Z a-z 0-9 - _ , not starting with '-'.
 *	server path	an absolute path on a site server (package source, a site
 *				system's root): starts with '/', no empty, "." or ".."
 *				components, no trailing '/', no control characters, at most
 *				1024 bytes.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "validate.h"
#include "formats/values.h"

#include "fmgr.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#define MAX_OBJECT_NAME		128
#define MAX_NETBIOS_NAME	15
#define MAX_SERVER_PATH		1024

/*
 * Does s contain a control character?  ASCII C0 and DEL always; in a UTF-8
 * database also the C1 controls (U+0080-U+009F, which include NEL) and the
 * line and paragraph separators U+2028/U+2029, any of which could break a
 * line-oriented instruction file or fool a reader of one.
 */
static bool
has_control_char(const char *s)
{
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			return true;
		if (utf8 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
			return true;
		if (utf8 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
			return true;
	}
	return false;
}

bool
sms_valid_site_code(const char *s, bool raise)
{
	bool		ok = sms_fmt_valid_site_code(s);

	if (!ok && raise)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid site code \"%s\"", s),
				 errdetail("A site code is exactly three characters, each an upper-case letter A-Z or a digit 0-9, for example CEN.")));
	return ok;
}

bool
sms_valid_sms_id(const char *s, bool raise)
{
	bool		ok = sms_fmt_valid_sms_id(s);

	if (!ok && raise)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid SMS ID \"%s\"", s),
				 errdetail("An SMS ID is a three-character site code followed by five upper-case hexadecimal digits (0-9, A-F), for example CEN00001.")));
	return ok;
}

bool
sms_valid_object_name(const char *s, const char *what, bool raise)
{
	size_t		len = strlen(s);
	const char *problem = NULL;

	if (len == 0)
		problem = "it is empty";
	else if (pg_mbstrlen(s) > MAX_OBJECT_NAME)
		problem = "it is longer than 128 characters";
	else if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		problem = "\".\" and \"..\" name directories";
	else if (s[0] == ' ' || s[len - 1] == ' ')
		problem = "it begins or ends with a space";
	else if (s[len - 1] == '.')
		problem = "it ends with a dot";
	else if (has_control_char(s))
		problem = "it contains a control character";
	else if (strpbrk(s, "\\/:*?\"<>|") != NULL)
		problem = "it contains one of \\ / : * ? \" < > |";

	if (problem != NULL && raise)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid %s \"%s\": %s", what, s, problem),
				 errdetail("A name is 1 to 128 characters without control characters or any of \\ / : * ? \" < > |, is not \".\" or \"..\", and does not begin or end with a space or end with a dot.")));
	return problem == NULL;
}

bool
sms_valid_netbios_name(const char *s, const char *what, bool raise)
{
	size_t		len = strlen(s);
	bool		ok = len >= 1 && len <= MAX_NETBIOS_NAME && s[0] != '-';

	for (size_t i = 0; ok && i < len; i++)
		ok = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_';

	if (!ok && raise)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid %s \"%s\"", what, s),
				 errdetail("A %s is 1 to 15 characters A-Z, a-z, 0-9, - or _, and does not begin with -.", what)));
	return ok;
}

/* A stream ID (smsdist.h): it becomes part of a file name. */
bool
sms_valid_stream_id(const char *s)
{
	if (strlen(s) != SMS_STREAM_ID_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

bool
sms_valid_server_path(const char *s, const char *what, bool raise)
{
	size_t		len = strlen(s);
	const char *problem = NULL;

	if (len == 0 || s[0] != '/')
		problem = "it is not an absolute path";
	else if (len > MAX_SERVER_PATH)
		problem = "it is longer than 1024 bytes";
	else if (len > 1 && s[len - 1] == '/')
		problem = "it ends with /";
	else
	{
		const char *comp = s + 1;

		if (has_control_char(s))
			problem = "it contains a control character";
		/* walk the components: none may be empty, "." or ".." */
		while (problem == NULL && len > 1)
		{
			const char *slash = strchr(comp, '/');
			size_t		clen = slash ? (size_t) (slash - comp) : strlen(comp);

			if (clen == 0)
				problem = "it contains //";
			else if ((clen == 1 && comp[0] == '.') ||
					 (clen == 2 && comp[0] == '.' && comp[1] == '.'))
				problem = "it contains a . or .. component";
			if (slash == NULL)
				break;
			comp = slash + 1;
		}
	}

	if (problem != NULL && raise)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid %s \"%s\": %s", what, s, problem),
				 errdetail("A server path is absolute and canonical: it begins with /, has no empty, \".\" or \"..\" components, no trailing / and no control characters.")));
	return problem == NULL;
}

/*
 * SQL wrappers used by the domains.  Each returns true or raises an error
 * that says what is wrong; NULL passes (NOT NULL is the column's business).
 */
PG_FUNCTION_INFO_V1(smsdist_check_site_code);
Datum
smsdist_check_site_code(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sms_valid_site_code(text_to_cstring(PG_GETARG_TEXT_PP(0)), true));
}

PG_FUNCTION_INFO_V1(smsdist_check_sms_id);
Datum
smsdist_check_sms_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sms_valid_sms_id(text_to_cstring(PG_GETARG_TEXT_PP(0)), true));
}

PG_FUNCTION_INFO_V1(smsdist_check_object_name);
Datum
smsdist_check_object_name(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sms_valid_object_name(text_to_cstring(PG_GETARG_TEXT_PP(0)), "name", true));
}

PG_FUNCTION_INFO_V1(smsdist_check_netbios_name);
Datum
smsdist_check_netbios_name(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sms_valid_netbios_name(text_to_cstring(PG_GETARG_TEXT_PP(0)), "NetBIOS name", true));
}

PG_FUNCTION_INFO_V1(smsdist_check_server_path);
Datum
smsdist_check_server_path(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sms_valid_server_path(text_to_cstring(PG_GETARG_TEXT_PP(0)), "server path", true));
}

/*
 * A command line goes into line-oriented instruction files (PCM, .OFR), so
 * it may not contain control characters; it must not be empty.
 */
PG_FUNCTION_INFO_V1(smsdist_check_command_line);
Datum
smsdist_check_command_line(PG_FUNCTION_ARGS)
{
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	size_t		len = strlen(s);

	if (len == 0 || len > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid command line: it must be 1 to 1024 bytes long")));
	if (has_control_char(s))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid command line \"%s\": it contains a control character", s),
				 errdetail("Command lines are written into line-oriented instruction files and may not contain line breaks or other control characters.")));
	PG_RETURN_BOOL(true);
}

/*
 * A sender address's conninfo must be parseable by libpq, so a typo is
 * found when the row is inserted and not when the Sender first uses it.
 */
PG_FUNCTION_INFO_V1(smsdist_check_conninfo);
Datum
smsdist_check_conninfo(PG_FUNCTION_ARGS)
{
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *err = NULL;
	PQconninfoOption *opts;

	if (strspn(s, " \t\r\n") == strlen(s))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid connection string for sender address: it is empty"),
				 errhint("Use libpq's key=value form, for example 'host=child.example.org port=5432 dbname=sms user=smsdist_sender'.")));
	opts = PQconninfoParse(s, &err);

	if (opts == NULL)
	{
		char	   *msg = err ? pstrdup(err) : pstrdup("out of memory");

		if (err)
			PQfreemem(err);
		/* libpq's messages end with a newline */
		if (msg[0] != '\0' && msg[strlen(msg) - 1] == '\n')
			msg[strlen(msg) - 1] = '\0';
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid connection string for sender address: %s", msg),
				 errhint("Use libpq's key=value form, for example 'host=child.example.org port=5432 dbname=sms user=smsdist_sender'.")));
	}
	PQconninfoFree(opts);
	PG_RETURN_BOOL(true);
}
