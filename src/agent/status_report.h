/*-------------------------------------------------------------------------
 *
 * status_report.h
 *	  The agent's status messages to its site (status_report.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_STATUS_REPORT_H
#define SMSDIST_STATUS_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "sms_formats.h"

#define AGENT_COMPONENT		"Client Agent"

/* status message IDs of the agent (docs/status-messages.md) */
#define MSG_ADVERT_OFFERED	10001
#define MSG_JOB_OFFERED		10002
#define MSG_DOWNLOADED		10003
#define MSG_NOT_DOWNLOADED	10004
#define MSG_PROGRAM_STARTED	10005
#define MSG_CACHE_FULL		10006
#define MSG_NOT_APPLICABLE	10007
#define MSG_PROGRAM_OK		10008
#define MSG_PROGRAM_FAILED	10009
#define MSG_FILE_REFUSED	10010
#define MSG_CACHED_REFUSED	10011
#define MSG_RERUN_SKIPPED	10012
#define MSG_CLOCK_SKEW		10020
#define NO_EXIT_CODE		(-1)	/* status_message: the message has no exit code */

/*
 * Send status message id at now: through the management point in advanced
 * mode, else as a signed file in the CAP's status inbox.  The IDs may be
 * NULL.  False (said on standard error) if it could not be sent.
 */
extern bool status_message(const Config *c, int64_t now, int32_t id, SmsStatusLevel severity,
						   const char *advert_id, const char *job_id, const char *package_id,
						   const char *text, int exit_code);

/* The same about target kind id ("advert" or "job"). */
extern bool status_message_about(const Config *c, int64_t now, int32_t id, SmsStatusLevel severity,
								 const char *kind, const char *target_id, const char *package_id,
								 const char *text, int exit_code);

/*
 * Remove from box (the CAP's status inbox) what a write of this machine's
 * agent on this host, killed between create and rename, left: the site
 * cannot tell whether an agent's process is gone, the agent can.  Once per
 * run; problems are warnings.  Always true.
 */
extern bool tidy_status_inbox(const Config *c, const char *box);

/*
 * Report a clock skew (site minus this machine, seconds) once per run of
 * the agent, when it is larger than --max-skew.
 */
extern void report_clock_skew(const Config *c, int64_t now, int64_t skew);

#endif							/* SMSDIST_STATUS_REPORT_H */
