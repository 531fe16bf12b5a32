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
 *	build temporaries	what a package builder (process <pid>) makes beside
 *				the package file: the tar <store>/<package>.<version>.tar.<pid>,
 *				the compressed members <store>/<package>.<version>.parts.<pid>/,
 *				and, when the file is not streamed, the package file under
 *				its temporary name <package file>.tmp.  A builder that
 *				starts removes every one of its build (sms_is_build_leftover).
 *	purge pattern	SMS_PACKAGE_FILE_SQL_PATTERN: the SQL expression, over a
 *				row of smsdist.package_builds, of a LIKE pattern that matches
 *				its package file's path; the Scheduler keeps a package file
 *				that a build in progress will name.
 *	despool dir	<drive>/smsdist-despool, on a site-server drive (or in the
 *				store when the site has none): the Despooler's temporaries,
 *				removed when a Despooler starts.
 *	job dir		<despool dir>/<job>.<package>: one package extracted for
 *				one job, before it is published.
 *	early stage	<despool dir>/<package>.<version>.<stream ID>.early: a package
 *				extracted while it is received, holding tree/ (the extracted
 *				package) and manifest (its manifest).
 *	site server	the site's first site-server drive, or the store when it has
 *				none (sms_site_server_dir), where the site keeps its boxes:
 *	outbox		<site server>/inboxes, the Offer Manager's copy of the
 *				instruction files the CAPs get;
 *	PCM domain box	<site server>/mancfg.box/pcmdom.box, the PCM files
 *				of every domain before logon servers get them.
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

/* SQL, over a smsdist.package_builds row: LIKE pattern of its package file */
#define SMS_PACKAGE_FILE_SQL_PATTERN \
	"'%/' || package_id || '.' || source_version || '.tar.gz'"
/* Is a name in the store that of a package file (finished or not)? */
extern bool sms_is_package_file_name(const char *name);

extern char *sms_build_tar_path(const char *store, const char *package_id, int32 version,
								int pid);
extern char *sms_build_parts_dir(const char *store, const char *package_id, int32 version,
								 int pid);
extern char *sms_build_tmp_path(const char *store, const char *package_id, int32 version);
extern bool sms_is_build_leftover(const char *name, const char *package_id, int32 version);

extern char *sms_despool_dir(const char *drive);
extern char *sms_despool_job_dir(const char *despool_dir, const char *job_id,
								 const char *package_id);
extern char *sms_early_stage_dir(const char *despool_dir, const char *package_id,
								 int32 version, const char *stream_id);
extern char *sms_early_stage_tree(const char *stage_dir);
extern char *sms_early_stage_manifest(const char *stage_dir);

extern char *sms_outbox_dir(const char *site_server);
extern char *sms_pcm_domain_box(const char *site_server);

#endif							/* SMSDIST_PACKAGE_STORE_H */
