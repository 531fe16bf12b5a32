/*-------------------------------------------------------------------------
 *
 * status_forwarder.h
 *	  What a child site tells its parent: status summaries, target rows and
 *	  cache inventories (status_forwarder.c), sent by the Status Manager.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_STATUS_FORWARDER_H
#define SMSDIST_STATUS_FORWARDER_H

#include "smsdist.h"

/* false if something could not be sent (the caller tries again soon) */
extern bool sms_forward_status_to_parent(void);

#endif							/* SMSDIST_STATUS_FORWARDER_H */
