/*-------------------------------------------------------------------------
 *
 * offer_manager.c
 *	  The SMS Offer Manager: the instruction files of advertisements, in
 *	  the site server's outbox (inbox_manager.c copies them to every CAP),
 *	  and the machine policies the management point serves.
 *
 * In SMS: "when the advertisement is created and written to the SMS
 * database, a SQL trigger causes ... a wake-up ... The Offer Manager
 * component generates instruction files ... an offer file (.OFR) ...; an
 * installation file (.INS) that references the advertisement ID and the
 * collection ID it's targeting; and up to three lookup files (.LKP) ...
 * Once again, ever-faithful Inbox Manager copies these instruction files to
 * the Offerinf.box folder on the CAPs."  Package files (.PKG, .ICO, .NAL)
 * go to Pkginfo.box.
 *
 * Terms:
 *	outbox		the site server's copy: <first site_server_drive (or the
 *				package store)>/inboxes/offerinf.box and .../pkginfo.box.
 *	CAP			a client access point: a site system of role
 *				'client_access_point'; its copies are <root>/offerinf.box and
 *				<root>/pkginfo.box.
 *	instruction files	(formats in src/formats/, docs/formats.md)
 *				<ADVERT>.OFR and <ADVERT>.INS per enabled advertisement;
 *				<SITE>SYSTM.LKP, <SITE>USR.LKP, <SITE>USRGRP.LKP: for each
 *				system of this site, user and user group, the advertisements
 *				whose collection (with its subcollections, when the
 *				advertisement includes them) has it as a member;
 *				<PACKAGE>.PKG and <PACKAGE>.NAL for each advertised package
 *				that is published at this site, and <PACKAGE>.ICO when the
 *				package names an icon (packages.icon_file) that passes.
 *	icon		read from the package's first published tree at this site
 *				(package_icon.c), checked (src/formats/icon_file.h) and
 *				written as it is: its SHA-256 in the signed .PKG vouches
 *				for it.  A refused icon does not hold the offer back: the
 *				.PKG says icon=none, package_icons.problem says why, and
 *				status message 3600 says it once per new problem.
 *
 * Every file is signed with the site's key (site_key.c, smsdist.signing_key)
 * before it is compared with what the outbox holds; signatures are
 * deterministic, so an unchanged file is not rewritten, and a new key
 * rewrites them all.
 *
 * The files are a function of the tables: every step of the Offer Manager
 * computes all of them, writes those whose content changed (temporary
 * name, fsync, rename) and removes the ones no longer wanted; a wake-up
 * that was missed costs nothing but the wait for the next one or the poll.
 * The Inbox Manager then makes every CAP's boxes equal to the outbox.  A
 * lookup file only lists machines of this site; a child site's Offer
 * Manager writes its own, from the advertisement the parent's Replication
 * Manager sent it (replication_manager.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "instruction_box.h"
#include "offer_manager.h"
#include "pcm_writer.h"
#include "site_key.h"
#include "worker.h"
#include "smsdist.h"
#include "package_store.h"
#include "package_icon.h"
#include "sha256.h"
#include "status.h"

#include <time.h>

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "formats/sms_formats.h"
#include "formats/sms_signature.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"


static List *wanted = NIL;		/* of SmsBoxFile, in sms_step_context */

/* the site's key for this step (taken before any file is made) */
static const SmsSigner *step_signer = NULL;

/*
 * A file taken into the wanted list as it is: a package's icon, vouched
 * for by its hash in the signed .PKG (and, through want(), every
 * instruction file once signed).
 */
static void
want_unsigned(const char *box, const char *name, const char *buf, size_t len)
{
	MemoryContext old = MemoryContextSwitchTo(sms_step_context);
	SmsBoxFile *w = palloc(sizeof(SmsBoxFile));

	w->box = box;
	w->name = pstrdup(name);
	w->text = palloc(len + 1);
	memcpy(w->text, buf, len);
	w->text[len] = '\0';
	w->len = len;
	wanted = lappend(wanted, w);
	MemoryContextSwitchTo(old);
}

/*
 * Take a malloc'd buffer from the format library into the wanted list,
 * signed with the site's key: no instruction file leaves unsigned.
 */
static void
want(const char *box, const char *name, char *buf, size_t len)
{
	char		err[512];

	if (!sms_sig_append(step_signer, &buf, &len, err, sizeof(err)))
	{
		free(buf);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("could not sign \"%s\": %s", name, err)));
	}
	want_unsigned(box, name, buf, len);
	free(buf);
}

static void
pg_attribute_noreturn()
format_failed(const char *what, const char *id, const char *err)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("could not write the %s of %s: %s", what, id, err)));
}

/* Split a comma list into a malloc'd array for the format library. */
static char **
split_list(const char *s, size_t *n)
{
	char	  **out;

	if (!sms_fmt_split(s, ',', &out, n))
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return out;
}

#define free_list(l, n) sms_fmt_free_list((l), (n))

static int64
int8_or(HeapTuple t, TupleDesc d, int col, int64 none)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);

	return isnull ? none : DatumGetInt64(v);
}

static bool
bool_at(HeapTuple t, TupleDesc d, int col)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);

	return !isnull && DatumGetBool(v);
}

/* .OFR and .INS of every enabled advertisement. */
static void
offers(void)
{
	SPITupleTable *ads;
	uint64		nads;
	char		err[512];
	char		name[SMS_FMT_NAME_BUFLEN];

	if (sms_execute_kept_noargs("SELECT a.advert_id::text, a.name::text, a.package_id::text, a.program_name::text,"
								"       pr.command_line::text, coalesce(array_to_string(pr.platforms, ','), ''),"
								"       extract(epoch FROM a.offer_time)::bigint, a.offer_time_utc,"
								"       extract(epoch FROM a.expires_time)::bigint, a.expires_time_utc,"
								"       a.collection_id::text,"
								"       (SELECT string_agg(extract(epoch FROM s.assign_time)::bigint || ':' || s.assign_time_utc::text"
								"                          || ':' || coalesce((extract(epoch FROM s.recur_every) / 60)::bigint, 0),"
								"                          ',' ORDER BY s.assign_time)"
								"          FROM smsdist.advertisement_assignments s WHERE s.advert_id = a.advert_id),"
								/* the collection's windows: start minute, duration, SMS_DAY_* bits (mon = 1) */
								"       (SELECT string_agg((extract(hour FROM w.start_time) * 60 + extract(minute FROM w.start_time))::int"
								"                          || ':' || w.duration_minutes || ':'"
								"                          || (SELECT sum(1 << (array_position(enum_range(NULL::smsdist.weekday), d) - 1))"
								"                                FROM unnest(w.days) d), ',')"
								"          FROM smsdist.maintenance_windows w WHERE w.collection_id = a.collection_id AND w.enabled),"
								"       a.rerun_behaviour"
								"  FROM smsdist.advertisements a"
								"  JOIN smsdist.programs pr ON pr.package_id = a.package_id AND pr.program_name = a.program_name"
								" WHERE a.enabled ORDER BY a.advert_id",
								false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist offer manager: reading advertisements failed");
	ads = SPI_tuptable;
	nads = SPI_processed;
	for (uint64 i = 0; i < nads; i++)
	{
		HeapTuple	t = ads->vals[i];
		TupleDesc	d = ads->tupdesc;
		SmsOfferFile o = {0};
		SmsInstallFile ins = {0};
		char	   *buf;
		size_t		len;
		bool		ok;
		char	   *assigns = SPI_getvalue(t, d, 12);
		char	   *windows = SPI_getvalue(t, d, 13);

		o.advert_id = SPI_getvalue(t, d, 1);
		o.name = SPI_getvalue(t, d, 2);
		o.package_id = SPI_getvalue(t, d, 3);
		o.program = SPI_getvalue(t, d, 4);
		o.command_line = SPI_getvalue(t, d, 5);
		o.platforms = split_list(SPI_getvalue(t, d, 6), &o.nplatforms);
		o.offer_time.secs = int8_or(t, d, 7, SMS_TIME_NONE);
		o.offer_time.utc = bool_at(t, d, 8);
		o.expires_time.secs = int8_or(t, d, 9, SMS_TIME_NONE);
		o.expires_time.utc = bool_at(t, d, 10);
		if (!sms_rerun_from_name(SPI_getvalue(t, d, 14), &o.rerun))
			format_failed("offer file", o.advert_id, "unknown rerun behaviour");
		if (assigns != NULL)
		{
			size_t		n;
			char	  **parts = split_list(assigns, &n);

			o.assignments = palloc0(sizeof(SmsOfferAssignment) * n);
			for (size_t k = 0; k < n; k++)
			{
				char	   *p = parts[k];

				o.assignments[k].time.secs = strtoll(p, &p, 10);
				o.assignments[k].time.utc = strncmp(p, ":true", 5) == 0;
				p = strchr(p + 1, ':');
				o.assignments[k].recur_every_minutes = p ? (int32) strtol(p + 1, NULL, 10) : 0;
			}
			o.nassignments = n;
			free_list(parts, n);
		}
		if (windows != NULL)
		{
			size_t		n;
			char	  **parts = split_list(windows, &n);

			o.windows = palloc0(sizeof(SmsOfferWindow) * n);
			for (size_t k = 0; k < n; k++)
			{
				char	   *p = parts[k];

				o.windows[k].start_minute = (int) strtol(p, &p, 10);
				o.windows[k].duration_minutes = (int32) strtol(p + 1, &p, 10);
				o.windows[k].days = (unsigned) strtoul(p + 1, NULL, 10);
			}
			o.nwindows = n;
			free_list(parts, n);
		}
		ok = sms_offer_to_text(&o, &buf, &len, err, sizeof(err));
		free_list(o.platforms, o.nplatforms);
		if (!ok)
			format_failed("offer file", o.advert_id, err);
		if (!sms_fmt_file_name(SMS_FILE_OFFER, o.advert_id, 0, name, sizeof(name), err, sizeof(err)))
			format_failed("offer file", o.advert_id, err);
		want(SMS_FMT_DIR_OFFERINF, name, buf, len);

		ins.advert_id = o.advert_id;
		ins.collection_id = SPI_getvalue(t, d, 11);
		if (!sms_install_to_text(&ins, &buf, &len, err, sizeof(err)))
			format_failed("installation file", o.advert_id, err);
		if (!sms_fmt_file_name(SMS_FILE_INSTALL, o.advert_id, 0, name, sizeof(name), err, sizeof(err)))
			format_failed("installation file", o.advert_id, err);
		want(SMS_FMT_DIR_OFFERINF, name, buf, len);
	}
}

/* An advertisement's collections: its own, and its subcollections'. */
#define ADVERT_COLLECTIONS_SQL \
	"WITH RECURSIVE tgt(advert_id, collection_id, depth) AS (" \
	"  SELECT a.advert_id::text, a.collection_id::text, 0" \
	"    FROM smsdist.advertisements a WHERE a.enabled" \
	"  UNION" \
	"  SELECT t.advert_id, s.child_collection_id::text, t.depth + 1" \
	"    FROM tgt t JOIN smsdist.advertisements a ON a.advert_id = t.advert_id" \
	"    JOIN smsdist.collection_subcollections s ON s.parent_collection_id = t.collection_id" \
	"   WHERE a.include_subcollections AND t.depth < 100) "

/* The three lookup files of this site. */
static void
lookups(void)
{
	static const struct
	{
		SmsLookupKind kind;
		SmsFmtFileKind file;
		const char *sql;
	}			kinds[] = {
		{SMS_LOOKUP_SYSTEM, SMS_FILE_LOOKUP_SYSTEM,
			ADVERT_COLLECTIONS_SQL
			"SELECT m.sms_id::text, string_agg(DISTINCT t.advert_id, ',')"
			"  FROM tgt t JOIN smsdist.collection_members m USING (collection_id)"
			"  JOIN smsdist.system_resources r ON r.sms_id = m.sms_id AND r.site_code = $1"
			" GROUP BY 1 ORDER BY 1"},
		{SMS_LOOKUP_USER, SMS_FILE_LOOKUP_USER,
			ADVERT_COLLECTIONS_SQL
			"SELECT m.domain || '\\' || m.user_name, string_agg(DISTINCT t.advert_id, ',')"
			"  FROM tgt t JOIN smsdist.collection_user_members m USING (collection_id)"
			" GROUP BY 1 ORDER BY 1"},
		{SMS_LOOKUP_USERGROUP, SMS_FILE_LOOKUP_USERGROUP,
			ADVERT_COLLECTIONS_SQL
			"SELECT m.domain || '\\' || m.group_name, string_agg(DISTINCT t.advert_id, ',')"
			"  FROM tgt t JOIN smsdist.collection_group_members m USING (collection_id)"
			" GROUP BY 1 ORDER BY 1"},
	};
	char		err[512];
	char		name[SMS_FMT_NAME_BUFLEN];

	for (size_t k = 0; k < lengthof(kinds); k++)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
		SmsLookupFile f = {0};
		char	   *buf;
		size_t		len;
		bool		ok;

		if (sms_execute_kept(kinds[k].sql, kinds[k].kind == SMS_LOOKUP_SYSTEM ? 1 : 0,
							 types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist offer manager: reading collection members failed");
		if (SPI_processed == 0)
			continue;			/* no such lookup file is needed */
		f.site = sms_site_code;
		f.kind = kinds[k].kind;
		f.nentries = SPI_processed;
		f.entries = palloc0(sizeof(SmsLookupEntry) * Max(f.nentries, 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			f.entries[i].name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
			f.entries[i].adverts = split_list(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2),
											  &f.entries[i].nadverts);
		}
		ok = sms_lookup_to_text(&f, &buf, &len, err, sizeof(err));
		for (size_t i = 0; i < f.nentries; i++)
			free_list(f.entries[i].adverts, f.entries[i].nadverts);
		if (!ok)
			format_failed("lookup file", sms_site_code, err);
		if (!sms_fmt_file_name(kinds[k].file, sms_site_code, 0, name, sizeof(name), err, sizeof(err)))
			format_failed("lookup file", sms_site_code, err);
		want(SMS_FMT_DIR_OFFERINF, name, buf, len);
	}
}

/* A NetBIOS-like server name for a NAL location, made from a site system's name. */
static char *
nal_server(const char *name)
{
	char	   *s = palloc0(16);
	int			n = 0;

	for (const char *p = name; *p && n < 15; p++)
	{
		char		c = *p;

		if (isalnum((unsigned char) c) || c == '_' || (c == '-' && n > 0))
			s[n++] = c;
		else if (n > 0)
			s[n++] = '-';
	}
	if (n == 0)
		strcpy(s, "DP");
	return s;
}

/*
 * Record what was found of a package's icon in package_icons, when it
 * changed, and say a new problem once (3600).
 */
static void
record_icon(const char *package_id, int32 version, const char *icon_file, const char *sha256,
			size_t bytes, const char *problem)
{
	Oid			types[6] = {TEXTOID, INT4OID, TEXTOID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = CStringGetTextDatum(package_id);
	values[1] = Int32GetDatum(version);
	values[2] = CStringGetTextDatum(icon_file);
	values[3] = sha256 ? CStringGetTextDatum(sha256) : (Datum) 0;
	values[4] = Int32GetDatum((int32) bytes);
	values[5] = problem ? CStringGetTextDatum(problem) : (Datum) 0;
	nulls[3] = sha256 ? ' ' : 'n';
	nulls[4] = sha256 ? ' ' : 'n';
	nulls[5] = problem ? ' ' : 'n';
	if (sms_execute_kept("INSERT INTO smsdist.package_icons AS i"
						 "       (package_id, source_version, icon_file, sha256, bytes, problem)"
						 " VALUES ($1, $2, $3, $4, $5, $6)"
						 " ON CONFLICT (package_id) DO UPDATE"
						 "   SET source_version = EXCLUDED.source_version, icon_file = EXCLUDED.icon_file,"
						 "       sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, problem = EXCLUDED.problem,"
						 "       checked_at = clock_timestamp()"
						 " WHERE (i.source_version, i.icon_file, i.sha256, i.bytes, i.problem)"
						 "       IS DISTINCT FROM (EXCLUDED.source_version, EXCLUDED.icon_file,"
						 "                         EXCLUDED.sha256, EXCLUDED.bytes, EXCLUDED.problem)",
						 6, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist offer manager: recording a package icon failed");
	if (SPI_processed > 0 && problem != NULL)
	{
		SmsStatusRefs refs = {.package_id = package_id};

		sms_status_message(SMS_OFFER_MANAGER, SMS_WARNING, SMS_MSG_ICON_REFUSED, &refs,
						   "The icon of package %s (version %d) was refused; its offers go out without an icon: %s",
						   package_id, (int) version, problem);
	}
}

/*
 * The icon of package pf (icon_file under its published tree), into the
 * wanted files and pf: has_icon and icon_sha256 when it passes.
 */
static void
package_icon(SmsPackageFile *pf, const char *icon_file, const char *tree)
{
	char	   *buf;
	size_t		len;
	char	   *problem;
	char		hex[65];
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];

	if (!sms_read_package_icon(tree, icon_file, &buf, &len, &problem))
	{
		record_icon(pf->package_id, (int32) pf->source_version, icon_file, NULL, 0, problem);
		return;
	}
	sms_sha256_buffer(buf, len, hex);
	if (!sms_fmt_file_name(SMS_FILE_ICON, pf->package_id, 0, name, sizeof(name), err, sizeof(err)))
		format_failed("icon file", pf->package_id, err);
	want_unsigned(SMS_FMT_DIR_PKGINFO, name, buf, len);
	pf->has_icon = true;
	pf->icon_sha256 = pstrdup(hex);
	record_icon(pf->package_id, (int32) pf->source_version, icon_file, hex, len, NULL);
}

/*
 * What is known of the icons of packages other than these (package IDs)
 * is gone: no longer advertised here, or no icon any more.
 */
static void
forget_icons(List *with_icon)
{
	ArrayBuildState *ids = NULL;
	ListCell   *lc;
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];

	foreach(lc, with_icon)
		ids = accumArrayResult(ids, CStringGetTextDatum(lfirst(lc)), false, TEXTOID, CurrentMemoryContext);
	values[0] = ids ? makeArrayResult(ids, CurrentMemoryContext)
		: PointerGetDatum(construct_empty_array(TEXTOID));
	if (sms_execute_kept("DELETE FROM smsdist.package_icons WHERE package_id <> ALL ($1)",
						 1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "smsdist offer manager: forgetting package icons failed");
}

/*
 * .PKG and .NAL of every advertised package published at this site, and a
 * NAL that says "removed" for one removed from it.
 */
static void
packages(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	SPITupleTable *pkgs;
	uint64		npkgs;
	List	   *with_icon;
	char		err[512];
	char		name[SMS_FMT_NAME_BUFLEN];

	if (sms_execute_kept("SELECT p.package_id::text, p.name::text, p.version::text, p.manufacturer::text,"
						 "       p.language::text, l.source_version,"
						 "       coalesce(encode(sha256(convert_to(b.manifest, 'UTF8')), 'hex'), b.sha256,"
						 "                repeat('0', 64)),"
						 "       p.icon_file,"
						 "       (SELECT l2.path FROM smsdist.package_locations l2"
						 "         WHERE l2.package_id = p.package_id AND l2.site_code = $1"
						 "           AND l2.source_version = l.source_version ORDER BY l2.site_system_id LIMIT 1)"
						 "  FROM smsdist.packages p"
						 "  JOIN LATERAL (SELECT max(source_version) AS source_version FROM smsdist.package_locations l"
						 "                 WHERE l.package_id = p.package_id AND l.site_code = $1) l ON l.source_version IS NOT NULL"
						 "  LEFT JOIN smsdist.package_builds b"
						 "    ON b.package_id = p.package_id AND b.source_version = l.source_version"
						 " WHERE p.package_id IN (SELECT package_id FROM smsdist.advertisements WHERE enabled)"
						 " ORDER BY 1",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist offer manager: reading packages failed");
	pkgs = SPI_tuptable;
	npkgs = SPI_processed;
	with_icon = NIL;
	for (uint64 i = 0; i < npkgs; i++)
	{
		HeapTuple	t = pkgs->vals[i];
		TupleDesc	d = pkgs->tupdesc;
		SmsPackageFile pf = {0};
		SmsNalFile nal = {0};
		Oid			t2[3] = {TEXTOID, TEXTOID, INT4OID};
		Datum		v2[3];
		char	   *buf;
		size_t		len;
		bool		ok;
		bool		isnull;

		pf.package_id = SPI_getvalue(t, d, 1);
		pf.name = SPI_getvalue(t, d, 2);
		pf.product_version = SPI_getvalue(t, d, 3);
		pf.manufacturer = SPI_getvalue(t, d, 4);
		pf.language = SPI_getvalue(t, d, 5);
		pf.source_version = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
		pf.sha256 = SPI_getvalue(t, d, 7);
		pf.has_icon = false;
		(void) SPI_getbinval(t, d, 8, &isnull);
		if (!isnull)
		{
			/* SPI_tuptable is replaced by the queries below: the values first */
			package_icon(&pf, SPI_getvalue(t, d, 8), SPI_getvalue(t, d, 9));
			with_icon = lappend(with_icon, pf.package_id);
		}

		v2[0] = CStringGetTextDatum(pf.package_id);
		v2[1] = values[0];
		v2[2] = Int32GetDatum((int32) pf.source_version);
		if (sms_execute_kept("SELECT program_name::text, command_line::text,"
							 "       coalesce(array_to_string(platforms, ','), ''), coalesce(max_run_minutes, 0),"
							 "       run_with = 'user_rights'"
							 "  FROM smsdist.programs WHERE package_id = $1 ORDER BY 1",
							 1, t2, v2, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist offer manager: reading programs failed");
		pf.nprograms = SPI_processed;
		pf.programs = palloc0(sizeof(SmsPackageProgram) * Max(pf.nprograms, 1));
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			HeapTuple	pt = SPI_tuptable->vals[k];

			pf.programs[k].name = SPI_getvalue(pt, SPI_tuptable->tupdesc, 1);
			pf.programs[k].command_line = SPI_getvalue(pt, SPI_tuptable->tupdesc, 2);
			pf.programs[k].platforms = split_list(SPI_getvalue(pt, SPI_tuptable->tupdesc, 3),
												  &pf.programs[k].nplatforms);
			pf.programs[k].max_run_minutes = DatumGetInt32(SPI_getbinval(pt, SPI_tuptable->tupdesc, 4, &isnull));
			pf.programs[k].user_rights = DatumGetBool(SPI_getbinval(pt, SPI_tuptable->tupdesc, 5, &isnull));
		}
		ok = sms_package_to_text(&pf, &buf, &len, err, sizeof(err));
		for (size_t k = 0; k < pf.nprograms; k++)
			free_list(pf.programs[k].platforms, pf.programs[k].nplatforms);
		if (!ok)
			format_failed("package file", pf.package_id, err);
		if (!sms_fmt_file_name(SMS_FILE_PACKAGE, pf.package_id, 0, name, sizeof(name), err, sizeof(err)))
			format_failed("package file", pf.package_id, err);
		want(SMS_FMT_DIR_PKGINFO, name, buf, len);

		if (sms_execute_kept("SELECT l.site_code::text, s.name::text, l.path"
							 "  FROM smsdist.package_locations l"
							 "  JOIN smsdist.site_systems s ON s.site_system_id = l.site_system_id"
							 " WHERE l.package_id = $1 AND l.site_code = $2 AND l.source_version = $3"
							 " ORDER BY l.site_system_id",
							 3, t2, v2, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist offer manager: reading locations failed");
		nal.package_id = pf.package_id;
		nal.source_version = pf.source_version;
		nal.nlocations = SPI_processed;
		nal.locations = palloc0(sizeof(SmsNalLocation) * Max(nal.nlocations, 1));
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			nal.locations[k].site = SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1);
			nal.locations[k].server = nal_server(SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 2));
			nal.locations[k].path = SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 3);
		}
		if (!sms_nal_to_text(&nal, &buf, &len, err, sizeof(err)))
			format_failed("NAL file", pf.package_id, err);
		if (!sms_fmt_file_name(SMS_FILE_NAL, pf.package_id, 0, name, sizeof(name), err, sizeof(err)))
			format_failed("NAL file", pf.package_id, err);
		want(SMS_FMT_DIR_PKGINFO, name, buf, len);
	}

	forget_icons(with_icon);

	/*
	 * An advertised package removed from this site: a NAL file that says
	 * so (and no .PKG), so that agents tell "removed" from "not here yet".
	 */
	/*
	 * (the advertised packages first: a condition on the package alone is
	 * otherwise checked on every package, the function for each)
	 */
	if (sms_execute_kept("WITH advertised AS MATERIALIZED ("
						 "  SELECT p.package_id, p.source_version FROM smsdist.packages p"
						 "   WHERE p.package_id IN (SELECT package_id FROM smsdist.advertisements WHERE enabled)"
						 "     AND NOT EXISTS (SELECT 1 FROM smsdist.package_locations l"
						 "                      WHERE l.package_id = p.package_id AND l.site_code = $1))"
						 "SELECT a.package_id::text, greatest(a.source_version, 1) FROM advertised a"
						 " WHERE smsdist.package_removed_at(a.package_id, $1)"
						 " ORDER BY 1",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist offer manager: reading removed packages failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		SmsNalFile nal = {0};
		char	   *buf;
		size_t		len;
		bool		isnull;

		nal.package_id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		nal.source_version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		nal.removed = true;
		if (!sms_nal_to_text(&nal, &buf, &len, err, sizeof(err)))
			format_failed("NAL file", nal.package_id, err);
		if (!sms_fmt_file_name(SMS_FILE_NAL, nal.package_id, 0, name, sizeof(name), err, sizeof(err)))
			format_failed("NAL file", nal.package_id, err);
		want(SMS_FMT_DIR_PKGINFO, name, buf, len);
	}
}





/*
 * The management point: store the policy (compute_machine_policy()) of every
 * machine of this site an advertisement targets in machine_policies, which
 * machine_policy() serves, and notify smsdist_policy_<SMS ID> for every
 * machine whose policy changed since it was last stored -- it gained or lost
 * an advertisement, or one of its advertisements or windows changed.
 * Returns the number notified.
 *
 * A stored policy that names no advertisement and no window, of a machine
 * no advertisement targets and in no collection with a window, whose site
 * and platform are as stored, has nothing this step could change: only its
 * jobs, which the PCM writer stores whenever it writes the machine's PCM
 * file.  Those are not computed again here -- at a site with many machines
 * that run jobs, every package received or published woke a step that
 * computed all of their policies (200 machines: about 0.5 s), holding the
 * policies' lock the PCM writer waits for.  The machines in a collection
 * with a window are found from the windows (few), not by asking for each
 * stored policy whether one covers it: that was 0.6 s of every step with
 * 100,000 policies stored.
 */
static uint64
policies(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};

	/* (the PCM writers store policies too: not while they do) */
	sms_lock_machine_policies(true);
	if (sms_execute_kept(ADVERT_COLLECTIONS_SQL
						 ", cand AS ("
						 "  SELECT m.sms_id::text FROM tgt JOIN smsdist.collection_members m USING (collection_id)"
						 "    JOIN smsdist.system_resources r ON r.sms_id = m.sms_id AND r.site_code = $1"
						 "  UNION SELECT p.sms_id::text FROM smsdist.machine_policies p"
						 "    LEFT JOIN smsdist.system_resources r ON r.sms_id = p.sms_id"
						 "   WHERE p.policy IS NULL OR r.sms_id IS NULL"
						 "      OR p.policy->'advertisements' IS DISTINCT FROM '[]'::jsonb"
						 "      OR p.policy->'maintenance_windows' IS DISTINCT FROM '[]'::jsonb"
						 "      OR p.policy->>'site' IS DISTINCT FROM r.site_code::text"
						 "      OR p.policy->>'platform' IS DISTINCT FROM r.platform::text"
						 "  UNION SELECT m.sms_id::text FROM smsdist.maintenance_windows w"
						 "    JOIN smsdist.collection_members m ON m.collection_id = w.collection_id"
						 "   WHERE w.enabled"
						 "     AND EXISTS (SELECT 1 FROM smsdist.machine_policies p WHERE p.sms_id = m.sms_id)) "
						 "SELECT smsdist.store_machine_policies(array(SELECT sms_id FROM cand))",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist offer manager: updating machine policies failed");
	{
		bool		isnull;
		Datum		n = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		return isnull ? 0 : (uint64) DatumGetInt64(n);
	}
}

TimestampTz
sms_offer_manager_step(void)
{
	char	   *box;
	int			changes;

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}
	wanted = NIL;
	step_signer = sms_site_signer();
	offers();
	lookups();
	packages();
	box = sms_instruction_outbox();
	/* package files first: an offer that appears finds its package's */
	changes = sms_sync_box(psprintf("%s/%s", box, SMS_FMT_DIR_PKGINFO), SMS_FMT_DIR_PKGINFO, wanted);
	changes += sms_sync_box(psprintf("%s/%s", box, SMS_FMT_DIR_OFFERINF), SMS_FMT_DIR_OFFERINF, wanted);
	(void) policies();
	if (changes > 0)
	{
		(void) sms_execute_kept_noargs("SELECT smsdist.wake('inbox_manager')", false, 0);
		ereport(DEBUG1,
				(errmsg("smsdist offer manager: %d instruction file%s changed",
						changes, changes == 1 ? "" : "s")));
	}
	return DT_NOEND;
}

