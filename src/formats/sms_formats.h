/*-------------------------------------------------------------------------
 *
 * sms_formats.h
 *	  The on-disk instruction files that the site writes and the client
 *	  agent reads: the one header callers include.
 *
 * Every file of src/formats is plain C99 + POSIX: no PostgreSQL header,
 * no palloc, no ereport.  They are linked into the extension (the
 * Despooler, the Offer Manager, the Inbox Manager, the Status Manager) and
 * into the client agent, so a writer and a reader can never disagree about
 * a key, a syntax rule or a limit.  Memory comes from malloc and goes back
 * with the matching free function; every function that can fail returns
 * false (or NULL) and writes a one-line message into the caller's
 * err[errlen] (which may be NULL); nothing aborts or exits.
 *
 * The modules, from the ground up (docs/formats.md documents each format
 * for its users):
 *	values.h	values and their rules: UTF-8, IDs, times, lists
 *	ini.h		documents of sections and key=value entries, their text
 *	box_file.h	file names, atomic writing, safe reading
 *	fields.h	formats described as tables of fields (internal to
 *				src/formats)
 *	pcm_file.h, offer_file.h, install_file.h, lookup_file.h,
 *	package_file.h, nal_file.h, status_file.h, heartbeat_file.h
 *				the typed formats
 *	icon_file.h	the checks of a package's icon (binary, not a format of
 *				sections)
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FORMATS_H
#define SMS_FORMATS_H

#include "values.h"
#include "ini.h"
#include "box_file.h"

#include "pcm_file.h"
#include "offer_file.h"
#include "install_file.h"
#include "lookup_file.h"
#include "package_file.h"
#include "icon_file.h"
#include "nal_file.h"
#include "status_file.h"
#include "heartbeat_file.h"

#endif							/* SMS_FORMATS_H */
