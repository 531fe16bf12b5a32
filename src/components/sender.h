/*-------------------------------------------------------------------------
 *
 * sender.h
 *	  The Sender: sends package files and job details to child sites and
 *	  follows their distribution reports.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SENDER_H
#define SMSDIST_SENDER_H

#include "smsdist.h"

extern TimestampTz sms_sender_step(void);
extern void sender_send_one(const char *job_id, const char *hop);

#endif							/* SMSDIST_SENDER_H */
