/*-------------------------------------------------------------------------
 *
 * despooler.h
 *	  The Despooler: extracts package files onto this site's distribution
 *	  points (the Distribute phase) and runs the Run phase after it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_DESPOOLER_H
#define SMSDIST_DESPOOLER_H

#include "smsdist.h"

extern TimestampTz sms_despooler_step(void);

/*
 * What a distribute row's detail says while its site waits for the full
 * package because a delta could not be applied there; the parent's Sender
 * looks for it in distribution_report (sender.c).
 */
#define SMS_NEEDS_FULL_PACKAGE			"needs the full package"

#endif							/* SMSDIST_DESPOOLER_H */
