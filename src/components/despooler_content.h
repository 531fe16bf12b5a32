/*-------------------------------------------------------------------------
 *
 * despooler_content.h
 *	  Inside the Despooler: a work item, the distribution points, what
 *	  they hold (despooler_content.c) and its validation
 *	  (despooler_validate.c), shared by despooler.c.  No other file
 *	  includes it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_DESPOOLER_CONTENT_H
#define SMSDIST_DESPOOLER_CONTENT_H

#include "smsdist.h"

#include "nodes/pg_list.h"
#include "utils/elog.h"
#include "utils/timestamp.h"
#include "package_manifest.h"

/* One claimed distribute row and what its package file is. */
typedef struct WorkItem
{
	char	   *job_id;
	char	   *job_type;
	char	   *package_id;
	int			version;
	char	   *package_file;
	char	   *sha256;			/* of the package file, from package_builds */
	int64		bytes_total;
	int			base_version;	/* the package file is a delta from it; or 0 */
	bool		received;		/* the package file came from the parent site */
	bool		has_manifest;	/* package_builds.manifest is known */
	char	   *early_stage;	/* an early extraction's stage it uses, or NULL */
	int			already;		/* this version (or a newer one) was found published
								 * and intact on every distribution point: not
								 * extracted again; the version found, or 0 */
} WorkItem;

/* An enabled distribution point of this site and its share. */
typedef struct DistPoint
{
	int			id;
	char	   *share;
} DistPoint;

/* the item's detail (and bytes done), committed so that it is seen at once */
extern void despool_set_detail(WorkItem *w, const char *detail, int64 bytes_done);
extern List *despool_distribution_points(void);
extern void despool_record_location(WorkItem *w, DistPoint *dp, bool present);
extern int	despool_published_version(WorkItem *w, DistPoint *dp);
extern char *despool_manifest_of(const char *package_id, int version);
extern void despool_publish_manifest(const char *share, const char *package_id, int version,
									 const char *text);
extern bool despool_already_published(WorkItem *w, List *dps);
extern void despool_follow_site_version(WorkItem *w);
extern void despool_content_gone(WorkItem *w);

/* despooler.c */
extern char *despool_choose_drive(bool *fallback);
extern char *despool_package_file_problem(WorkItem *w);
extern ErrorData *despool_error_restart(void);

/* despooler_validate.c: one due validation; when none is, when one will be */
extern TimestampTz despool_validate_step(void);

#endif							/* SMSDIST_DESPOOLER_CONTENT_H */
