/*-------------------------------------------------------------------------
 *
 * status_manager.h
 *	  The Status Manager: takes status files from the logon servers into
 *	  smsdist.status_messages and reports a summary to the parent site.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_STATUS_MANAGER_H
#define SMSDIST_STATUS_MANAGER_H

#include "smsdist.h"

extern TimestampTz sms_status_manager_step(void);

#endif							/* SMSDIST_STATUS_MANAGER_H */
