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

#include "utils/timestamp.h"

/*
 * When the caller should call again: DT_NOEND when everything was sent (or
 * there is no parent), a time soon when something could not be sent or
 * more is pending, or when the next look is due (at most one a second).
 */
extern TimestampTz sms_forward_status_to_parent(void);

#endif							/* SMSDIST_STATUS_FORWARDER_H */
