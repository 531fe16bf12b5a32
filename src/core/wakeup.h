/*-------------------------------------------------------------------------
 *
 * wakeup.h
 *	  Wake-ups: ask a component to look for work now, at commit or at once
 *	  (a latch in shared memory; NOTIFY for outside listeners).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_WAKEUP_H
#define SMSDIST_WAKEUP_H

#include "smsdist.h"

extern void sms_wake_at_commit(SmsComponentId id);
extern void sms_wake_now(SmsComponentId id);

#endif							/* SMSDIST_WAKEUP_H */
