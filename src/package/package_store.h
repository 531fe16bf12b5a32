/*-------------------------------------------------------------------------
 *
 * package_store.h
 *	  Where package files live on the site server: the one place that spells
 *	  their paths.
 *
 *	store		the package store: smsdist.package_store, or
 *				<data directory>/pg_smsdist/packages when unset
 *	package file	<store>/<package>.<version>.tar.gz, made by a builder or
 *				received whole from the parent
 *	part file	<store>/incoming/<package>.<version>.part, a transfer from
 *				the parent while it arrives (the Despooler may extract it
 *				as it grows)
 *	stream file	<store>/<package>.<version>.tar.gz.<stream ID>.tmp, a
 *				package file its builder is still writing (the Sender may
 *				send it as it grows)
 *	delta file	<store>/deltas/<package>.<version>.from<base>.tar.gz, the
 *				files that changed since version <base>
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PACKAGE_STORE_H
#define SMSDIST_PACKAGE_STORE_H

#include "smsdist.h"

extern char *sms_package_store(void);
extern char *sms_package_file_path(const char *store, const char *package_id, int32 version);
extern char *sms_incoming_dir(const char *store);
extern char *sms_part_path(const char *store, const char *package_id, int32 version);
extern char *sms_stream_path(const char *store, const char *package_id, int32 version,
							 const char *stream_id);
extern char *sms_delta_dir(const char *store);
extern char *sms_delta_file_path(const char *store, const char *package_id, int32 version,
								 int32 base_version);

#endif							/* SMSDIST_PACKAGE_STORE_H */
