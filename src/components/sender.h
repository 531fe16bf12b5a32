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
extern PGDLLEXPORT void smsdist_send_helper_main(Datum arg);

#endif							/* SMSDIST_SENDER_H */
