/*-------------------------------------------------------------------------
 *
 * package_manifest.c
 *	  The manifest's text form, and the rules for the paths a package may
 *	  hold (see package_manifest.h for the terms).
 *
 * Paths are bytes, as on disk, but they must be valid UTF-8 (and valid in
 * the database encoding, since the manifest is stored as text): pax headers
 * carry UTF-8 names, and clients take names as UTF-8.  The rules here are
 * the ones both the writer of a package (package_archive.c) and its readers
 * (package_extract.c, package_delta.c) apply, so a reader accepts exactly
 * what a writer may produce.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_manifest.h"

#include "formats/link_rule.h"

#include <sys/stat.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"

/* The manifest's placeholder digest for a directory: 64 '-'. */
#define DIR_DIGEST_CHARS	(PG_SHA256_DIGEST_LENGTH * 2)


/* ------------------------------------------------------------------------
 * Paths
 * ------------------------------------------------------------------------
 */

/*
 * Is path safe to create below a directory?  Non-empty, relative, at most
 * SMS_PATH_LENGTH_CEILING bytes (smsdist.max_path_length, lower, is checked
 * where a package is built or extracted), no empty, "." or ".." component, no backslash
 * (a directory separator on the Windows clients that receive packages), no
 * control character (bytes below 0x20, and 0x7f: the manifest is line-
 * oriented).  One trailing '/' is accepted, because that is how the manifest
 * and the tar mark a directory; a caller that expects a file must check
 * for it itself.  This is a byte-level rule, independent of encoding and
 * locale, so the reader of a package applies exactly the rule its writer did.
 */
bool
sms_safe_relative_path(const char *path)
{
	size_t		len = strlen(path);
	const char *comp = path;

	if (len == 0 || len > SMS_PATH_LENGTH_CEILING || path[0] == '/')
		return false;
	for (const unsigned char *p = (const unsigned char *) path; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			return false;
	}

	/* walk the components; a final '/' ends the path, it opens no component */
	for (;;)
	{
		const char *slash = strchr(comp, '/');
		size_t		clen = slash ? (size_t) (slash - comp) : strlen(comp);

		if (clen == 0 ||
			(clen == 1 && comp[0] == '.') ||
			(clen == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
		if (slash == NULL || slash[1] == '\0')
			return true;
		comp = slash + 1;
	}
}

/*
 * A name or path as it may appear in a message: control characters, and
 * every non-ASCII byte if the string is not valid in the database encoding,
 * are shown as \xNN, the Unicode controls of a UTF-8 database as \uNNNN,
 * so a hostile name can neither break nor hide in a log line, nor upset the
 * client's conversion of the message.
 */
char *
sms_path_printable(const char *s)
{
	StringInfoData buf;
	bool		valid = pg_verifymbstr(s, strlen(s), true);
	bool		utf8 = valid && GetDatabaseEncoding() == PG_UTF8;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !valid))
			appendStringInfo(&buf, "\\x%02x", *p);
		else if (utf8 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
		{
			/* the invisible C1 controls, U+0080-U+009F */
			appendStringInfo(&buf, "\\u%04x", p[1]);
			p++;
		}
		else if (utf8 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
		{
			/* U+2028, U+2029: line and paragraph separators */
			appendStringInfo(&buf, "\\u%04x", 0x2000 + (p[2] - 0x80));
			p += 2;
		}
		else
			appendStringInfoChar(&buf, (char) *p);
	}
	return buf.data;
}

/*
 * Why a name or path cannot be part of a package, or NULL if it can.
 * Beyond what sms_safe_relative_path demands: valid UTF-8 (see the header
 * comment), valid in the database encoding, and none of the Unicode
 * controls that validate.c refuses in names (C1 controls, U+2028, U+2029),
 * which would fool a reader of the manifest or of a listing.
 */
const char *
sms_path_name_problem(const char *name)
{
	int			len = strlen(name);
	const unsigned char *p;

	for (p = (const unsigned char *) name; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			return "a control character";
		if (*p == '\\')
			return "a backslash";
	}
	if (pg_encoding_verifymbstr(PG_UTF8, name, len) != len)
		return "bytes that are not valid UTF-8";
	if (!pg_verifymbstr(name, len, true))
		return "characters that are not valid in the database encoding";
	for (p = (const unsigned char *) name; *p; p++)
	{
		if ((p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) ||
			(p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)))
			return "a Unicode control character";
	}
	return NULL;
}

/*
 * check_package_path(text): a path to a file inside a package's tree
 * (packages.icon_file), by the rules of every path a package holds; an
 * error that says what is wrong otherwise.
 */
PG_FUNCTION_INFO_V1(smsdist_check_package_path);
Datum
smsdist_check_package_path(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	size_t		len = strlen(path);
	const char *problem = sms_path_name_problem(path);

	if (problem == NULL && (!sms_safe_relative_path(path) || path[len - 1] == '/'))
		problem = "it must be relative to the package's tree, with no empty, \".\" or \"..\" component, "
			"and name a file, not a directory";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid path in a package \"%s\": %s", sms_path_printable(path), problem)));
	PG_RETURN_BOOL(true);
}

int
sms_path_depth(const char *path)
{
	int			depth = 1;

	for (const char *p = path; *p; p++)
	{
		if (*p == '/' && p[1] != '\0')
			depth++;
	}
	return depth;
}

/* Bytes of an mtime as the manifest writes it: seconds, '.', 9 digits. */
static int
mtime_bytes(const struct timespec *t)
{
	char		digits[32];

	return snprintf(digits, sizeof(digits), "%lld", (long long) t->tv_sec) + 1 + 9;
}

int64
sms_manifest_line_bytes(const char *path, int64 size, const struct timespec *mtime,
						const char *target)
{
	char		digits[32];

	/* digest, space, size, space, mode (4), space, mtime, space, path, newline */
	return DIR_DIGEST_CHARS + 1 + snprintf(digits, sizeof(digits), INT64_FORMAT, size) +
		1 + 4 + 1 + mtime_bytes(mtime) + 1 + strlen(path) +
		(target ? strlen(SMS_LINK_ARROW) + strlen(target) : 0) + 1;
}

int64
sms_manifest_header_bytes(void)
{
	return strlen(SMS_MANIFEST_HEADER) + 1;
}

const char *
sms_mode_problem(int mode, bool is_dir, bool is_link)
{
	if (is_link)
		return (mode & 07777) == 0777 ? NULL : "a link's mode other than 0777";
	if (mode & S_ISUID)
		return "the setuid bit";
	if (!is_dir && (mode & S_ISGID))
		return "the setgid bit on a file";
	if (!is_dir && (mode & S_ISVTX))
		return "the sticky bit on a file";
	return NULL;
}

/*
 * The link rule (package_manifest.h): what is about the target's text is
 * checked here, the walk on names is the one the agent's cache applies too
 * (src/formats/link_rule.c).
 */
const char *
sms_link_target_problem(const char *linkpath, const char *target,
						SmsIsLinkFn is_link, void *arg)
{
	size_t		tlen = strlen(target);
	char	   *res;
	const char *problem;

	if (tlen == 0)
		return "its target is empty";
	if (target[0] == '/')
		return "its target is an absolute path";
	if (tlen > SMS_PATH_LENGTH_CEILING)
		return "its target is too long";
	problem = sms_path_name_problem(target);
	if (problem != NULL)
		return psprintf("its target contains %s", problem);

	res = palloc(strlen(linkpath) + tlen + 2);
	problem = sms_fmt_link_walk_problem(linkpath, target, res, is_link, arg);
	if (problem == sms_fmt_link_through_link)
		problem = psprintf("its target passes through \"%s\", a symbolic link",
						   sms_path_printable(res));
	pfree(res);
	return problem;
}

/* ------------------------------------------------------------------------
 * The manifest's text form
 * ------------------------------------------------------------------------
 */

char *
sms_manifest_to_text(const SmsManifest *m)
{
	StringInfoData buf;
	static const char hex[] = "0123456789abcdef";

	initStringInfo(&buf);
	if (m->version >= 2)
		appendStringInfoString(&buf, SMS_MANIFEST_HEADER "\n");
	for (int i = 0; i < m->nentries; i++)
	{
		const SmsManifestEntry *e = &m->entries[i];

		if (e->is_dir || e->is_link)
		{
			for (int j = 0; j < DIR_DIGEST_CHARS; j++)
				appendStringInfoChar(&buf, e->is_link ? '@' : '-');
		}
		else
		{
			for (int j = 0; j < PG_SHA256_DIGEST_LENGTH; j++)
			{
				appendStringInfoChar(&buf, hex[e->sha256[j] >> 4]);
				appendStringInfoChar(&buf, hex[e->sha256[j] & 0x0f]);
			}
		}
		appendStringInfo(&buf, " " INT64_FORMAT " %04o ", e->size, e->mode & 07777);
		if (m->version >= 2)
			appendStringInfo(&buf, "%lld.%09ld ",
							 (long long) e->mtime.tv_sec, (long) e->mtime.tv_nsec);
		appendStringInfoString(&buf, e->path);
		if (e->is_link)
			appendStringInfo(&buf, SMS_LINK_ARROW "%s", e->target);
		appendStringInfoChar(&buf, '\n');
	}
	return buf.data;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The manifest entry for path, or NULL (entries sorted by strcmp). */
const SmsManifestEntry *
sms_manifest_find(const SmsManifest *m, const char *path)
{
	int			lo = 0;
	int			hi = m->nentries - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(path, m->entries[mid].path);

		if (c == 0)
			return &m->entries[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void
pg_attribute_noreturn()
manifest_error(const char *what, int lineno, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid manifest in %s, line %d: %s", what, lineno, problem)));
}

/*
 * A version 2 line's mtime at f: seconds (decimal, no leading zeros, '-'
 * before a time before 1970), '.', exactly nine digits of nanoseconds, one
 * space.  Returns where the path begins.
 */
static const char *
parse_mtime(const char *f, const char *nl, const char *what, int lineno, SmsManifestEntry *e)
{
	bool		negative = false;
	int64		sec = 0;
	long		nsec = 0;
	int			ndigits = 0;

	if (f < nl && *f == '-')
	{
		negative = true;
		f++;
	}
	while (f < nl && *f >= '0' && *f <= '9')
	{
		if (sec > (PG_INT64_MAX / 10) - 10)
			manifest_error(what, lineno, "the modification time is out of range");
		sec = sec * 10 + (*f - '0');
		ndigits++;
		f++;
	}
	if (ndigits == 0 || (ndigits > 1 && f[-ndigits] == '0') || (negative && sec == 0))
		manifest_error(what, lineno, "the modification time's seconds are not a decimal number without leading zeros");
	if (f >= nl || *f++ != '.')
		manifest_error(what, lineno, "expected '.' and nanoseconds in the modification time");
	for (int i = 0; i < 9; i++, f++)
	{
		if (f >= nl || *f < '0' || *f > '9')
			manifest_error(what, lineno, "the modification time's nanoseconds are not nine digits");
		nsec = nsec * 10 + (*f - '0');
	}
	if (f >= nl || *f++ != ' ')
		manifest_error(what, lineno, "expected one space after the modification time");
	if ((time_t) sec != sec)
		manifest_error(what, lineno, "the modification time is out of range");
	e->has_mtime = true;
	e->mtime.tv_sec = negative ? -sec : sec;
	e->mtime.tv_nsec = nsec;
	return f;
}

/*
 * One line of a manifest, p up to its newline nl, into e: everything a line
 * must be on its own (the order of lines is checked by the caller).
 */
static void
parse_manifest_line(const char *p, const char *nl, const char *what, int lineno,
					int version, SmsManifestEntry *e)
{
	const char *f = p;
	bool		dashes = true;
	bool		ats = (version >= 2);
	bool		hexdigits = true;
	int64		size = 0;
	int			ndigits = 0;
	int			mode = 0;
	size_t		pathlen;

	/* digest: 64 lower-case hex digits, or 64 '-' for a directory */
	if (nl - f < DIR_DIGEST_CHARS + 1)
		manifest_error(what, lineno, "the line is too short");
	for (int i = 0; i < DIR_DIGEST_CHARS; i++)
	{
		dashes &= (f[i] == '-');
		ats &= (f[i] == '@');
		hexdigits &= (hex_value(f[i]) >= 0);
	}
	if (!dashes && !hexdigits && !ats)
		manifest_error(what, lineno, version >= 2 ?
					   "the line does not begin with 64 lower-case hexadecimal digits, 64 '-' or 64 '@'" :
					   "the line does not begin with 64 lower-case hexadecimal digits or 64 '-'");
	e->is_dir = dashes;
	e->is_link = ats;
	if (hexdigits)
	{
		for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
			e->sha256[i] = (hex_value(f[2 * i]) << 4) | hex_value(f[2 * i + 1]);
	}
	f += DIR_DIGEST_CHARS;
	if (*f++ != ' ')
		manifest_error(what, lineno, "expected one space after the digest");

	/* size: decimal, no sign, no leading zeros */
	while (f < nl && *f >= '0' && *f <= '9')
	{
		if (size > (PG_INT64_MAX - (*f - '0')) / 10)
			manifest_error(what, lineno, "the size is out of range");
		size = size * 10 + (*f - '0');
		ndigits++;
		f++;
	}
	if (ndigits == 0 || (ndigits > 1 && f[-ndigits] == '0'))
		manifest_error(what, lineno, "the size is not a decimal number without leading zeros");
	if (f >= nl || *f++ != ' ')
		manifest_error(what, lineno, "expected one space after the size");

	/* mode: exactly four octal digits */
	for (int i = 0; i < 4; i++, f++)
	{
		if (f >= nl || *f < '0' || *f > '7')
			manifest_error(what, lineno, "the mode is not four octal digits");
		mode = mode * 8 + (*f - '0');
	}
	if (f >= nl || *f++ != ' ')
		manifest_error(what, lineno, "expected one space after the mode");
	if (version >= 2)
		f = parse_mtime(f, nl, what, lineno, e);

	/* path: the rest of the line; a link's ends before " -> <target>" */
	pathlen = nl - f;
	if (e->is_link)
	{
		size_t		arrow = strlen(SMS_LINK_ARROW);

		if (size == 0 || (size_t) size + arrow >= pathlen ||
			memcmp(nl - size - arrow, SMS_LINK_ARROW, arrow) != 0)
			manifest_error(what, lineno,
						   "a link's line must end with \" -> \" and a target of its size");
		e->target = pnstrdup(nl - size, size);
		pathlen -= size + arrow;
	}
	e->path = pnstrdup(f, pathlen);
	e->size = size;
	e->mode = mode;
	if (!sms_safe_relative_path(e->path))
		manifest_error(what, lineno,
					   psprintf("unsafe path \"%s\"", sms_path_printable(e->path)));
	{
		const char *problem = sms_path_name_problem(e->path);

		if (problem != NULL)
			manifest_error(what, lineno,
						   psprintf("path \"%s\" contains %s", sms_path_printable(e->path), problem));
	}
	if (e->is_dir != (e->path[pathlen - 1] == '/'))
		manifest_error(what, lineno,
					   e->is_dir ? "a directory's path must end with '/'"
					   : "a file's path must not end with '/'");
	if (e->is_dir && size != 0)
		manifest_error(what, lineno, "a directory's size must be 0");
	if (version >= 2)
	{
		const char *problem = sms_mode_problem(mode, e->is_dir, e->is_link);

		if (problem != NULL)
			manifest_error(what, lineno,
						   psprintf("\"%s\" has %s", sms_path_printable(e->path), problem));
	}
	if (strcmp(e->path, SMS_MANIFEST_NAME) == 0 ||
		strcmp(e->path, SMS_MANIFEST_NAME "/") == 0 ||
		strcmp(e->path, SMS_DELTA_NAME) == 0 ||
		strcmp(e->path, SMS_DELTA_NAME "/") == 0)
		manifest_error(what, lineno,
					   psprintf("the name \"%s\" is reserved", e->path));
}

/*
 * The tree a manifest describes must be possible.  For each entry, none of
 * its ancestors may be listed as a file or a link ("a" for "a/b"), and a
 * directory "a/" may not also be a file "a".  In version 1 no ancestor may
 * be listed as an (empty) directory either ("a/" for "a/b"); in version 2
 * every ancestor must be listed as one.
 */
static void
check_tree_possible(const SmsManifest *m, const char *what)
{
	int			first = m->version >= 2 ? 2 : 1;	/* the first entry's line */

	for (int i = 0; i < m->nentries; i++)
	{
		const char *path = m->entries[i].path;
		size_t		plen = strlen(path);
		char	   *prefix = palloc(plen + 1);
		const SmsManifestEntry *other;

		CHECK_FOR_INTERRUPTS();
		for (size_t j = 0; j < plen; j++)
		{
			if (path[j] != '/')
				continue;
			memcpy(prefix, path, j);
			prefix[j] = '\0';
			other = sms_manifest_find(m, prefix);
			if (other != NULL && j + 1 == plen)
				manifest_error(what, i + first,
							   psprintf("\"%s\" is listed both as a %s and as a directory",
										sms_path_printable(prefix),
										other->is_link ? "link" : "file"));
			if (other != NULL)
				manifest_error(what, i + first,
							   psprintf("\"%s\" is inside \"%s\", which is listed as a %s",
										sms_path_printable(path), sms_path_printable(prefix),
										other->is_link ? "link" : "file"));
			if (j + 1 < plen)
			{
				prefix[j] = '/';
				prefix[j + 1] = '\0';
				other = sms_manifest_find(m, prefix);
				if (other != NULL && m->version < 2)
					manifest_error(what, i + first,
								   psprintf("directory \"%s\" is listed as empty, but \"%s\" is inside it",
											sms_path_printable(prefix), sms_path_printable(path)));
				if (other == NULL && m->version >= 2)
					manifest_error(what, i + first,
								   psprintf("directory \"%s\" is not listed, but \"%s\" is inside it",
											sms_path_printable(prefix), sms_path_printable(path)));
			}
		}
		pfree(prefix);
	}
}

/* SmsIsLinkFn over a manifest. */
static bool
manifest_is_link(void *arg, const char *path)
{
	const SmsManifestEntry *e = sms_manifest_find((const SmsManifest *) arg, path);

	return e != NULL && e->is_link;
}

/* Every link must follow the link rule (package_manifest.h). */
static void
check_links(const SmsManifest *m, const char *what)
{
	for (int i = 0; i < m->nentries; i++)
	{
		const SmsManifestEntry *e = &m->entries[i];
		const char *problem;

		if (!e->is_link)
			continue;
		problem = sms_link_target_problem(e->path, e->target, manifest_is_link, (void *) m);
		if (problem != NULL)
			manifest_error(what, i + 1 + (m->version >= 2 ? 1 : 0),
						   psprintf("link \"%s\": %s", sms_path_printable(e->path), problem));
	}
}

/*
 * Parse the text form, accepting only what sms_manifest_to_text writes:
 * the header line of version 2 or none (version 1), one space between
 * fields, a size without sign or leading zeros, a mode of exactly four
 * octal digits (version 2: one sms_mode_problem accepts), a modification
 * time (version 2), links that follow the link rule, lines sorted and
 * unique, every line ended by a newline, safe paths.  The tree described
 * must also be possible: no path below a name that is listed as a file or
 * a link, no directory listed as empty that has something in it (version
 * 1), no directory unlisted that has (version 2).  So one package has one
 * manifest text.
 */
SmsManifest *
sms_manifest_parse(const char *text, size_t len, const char *what)
{
	SmsManifest *m = palloc0(sizeof(SmsManifest));
	const char *p = text;
	const char *end = text + len;
	const char *nul = memchr(text, '\0', len);
	int			nlines = 0;
	int			lineno;

	if (nul != NULL)
	{
		lineno = 1;
		for (const char *q = text; q < nul; q++)
			lineno += (*q == '\n');
		manifest_error(what, lineno, "it contains a NUL byte");
	}
	for (const char *q = text; q < end; q++)
		nlines += (*q == '\n');
	if (len > 0 && text[len - 1] != '\n')
		manifest_error(what, nlines + 1, "the last line does not end with a newline");

	m->entries = palloc_extended(sizeof(SmsManifestEntry) * Max(nlines, 1),
								 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	m->version = 1;
	lineno = 1;
	if ((size_t) (end - p) > strlen(SMS_MANIFEST_HEADER) &&
		memcmp(p, SMS_MANIFEST_HEADER "\n", strlen(SMS_MANIFEST_HEADER) + 1) == 0)
	{
		m->version = SMS_MANIFEST_VERSION;
		p += strlen(SMS_MANIFEST_HEADER) + 1;
		lineno++;
	}
	for (; p < end; lineno++)
	{
		const char *nl = memchr(p, '\n', end - p);
		SmsManifestEntry *e = &m->entries[m->nentries];

		Assert(nl != NULL);
		parse_manifest_line(p, nl, what, lineno, m->version, e);
		if (m->nentries > 0)
		{
			int			c = strcmp(m->entries[m->nentries - 1].path, e->path);

			if (c == 0)
				manifest_error(what, lineno,
							   psprintf("duplicate path \"%s\" (also on line %d)",
										sms_path_printable(e->path), lineno - 1));
			if (c > 0)
				manifest_error(what, lineno,
							   psprintf("path \"%s\" is out of order: lines must be sorted by path",
										sms_path_printable(e->path)));
		}

		/* a link's size is its target's length: not bytes of the package */
		if (!e->is_link)
		{
			if (m->total_bytes > PG_INT64_MAX - e->size)
				manifest_error(what, lineno, "the total size is out of range");
			m->total_bytes += e->size;
		}
		m->nentries++;
		p = nl + 1;
	}

	check_tree_possible(m, what);
	check_links(m, what);
	return m;
}


