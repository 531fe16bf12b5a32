/*-------------------------------------------------------------------------
 *
 * package_builder.h
 *	  Package builders: the helper processes that compress a package
 *	  version into its package file.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PACKAGE_BUILDER_H
#define SMSDIST_PACKAGE_BUILDER_H

#include "smsdist.h"

struct BackgroundWorkerHandle;
extern bool sms_start_package_builder(Oid dboid, const char *package_id, int source_version,
									  struct BackgroundWorkerHandle **handle);
extern PGDLLEXPORT void smsdist_package_builder_main(Datum arg);
extern bool sms_build_small_package_here(const char *package_id, int version);

#endif							/* SMSDIST_PACKAGE_BUILDER_H */
