/*-------------------------------------------------------------------------
 *
 * box_file.h
 *	  Instruction files on the shares: their names, atomic writing and
 *	  safe reading.
 *
 * Terms:
 *	box			a directory on a share of a site system that holds one
 *				kind of instruction file (SMS_FMT_DIR_*); clients read it.
 *	file name	one path component: not empty, no '/', no "..", no control
 *				character, not starting with '.' (the temporary files of
 *				sms_fmt_write_file start with one).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_BOX_FILE_H
#define SMS_FMT_BOX_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Directories on the shares (site systems) that hold the files. */
#define SMS_FMT_DIR_PCINS		"pcins.box"		/* logon server: PCM files */
#define SMS_FMT_DIR_OFFERINF	"offerinf.box"	/* CAP: .OFR .INS .LKP */
#define SMS_FMT_DIR_PKGINFO		"pkginfo.box"	/* CAP: .PKG .ICO .NAL */
#define SMS_FMT_DIR_STATUS		"statmsgs.box"	/* CAP: status messages (.SMS) */

#define SMS_FMT_NAME_BUFLEN		32	/* any file name sms_fmt_file_name makes */
#define SMS_FMT_MAX_SEQUENCE	INT64_C(9999999999) /* of a machine's status files */

/*
 * sms_fmt_write_file makes dir/name appear whole or not at all: it
 * writes dir/.name.tmp.<pid> (mode 0644 whatever the umask, since clients
 * read it), fsyncs it, renames it over dir/name and fsyncs dir.
 * sms_fmt_read_file reads dir/name into a malloc'd NUL-terminated buffer,
 * refusing a symbolic link (O_NOFOLLOW), anything but a regular file and
 * files over SMS_FMT_MAX_FILE.  Both refuse an invalid file name.
 */
extern bool sms_fmt_write_file(const char *dir, const char *name, const char *buf,
							   size_t len, char *err, size_t errlen);
extern bool sms_fmt_read_file(const char *dir, const char *name, char **buf,
							  size_t *len, char *err, size_t errlen);
extern bool sms_fmt_valid_file_name(const char *name);
/* write(2) until all of buf is written; false with errno set */
extern bool sms_fmt_write_all(int fd, const char *buf, size_t len);

/*
 * A writer killed between create and rename leaves its temporary file
 * (".<name>.tmp.<pid>"), and nothing else would ever remove it.
 * sms_fmt_stale_temporary: is name one whose writer is gone?  Only the
 * host that wrote it can tell (the process ID is that host's); a live
 * process's file is not stale, and one with this process's ID is only when
 * own_stale (the caller has no write of its own in flight).
 * sms_fmt_remove_stale_temporaries removes, from dir, the stale temporaries
 * (own_stale; files and links, never a directory) whose final name starts
 * with prefix (NULL: any): how many,
 * or -1 with err set when dir cannot be read or one cannot be removed (the
 * others are still removed).  A missing dir holds none.
 */
extern bool sms_fmt_stale_temporary(const char *name, bool own_stale);
extern int	sms_fmt_remove_stale_temporaries(const char *dir, const char *prefix,
											 char *err, size_t errlen);
/*
 * In a directory where other hosts write (a CAP's status inbox), their
 * process IDs say nothing: sms_fmt_old_temporary says whether dir/name is
 * a temporary regular file unchanged for more than max_age seconds, which
 * no writer is still writing.
 */
extern bool sms_fmt_old_temporary(const char *dir, const char *name, int64_t max_age);

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

#endif							/* SMS_FMT_BOX_FILE_H */
