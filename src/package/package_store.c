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
