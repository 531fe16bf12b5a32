/*-------------------------------------------------------------------------
 *
 * sms_formats.h
 *	  The on-disk instruction files that the site writes and the client
 *	  agent reads: one definition that both sides compile.
 *
 * This header and sms_formats.c are plain C99 + POSIX: no PostgreSQL
 * header, no palloc, no ereport.  They are linked into the extension (the
 * Despooler, the Offer Manager, the Inbox Manager, the Status Manager) and
 * into the client agent, so a writer and a reader can never disagree about
 * a key, a syntax rule or a limit.  Memory comes from malloc and goes back
 * with the matching free function; every function that can fail returns
 * false (or NULL) and writes a one-line message into the caller's
 * err[errlen] (which may be NULL); nothing aborts or exits.
 *
 * Terms (docs/formats.md is the user documentation of every format):
 *	document	an ordered list of sections; the text form is UTF-8 with
 *				LF line endings, at most SMS_FMT_MAX_FILE bytes and lines
 *				of at most SMS_FMT_MAX_LINE bytes.
 *	section		a header line "[name]" followed by "key=value" lines, in
 *				order.  Names: 1-128 of A-Z a-z 0-9 _ space . -; keys:
 *				1-64 of a-z 0-9 _; a key appears at most once per section
 *				and a name at most once per document.
 *	value		any UTF-8 text without NUL.  In the file '%', and every
 *				byte below 0x20 or equal to 0x7f, is written as %XX
 *				(upper-case hex), so a value can never end a line or start
 *				a section; readers refuse malformed escapes and values
 *				that are not valid UTF-8 once decoded.
 *	comment		an empty line, or one that starts with ';'.
 *	header		the first section of every file: [smsdist] with
 *				format=<format name> and version=<major>[.<minor>],
 *				followed by the format's top-level keys.  A reader refuses
 *				another format and a major version other than 1, and
 *				ignores keys and sections it does not know, so that a
 *				newer writer can add optional keys without a new major
 *				version.
 *	SMS ID		three-character site code + five upper-case hexadecimal
 *				digits (CEN0001A): packages, jobs, collections,
 *				advertisements, systems.
 *	site code	three characters A-Z 0-9 (CEN).
 *	UTC time	YYYY-MM-DDTHH:MM:SSZ; held in memory as seconds since
 *				1970-01-01T00:00:00Z (int64_t).  SMS_TIME_NONE marks an
 *				optional time that is absent.
 *	local time	YYYY-MM-DDTHH:MM:SS without a zone: the wall-clock time of
 *				each client.  Held as the seconds from 1970-01-01T00:00:00
 *				to that wall-clock reading, computed as if it were UTC:
 *				gmtime_r() gives back the fields, mktime() on the client
 *				turns them into an instant.  Fields that may be local are
 *				SmsWhen values and have a companion key <name>_utc.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FORMATS_H
#define SMS_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits a reader enforces and a writer respects (bytes). */
#define SMS_FMT_MAX_FILE		(64 * 1024 * 1024)
#define SMS_FMT_MAX_LINE		(1024 * 1024)	/* without its LF */
#define SMS_FMT_VERSION			1	/* the major version written and read */

/* Directories on the shares (site systems) that hold the files. */
#define SMS_FMT_DIR_PCINS		"pcins.box"		/* logon server: PCM files */
#define SMS_FMT_DIR_OFFERINF	"offerinf.box"	/* CAP: .OFR .INS .LKP */
#define SMS_FMT_DIR_PKGINFO		"pkginfo.box"	/* CAP: .PKG .ICO .NAL */
#define SMS_FMT_DIR_STATUS		"statmsgs.box"	/* CAP: status messages (.SMS) */

/* Format names, the value of format= in each file's header. */
#define SMS_FMT_PCM				"pcm"
#define SMS_FMT_OFFER			"offer"
#define SMS_FMT_INSTALL			"install"
#define SMS_FMT_LOOKUP			"lookup"
#define SMS_FMT_PACKAGE			"package"
#define SMS_FMT_NAL				"nal"
#define SMS_FMT_STATUS			"status"
#define SMS_FMT_HEARTBEAT		"heartbeat"

#define SMS_TIME_NONE			INT64_MIN
#define SMS_FMT_TIME_BUFLEN		21	/* "YYYY-MM-DDTHH:MM:SSZ" + NUL */
#define SMS_FMT_NAME_BUFLEN		32	/* any file name sms_fmt_file_name makes */

/* ----------------------------------------------------------------
 * The common layer: documents, sections, keys
 * ----------------------------------------------------------------
 */
typedef struct SmsFmtEntry
{
	char	   *key;
	char	   *value;			/* decoded */
	int			line;			/* line number when parsed, else 0 */
} SmsFmtEntry;

typedef struct SmsFmtSection
{
	char	   *name;
	SmsFmtEntry *entries;		/* in file order */
	size_t		nentries;
	size_t		capacity;
	int			line;
} SmsFmtSection;

typedef struct SmsFmtDoc
{
	SmsFmtSection **sections;	/* in file order; [0] is the header */
	size_t		nsections;
	size_t		capacity;
} SmsFmtDoc;

/* A new document whose header says format=<format>, version=1. */
extern SmsFmtDoc *sms_fmt_doc_new(const char *format, char *err, size_t errlen);
extern void sms_fmt_doc_free(SmsFmtDoc *doc);

/* Append a section; the pointer stays valid until the document is freed. */
extern SmsFmtSection *sms_fmt_add_section(SmsFmtDoc *doc, const char *name,
										  char *err, size_t errlen);
/* The header section ([smsdist]), to add a format's top-level keys to. */
extern SmsFmtSection *sms_fmt_header(const SmsFmtDoc *doc);

/*
 * Append key=value to a section.  The key and the value's UTF-8 are checked
 * here; duplicate keys and sections are found by sms_fmt_serialize (a sort
 * rather than a search per key, so large documents stay fast).
 */
extern bool sms_fmt_set(SmsFmtSection *sec, const char *key, const char *value,
						char *err, size_t errlen);
extern bool sms_fmt_set_int(SmsFmtSection *sec, const char *key, int64_t value,
							char *err, size_t errlen);
extern bool sms_fmt_set_bool(SmsFmtSection *sec, const char *key, bool value,
							 char *err, size_t errlen);
/* secs as UTC or local (see "local time" above) */
extern bool sms_fmt_set_time(SmsFmtSection *sec, const char *key, int64_t secs,
							 bool utc, char *err, size_t errlen);

/*
 * The text form of a document in a malloc'd, NUL-terminated buffer (*len
 * excludes the NUL).  Refuses what a reader would refuse: duplicates, a
 * line or a file over the limits.
 */
extern bool sms_fmt_serialize(const SmsFmtDoc *doc, char **out, size_t *len,
							  char *err, size_t errlen);

/*
 * Parse a buffer (need not be NUL-terminated).  format: the format name the
 * caller expects, or NULL to accept any (the header and its version are
 * checked either way).  On failure *out is NULL.
 */
extern bool sms_fmt_parse(const char *buf, size_t len, const char *format,
						  SmsFmtDoc **out, char *err, size_t errlen);

/* Look-ups: NULL when absent. */
extern const SmsFmtSection *sms_fmt_find_section(const SmsFmtDoc *doc, const char *name);
extern const char *sms_fmt_get(const SmsFmtSection *sec, const char *key);

/*
 * Files.  sms_fmt_write_file makes dir/name appear whole or not at all: it
 * writes dir/.name.tmp.<pid> (mode 0644 whatever the umask, since clients
 * read it), fsyncs it, renames it over dir/name and fsyncs dir.
 * sms_fmt_read_file reads dir/name into a malloc'd NUL-terminated buffer,
 * refusing a symbolic link (O_NOFOLLOW), anything but a regular file and
 * files over SMS_FMT_MAX_FILE.  Both refuse a name that is empty, contains
 * '/', "..", a control character, or starts with '.'.
 */
extern bool sms_fmt_write_file(const char *dir, const char *name, const char *buf,
							   size_t len, char *err, size_t errlen);
extern bool sms_fmt_read_file(const char *dir, const char *name, char **buf,
							  size_t *len, char *err, size_t errlen);

/* ----------------------------------------------------------------
 * Values shared by the formats
 * ----------------------------------------------------------------
 */
extern bool sms_fmt_valid_utf8(const char *s, size_t len);
extern bool sms_fmt_valid_site_code(const char *s);
extern bool sms_fmt_valid_sms_id(const char *s);
extern bool sms_fmt_valid_file_name(const char *name);

/*
 * Split s at sep into a malloc'd array of malloc'd strings (*n of them; NULL
 * and 0 for NULL or ""), as the typed formats take lists.  Returns false
 * when out of memory.  sms_fmt_free_list releases what it made.
 */
extern bool sms_fmt_split(const char *s, char sep, char ***out, size_t *n);
extern void sms_fmt_free_list(char **list, size_t n);

/* buf must hold SMS_FMT_TIME_BUFLEN bytes; years 0001-9999 */
extern bool sms_fmt_format_time(int64_t secs, bool utc, char *buf);
/* utc: whether s must be the UTC form (with Z) or the local one (without) */
extern bool sms_fmt_parse_time(const char *s, bool utc, int64_t *secs);

/* An instant (utc) or a wall-clock reading of each client (!utc). */
typedef struct SmsWhen
{
	int64_t		secs;			/* SMS_TIME_NONE: absent */
	bool		utc;
} SmsWhen;

/* File names.  id is the machine, advertisement, site or package ID. */
typedef enum SmsFmtFileKind
{
	SMS_FILE_PCM,				/* <MACHINE> */
	SMS_FILE_OFFER,				/* <ADVERTID>.OFR */
	SMS_FILE_INSTALL,			/* <ADVERTID>.INS */
	SMS_FILE_LOOKUP_SYSTEM,		/* <SITE>SYSTM.LKP */
	SMS_FILE_LOOKUP_USER,		/* <SITE>USR.LKP */
	SMS_FILE_LOOKUP_USERGROUP,	/* <SITE>USRGRP.LKP */
	SMS_FILE_PACKAGE,			/* <PACKAGEID>.PKG */
	SMS_FILE_ICON,				/* <PACKAGEID>.ICO */
	SMS_FILE_NAL,				/* <PACKAGEID>.NAL */
	SMS_FILE_STATUS,			/* <MACHINE>.<SEQ, 10 digits>.SMS */
	SMS_FILE_HEARTBEAT,			/* <SITE>.HBT */
	SMS_FILE_INVENTORY			/* <MACHINE>.INV: a status file with the cache inventory */
} SmsFmtFileKind;

/* seq is used by SMS_FILE_STATUS only; buf holds SMS_FMT_NAME_BUFLEN */
extern bool sms_fmt_file_name(SmsFmtFileKind kind, const char *id, int64_t seq,
							  char *buf, size_t buflen, char *err, size_t errlen);
/* Split a status file name; machine holds 9 bytes.  false: not one. */
extern bool sms_fmt_parse_status_name(const char *name, char *machine, int64_t *seq);
/* The machine of an inventory file name (<MACHINE>.INV); false: not one. */
extern bool sms_fmt_parse_inventory_name(const char *name, char *machine);

/* ----------------------------------------------------------------
 * The typed formats.  *_to_text validates every field and writes the
 * canonical text (sorted where the format says so, so the same rows give
 * the same bytes); *_parse validates every field and fills a zeroed struct
 * whose strings it allocates (released by *_free, which also zeroes it).
 * On a parse failure the struct is left zeroed.  Optional strings are
 * NULL when absent; optional integers are 0 when absent.
 * ----------------------------------------------------------------
 */

/* 1. PCM instruction file: pcins.box/<MACHINE> */
typedef struct SmsPcmJob
{
	char	   *job_id;
	char	   *package_id;
	char	   *package_name;
	int64_t		package_version;	/* >= 1 */
	char	   *program;
	char	   *command_line;
	char	  **platforms;		/* none: any platform */
	size_t		nplatforms;
	int64_t		offer_after;	/* UTC */
	int64_t		mandatory_at;	/* UTC, or SMS_TIME_NONE */
	int64_t		expires_at;		/* UTC, or SMS_TIME_NONE */
	int32_t		max_run_minutes;	/* 1-10080, 0: no limit */
	bool		user_rights;	/* run as the logged-on user, not as the agent */
	char	  **locations;		/* >= 1 absolute paths, preferred first */
	size_t		nlocations;
	char	   *package_sha256;	/* 64 lower-case hex digits */
} SmsPcmJob;

typedef struct SmsPcmFile
{
	char	   *machine;		/* SMS ID of the workstation */
	char	   *site;
	int64_t		generated;		/* UTC */
	SmsPcmJob  *jobs;			/* written sorted by job_id */
	size_t		njobs;
} SmsPcmFile;

extern bool sms_pcm_to_text(const SmsPcmFile *f, char **out, size_t *len,
							char *err, size_t errlen);
extern bool sms_pcm_parse(const char *buf, size_t len, SmsPcmFile *out,
						  char *err, size_t errlen);
extern void sms_pcm_free(SmsPcmFile *f);

/* 2. Offer: offerinf.box/<ADVERTID>.OFR */
#define SMS_DAY_MON		0x01
#define SMS_DAY_TUE		0x02
#define SMS_DAY_WED		0x04
#define SMS_DAY_THU		0x08
#define SMS_DAY_FRI		0x10
#define SMS_DAY_SAT		0x20
#define SMS_DAY_SUN		0x40

typedef struct SmsOfferAssignment
{
	SmsWhen		time;
	int32_t		recur_every_minutes;	/* 0: once */
} SmsOfferAssignment;

typedef struct SmsOfferWindow
{
	int			start_minute;	/* local time of day, 0-1439 */
	int32_t		duration_minutes;	/* 1-10080 */
	unsigned	days;			/* SMS_DAY_* bits, at least one */
} SmsOfferWindow;

/*
 * What a mandatory time does when the program already ran on this machine
 * (the rerun behaviour of Configuration Manager's deployments).  The
 * key rerun_behaviour= of an offer file; absent: SMS_RERUN_IF_FAILED, so
 * files written before the key existed keep the default.
 */
typedef enum SmsRerunBehaviour
{
	SMS_RERUN_IF_FAILED = 0,	/* rerun_if_failed: run again only after a failure */
	SMS_RERUN_NEVER,			/* never_rerun: run only if it never ran */
	SMS_RERUN_ALWAYS,			/* always_rerun: run at every mandatory time */
	SMS_RERUN_IF_SUCCEEDED		/* rerun_if_succeeded: run again only after a success */
} SmsRerunBehaviour;

/* "rerun_if_failed" ...; NULL for a value out of range */
extern const char *sms_rerun_name(SmsRerunBehaviour r);
/* false: not one of the four names */
extern bool sms_rerun_from_name(const char *name, SmsRerunBehaviour *out);

typedef struct SmsOfferFile
{
	char	   *advert_id;
	char	   *name;
	char	   *package_id;
	char	   *program;
	char	   *command_line;
	char	  **platforms;
	size_t		nplatforms;
	SmsWhen		offer_time;
	SmsWhen		expires_time;	/* secs SMS_TIME_NONE: never */
	SmsOfferAssignment *assignments;	/* written sorted by time */
	size_t		nassignments;
	SmsOfferWindow *windows;	/* written sorted by start, duration, days */
	size_t		nwindows;
	SmsRerunBehaviour rerun;	/* always written; absent when read: rerun_if_failed */
} SmsOfferFile;

extern bool sms_offer_to_text(const SmsOfferFile *f, char **out, size_t *len,
							  char *err, size_t errlen);
extern bool sms_offer_parse(const char *buf, size_t len, SmsOfferFile *out,
							char *err, size_t errlen);
extern void sms_offer_free(SmsOfferFile *f);

/* 3. Installation file: offerinf.box/<ADVERTID>.INS */
typedef struct SmsInstallFile
{
	char	   *advert_id;
	char	   *collection_id;
} SmsInstallFile;

extern bool sms_install_to_text(const SmsInstallFile *f, char **out, size_t *len,
								char *err, size_t errlen);
extern bool sms_install_parse(const char *buf, size_t len, SmsInstallFile *out,
							  char *err, size_t errlen);
extern void sms_install_free(SmsInstallFile *f);

/* 4. Lookup files: offerinf.box/<SITE>SYSTM.LKP, USR.LKP, USRGRP.LKP */
typedef enum SmsLookupKind
{
	SMS_LOOKUP_SYSTEM,			/* entry names are machine SMS IDs */
	SMS_LOOKUP_USER,
	SMS_LOOKUP_USERGROUP
} SmsLookupKind;

typedef struct SmsLookupEntry
{
	char	   *name;			/* unique ignoring ASCII case */
	char	  **adverts;		/* advertisement IDs, written sorted */
	size_t		nadverts;
} SmsLookupEntry;

typedef struct SmsLookupFile
{
	char	   *site;
	SmsLookupKind kind;
	SmsLookupEntry *entries;	/* written sorted by name, ignoring case */
	size_t		nentries;
} SmsLookupFile;

extern bool sms_lookup_to_text(const SmsLookupFile *f, char **out, size_t *len,
							   char *err, size_t errlen);
extern bool sms_lookup_parse(const char *buf, size_t len, SmsLookupFile *out,
							 char *err, size_t errlen);
extern void sms_lookup_free(SmsLookupFile *f);
/* The entry for name (ASCII case ignored), or NULL: no advertisement. */
extern const SmsLookupEntry *sms_lookup_find(const SmsLookupFile *f, const char *name);

/* 5. Package file: pkginfo.box/<PACKAGEID>.PKG (and the optional .ICO) */
typedef struct SmsPackageProgram
{
	char	   *name;
	char	   *command_line;
	char	  **platforms;
	size_t		nplatforms;
	int32_t		max_run_minutes;	/* 0: no limit */
	bool		user_rights;	/* run as the logged-on user, not as the agent */
} SmsPackageProgram;

typedef struct SmsPackageFile
{
	char	   *package_id;
	char	   *name;
	char	   *product_version;	/* optional; "version" is the header's */
	char	   *manufacturer;	/* optional */
	char	   *language;		/* optional */
	int64_t		source_version; /* >= 1 */
	char	   *sha256;			/* 64 lower-case hex digits */
	bool		has_icon;		/* icon=<PACKAGEID>.ICO, else icon=none */
	SmsPackageProgram *programs;	/* written sorted by name */
	size_t		nprograms;
} SmsPackageFile;

extern bool sms_package_to_text(const SmsPackageFile *f, char **out, size_t *len,
								char *err, size_t errlen);
extern bool sms_package_parse(const char *buf, size_t len, SmsPackageFile *out,
							  char *err, size_t errlen);
extern void sms_package_free(SmsPackageFile *f);

/* 6. NAL (network access list): pkginfo.box/<PACKAGEID>.NAL */
typedef struct SmsNalLocation
{
	char	   *site;
	char	   *server;			/* 1-15 of A-Z a-z 0-9 - _, not starting - */
	char	   *path;			/* absolute */
} SmsNalLocation;

typedef struct SmsNalFile
{
	char	   *package_id;
	int64_t		source_version;
	SmsNalLocation *locations;	/* written sorted by site, server, path */
	size_t		nlocations;
	bool		removed;		/* removed from this site: no location */
} SmsNalFile;

extern bool sms_nal_to_text(const SmsNalFile *f, char **out, size_t *len,
							char *err, size_t errlen);
extern bool sms_nal_parse(const char *buf, size_t len, SmsNalFile *out,
						  char *err, size_t errlen);
extern void sms_nal_free(SmsNalFile *f);

/* 7. Status message: a CAP's status inbox, <MACHINE>.<SEQ>.SMS */
typedef enum SmsStatusLevel
{
	SMS_STATUS_INFO,
	SMS_STATUS_WARNING,
	SMS_STATUS_ERROR
} SmsStatusLevel;

/*
 * A status file is authenticated by its machine: its last line is
 * hmac=<64 lower-case hex digits>, HMAC-SHA256 with the machine's key
 * (SMS_STATUS_KEY_LEN bytes, issued by the site: smsdist.machine_key())
 * over every byte of the file before that line.  The key is written as
 * SMS_STATUS_KEY_LEN * 2 hex digits (a key file may end with one LF).
 */
#define SMS_STATUS_KEY_LEN		32
#define SMS_STATUS_CACHE_INVENTORY	10030	/* the message ID of an inventory file */
#define SMS_STATUS_INVENTORY_MAX	(256 * 1024)	/* bytes of its inventory= */
#define SMS_STATUS_HMAC_HEX		64

typedef struct SmsStatusFile
{
	char	   *machine;
	char	   *site;
	int64_t		sequence;		/* 0-9999999999, per machine */
	int64_t		at;				/* UTC, by the client's clock */
	int32_t		message_id;		/* >= 0 */
	SmsStatusLevel severity;
	char	   *component;
	char	   *advert_id;		/* optional */
	char	   *job_id;			/* optional */
	char	   *package_id;		/* optional */
	char	   *text;			/* may be empty */
	bool		has_exit_code;	/* exit_code= is present (optional) */
	int32_t		exit_code;		/* 0-2147483647: the program's exit code */
	/*
	 * optional: the download cache's inventory, a JSON object on one line
	 * (message SMS_STATUS_CACHE_INVENTORY in a <MACHINE>.INV file; the site
	 * checks its content: smsdist.cache_inventory_problem())
	 */
	char	   *inventory;
	/* writer: the machine's key; NULL writes no hmac line (the site refuses it) */
	const uint8_t *key;
	/* reader: the hmac line's value ("" if none) and the bytes it covers */
	char		hmac[SMS_STATUS_HMAC_HEX + 1];
	size_t		signed_len;
} SmsStatusFile;

extern bool sms_status_to_text(const SmsStatusFile *f, char **out, size_t *len,
							   char *err, size_t errlen);
extern bool sms_status_parse(const char *buf, size_t len, SmsStatusFile *out,
							 char *err, size_t errlen);
extern void sms_status_free(SmsStatusFile *f);

/*
 * true if buf (len bytes, parsed into m by sms_status_parse) carries an
 * hmac line that verifies with key (SMS_STATUS_KEY_LEN bytes); otherwise
 * false with the reason: no hmac line, or one that does not verify.
 */
extern bool sms_status_verify(const char *buf, size_t len, const SmsStatusFile *m,
							  const uint8_t *key, char *err, size_t errlen);
/* A key from its hex form (an optional final LF); false with the reason. */
extern bool sms_status_key_from_hex(const char *text, size_t len,
									uint8_t key[SMS_STATUS_KEY_LEN],
									char *err, size_t errlen);

/*
 * 8. Heartbeat: offerinf.box/<SITE>.HBT on every CAP, rewritten by the
 * site's Inbox Manager at least every interval_seconds: the site's clock,
 * for clients that read the shares (legacy mode) to measure their skew.
 */
typedef struct SmsHeartbeatFile
{
	char	   *site;
	int64_t		site_time;		/* UTC, by the site server's clock */
	int32_t		interval_seconds;	/* 1-86400: the next one comes by then */
} SmsHeartbeatFile;

extern bool sms_heartbeat_to_text(const SmsHeartbeatFile *f, char **out, size_t *len,
								  char *err, size_t errlen);
extern bool sms_heartbeat_parse(const char *buf, size_t len, SmsHeartbeatFile *out,
								char *err, size_t errlen);
extern void sms_heartbeat_free(SmsHeartbeatFile *f);

#endif							/* SMS_FORMATS_H */
