/*-------------------------------------------------------------------------
 *
 * job_state.h
 *	  The one place that moves a job, or one of its per-site rows, from one
 *	  state to another.  Components call these functions; none of them
 *	  writes the state of smsdist.jobs or smsdist.job_site_status itself.
 *
 *	job			a row of smsdist.jobs.  Its state:
 *				  pending -> active			sms_jobs_activate_due
 *				  pending|active -> expired	sms_jobs_expire_due
 *				  active -> failed			sms_jobs_fail_without_sites,
 *											sms_jobs_fail_build, sms_job_fail,
 *											sms_jobs_fail_where_a_site_failed
 *				  active -> completed		sms_jobs_complete_distributed
 *											(share and remove jobs)
 *				The operator's moves (cancel; retry: failed -> pending) and the
 *				completion of run-command jobs (every target final) are made in
 *				SQL, by the triggers and functions of the extension script.
 *	site row	a row of smsdist.job_site_status: one phase ('send' to a child
 *				site, 'distribute' at a site) of one job at one site.  Its
 *				state (smsdist.phase_state):
 *				  (none) -> waiting			sms_site_rows_create,
 *											sms_send_rows_done (the distribute
 *											rows of the sites sent to)
 *				  waiting|retrying|running -> running
 *											sms_send_rows_claim,
 *											sms_distribute_row_claim
 *				  running -> retrying|failed	sms_send_rows_failed
 *				  waiting|retrying -> retrying|failed
 *											sms_send_rows_hop_unreachable (the
 *											other jobs' rows behind a hop
 *											that cannot be reached)
 *				  retrying -> waiting		sms_send_rows_hop_answers (those
 *											rows, once the hop answers)
 *				  running -> waiting		sms_send_rows_yield,
 *											sms_distribute_row_needs_full
 *				  running -> retrying		sms_distribute_row_repairing,
 *											sms_distribute_row_retry
 *				  running -> retrying|failed	sms_distribute_row_disk_full
 *				  running -> done			sms_send_rows_done,
 *											sms_distribute_row_done
 *				  waiting -> done			sms_distribute_rows_handed_over
 *				  done -> waiting			sms_send_rows_resend_full
 *				  open -> failed			sms_send_rows_fail_unroutable,
 *											sms_distribute_row_fail,
 *											sms_distribute_rows_refused
 *				  any -> reported state		sms_distribute_row_reported (what
 *											a child site says of itself)
 *	hop			the child site through which a site below is reached
 *				(smsdist.route_hop): the Sender moves all the rows of a job
 *				that go through one hop together.
 *
 * Every function runs one statement through SPI in the caller's
 * transaction and raises an error if it fails.  Progress figures (bytes,
 * details) that do not change a state are written by the components.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_JOB_STATE_H
#define SMSDIST_JOB_STATE_H

#include "smsdist.h"

#include "executor/spi.h"
#include "datatype/timestamp.h"

/* jobs */
/* jobs a Scheduler step activates at most (a constant of the statement) */
#define SMS_ACTIVATE_BATCH 100
extern uint64 sms_jobs_activate_due(Datum *job_ids);
extern SPITupleTable *sms_jobs_expire_due(uint64 *n);
extern SPITupleTable *sms_jobs_fail_without_sites(Datum job_ids, uint64 njobs, uint64 *n);
extern void sms_jobs_fail_build(const char *package_id, int32 version, const char *error);
extern bool sms_job_fail(const char *job_id, const char *reason);
extern void sms_jobs_fail_where_a_site_failed(void);
extern void sms_jobs_complete_distributed(const char *job_id);

/* site rows */
extern void sms_site_rows_create(Datum job_ids, uint64 njobs);
extern void sms_send_rows_claim(const char *job_id, const char *hop,
								char **sites, bool *full_package_required);
extern void sms_send_rows_fail_unroutable(const char *job_id);
extern bool sms_send_rows_failed(const char *job_id, const char *hop, const char *reason,
								 bool *gave_up);
extern SPITupleTable *sms_send_rows_hop_unreachable(const char *job_id, const char *hop,
													const char *reason, uint64 *n);
extern uint64 sms_send_rows_hop_answers(const char *job_id, const char *hop);
extern void sms_send_rows_yield(const char *job_id, const char *hop, const char *detail);
extern void sms_send_rows_done(const char *job_id, const char *hop, const char *detail,
							   int32 delta_base, int64 bytes, int64 attempt_bytes);
extern uint64 sms_send_rows_resend_full(const char *job_id, const char *site, const char *error);
extern SPITupleTable *sms_distribute_row_claim(const char *site);
extern void sms_distribute_row_done(const char *job_id, const char *site, const char *detail);
extern void sms_distribute_row_fail(const char *job_id, const char *site, const char *reason);
extern void sms_distribute_row_repairing(const char *job_id, const char *site,
										 const char *error);
extern bool sms_distribute_row_disk_full(const char *job_id, const char *site,
										 const char *reason, TimestampTz *next,
										 bool *first);
extern void sms_distribute_row_retry(const char *job_id, const char *site, const char *error);
extern void sms_distribute_row_needs_full(const char *job_id, const char *site,
										  const char *error, const char *detail_prefix);
extern void sms_distribute_rows_handed_over(const char *job_id, const char *hop);
extern void sms_distribute_row_reported(const char *job_id, const char *site,
										const char *state, const char *detail,
										const char *error);
extern bool sms_distribute_row_wants_full(const char *job_id, const char *site,
										  const char *detail, const char *error);
extern void sms_distribute_rows_refused(const char *job_id, const char *hop,
										const char *site, const char *reason);

#endif							/* SMSDIST_JOB_STATE_H */
