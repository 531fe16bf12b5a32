/*-------------------------------------------------------------------------
 *
 * offer_manager.h
 *	  The Offer Manager: writes the offer, lookup and install files of
 *	  advertisements to the site's logon servers.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_OFFER_MANAGER_H
#define SMSDIST_OFFER_MANAGER_H

#include "smsdist.h"

extern TimestampTz sms_offer_manager_step(void);

#endif							/* SMSDIST_OFFER_MANAGER_H */
