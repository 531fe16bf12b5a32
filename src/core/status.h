/*-------------------------------------------------------------------------
 *
 * status.h
 *	  Status messages: the operator-visible log (smsdist.status_messages),
 *	  and the IDs of the messages the components write.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_STATUS_H
#define SMSDIST_STATUS_H

#include "smsdist.h"

typedef enum SmsSeverity
{
	SMS_INFO,
	SMS_WARNING,
	SMS_ERROR
} SmsSeverity;

typedef struct SmsStatusRefs
{
	const char *job_id;
	const char *package_id;
	const char *advert_id;
	const char *machine;		/* SMS ID of a system, when there is one */
	const char *site_code;		/* defaults to smsdist.site_code */
} SmsStatusRefs;

extern void sms_status_message(SmsComponentId component, SmsSeverity severity,
							   int message_id, const SmsStatusRefs *refs,
							   const char *fmt,...) pg_attribute_printf(5, 6);

/* Status message IDs (documented in docs/status-messages.md). */
#define SMS_MSG_COMPONENT_STARTED		500
#define SMS_MSG_COMPONENT_ERROR			501
#define SMS_MSG_JOB_ACTIVATED			3000
#define SMS_MSG_JOB_NO_TARGETS			3001
#define SMS_MSG_JOB_EXPIRED				3002
#define SMS_MSG_PACKAGE_COMPRESSED		3100
#define SMS_MSG_PACKAGE_FAILED			3101
#define SMS_MSG_STORE_FULL_WAITING		3102
#define SMS_MSG_DISTRIBUTED				3200
#define SMS_MSG_DISTRIBUTE_FAILED		3201
#define SMS_MSG_PACKAGE_CORRUPT			3202
#define SMS_MSG_NEEDS_FULL_PACKAGE		3203
#define SMS_MSG_ALREADY_PUBLISHED		3204
#define SMS_MSG_JOB_FOLLOWS_VERSION		3205
#define SMS_MSG_JOB_CONTENT_GONE		3206
#define SMS_MSG_CONTENT_REPAIRED		3207
#define SMS_MSG_CONTENT_DAMAGED			3208
#define SMS_MSG_CONTENT_CHECK_FAILED	3209
#define SMS_MSG_LOGON_SERVER_FAILING	3210
#define SMS_MSG_DISK_FULL_WAITING		3211
#define SMS_MSG_SEND_FAILED				3301
#define SMS_MSG_SENT					3302
#define SMS_MSG_RESENDING_FULL			3303
#define SMS_MSG_REPORT_REFUSED			3304
#define SMS_MSG_ADVERT_SENT				3310
#define SMS_MSG_ADVERT_SEND_FAILED		3311
#define SMS_MSG_JOB_CONTROL_SENT		3320
#define SMS_MSG_JOB_CONTROL_FAILED		3321
#define SMS_MSG_JOB_CONTROL_TAKEN		3322	/* (written by receive_job_state) */
#define SMS_MSG_ICON_REFUSED			3600

#endif							/* SMSDIST_STATUS_H */
