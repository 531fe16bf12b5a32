/*-------------------------------------------------------------------------
 *
 * replication_manager.h
 *	  The Replication Manager: pushes advertisements to child sites; run
 *	  by the Sender between transfers.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_REPLICATION_MANAGER_H
#define SMSDIST_REPLICATION_MANAGER_H

#include "smsdist.h"

extern TimestampTz sms_replicate_advertisements(void);

#endif							/* SMSDIST_REPLICATION_MANAGER_H */
