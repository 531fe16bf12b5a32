/*-------------------------------------------------------------------------
 *
 * inbox_manager.h
 *	  The Inbox Manager: copies the Offer Manager's files to every logon
 *	  server (CAP) of the site.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_INBOX_MANAGER_H
#define SMSDIST_INBOX_MANAGER_H

#include "smsdist.h"

extern TimestampTz sms_inbox_manager_step(void);

#endif							/* SMSDIST_INBOX_MANAGER_H */
