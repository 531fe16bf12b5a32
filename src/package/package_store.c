/*-------------------------------------------------------------------------
 *
 * package_store.c
 *	  The paths of the package store (see package_store.h for its terms).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_store.h"

#include "miscadmin.h"

/* The package store: where package files live. */
char *
sms_package_store(void)
{
	if (sms_package_store_dir != NULL && sms_package_store_dir[0] != '\0')
		return pstrdup(sms_package_store_dir);
	return psprintf("%s/pg_smsdist/packages", DataDir);
}

/* A package file, as a builder names it and as a transfer is published. */
char *
sms_package_file_path(const char *store, const char *package_id, int32 version)
{
	return psprintf("%s/%s.%d.tar.gz", store, package_id, version);
}

/* Where transfers from the parent arrive. */
char *
sms_incoming_dir(const char *store)
{
	return psprintf("%s/incoming", store);
}

/* The part file of a transfer (the Despooler's early extraction follows it). */
char *
sms_part_path(const char *store, const char *package_id, int32 version)
{
	return psprintf("%s/incoming/%s.%d.part", store, package_id, version);
}

/* A package file its builder is still writing (sent while it grows). */
char *
sms_stream_path(const char *store, const char *package_id, int32 version, const char *stream_id)
{
	return psprintf("%s/%s.%d.tar.gz.%s.tmp", store, package_id, version, stream_id);
}

/* Where delta files are kept. */
char *
sms_delta_dir(const char *store)
{
	return psprintf("%s/deltas", store);
}

/* The delta of a version from an earlier one. */
char *
sms_delta_file_path(const char *store, const char *package_id, int32 version, int32 base_version)
{
	return psprintf("%s/deltas/%s.%d.from%d.tar.gz", store, package_id, version, base_version);
}

/* The build temporaries (see package_store.h) */
bool
sms_is_package_file_name(const char *name)
{
	size_t		len = strlen(name);

	return len > 7 && strcmp(name + len - 7, ".tar.gz") == 0;
}

char *
sms_build_tar_path(const char *store, const char *package_id, int32 version, int pid)
{
	return psprintf("%s/%s.%d.tar.%d", store, package_id, version, pid);
}

char *
sms_build_parts_dir(const char *store, const char *package_id, int32 version, int pid)
{
	return psprintf("%s/%s.%d.parts.%d", store, package_id, version, pid);
}

char *
sms_build_tmp_path(const char *store, const char *package_id, int32 version)
{
	return psprintf("%s/%s.%d.tar.gz.tmp", store, package_id, version);
}

/*
 * Is name, in the store, something a builder of this version left?  Every
 * name of the build (<package>.<version>.*) but a finished package file;
 * stream files, whose names end in .tmp, are leftovers too.
 */
bool
sms_is_build_leftover(const char *name, const char *package_id, int32 version)
{
	char	   *stem = psprintf("%s.%d", package_id, version);
	size_t		stemlen = strlen(stem);
	bool		result;

	if (strncmp(name, stem, stemlen) != 0 || name[stemlen] != '.')
		result = false;
	else
		result = strstr(name + stemlen, ".tmp") != NULL ||
			strncmp(name + stemlen, ".tar.gz", 8) != 0;
	pfree(stem);
	return result;
}

/* The Despooler's temporaries on a drive (or the store). */
char *
sms_despool_dir(const char *drive)
{
	return psprintf("%s/smsdist-despool", drive);
}

char *
sms_despool_job_dir(const char *despool_dir, const char *job_id, const char *package_id)
{
	return psprintf("%s/%s.%s", despool_dir, job_id, package_id);
}

char *
sms_early_stage_dir(const char *despool_dir, const char *package_id, int32 version,
					const char *stream_id)
{
	return psprintf("%s/%s.%d.%s.early", despool_dir, package_id, version, stream_id);
}

char *
sms_early_stage_tree(const char *stage_dir)
{
	return psprintf("%s/tree", stage_dir);
}

char *
sms_early_stage_manifest(const char *stage_dir)
{
	return psprintf("%s/manifest", stage_dir);
}

/* The site server's boxes. */
char *
sms_outbox_dir(const char *site_server)
{
	return psprintf("%s/inboxes", site_server);
}

char *
sms_pcm_domain_box(const char *site_server)
{
	return psprintf("%s/mancfg.box/pcmdom.box", site_server);
}
