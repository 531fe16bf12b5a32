/*-------------------------------------------------------------------------
 *
 * receiver_job.h
 *	  The job a parent site hands this site with a package (receive_end):
 *	  what it becomes here, where it may reach, and its row.
 *
 *	parent job type	the job type at the parent: share_package, run_command
 *				or remove_package.
 *	local job type	what the job is at this site, where its part is to
 *				distribute (see receiver_local_job_type).
 *	run			the run-command job's details (jsonb), or (Datum) 0.
 *	targets		the job's target sites: this site or sites below it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_RECEIVER_JOB_H
#define SMSDIST_RECEIVER_JOB_H

#include "smsdist.h"

#include "utils/array.h"

extern const char *receiver_local_job_type(const char *parent_job_type, const char *job_id,
										   Datum *run);
extern Datum receiver_check_target_sites(ArrayType *arr, const char *job_id);
extern void receiver_record_job(const char *job_id, const char *job_type,
								const char *package_id, Datum targets,
								bool include_subsites, Datum run, const char *source);

#endif							/* SMSDIST_RECEIVER_JOB_H */
