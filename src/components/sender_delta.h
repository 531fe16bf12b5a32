/*-------------------------------------------------------------------------
 *
 * sender_delta.h
 *	  The choice between the full package file and a delta for a transfer
 *	  (sender_delta.c).
 *
 *	delta		a package file of the files that changed since a base
 *				version the sites behind the hop hold.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SENDER_DELTA_H
#define SMSDIST_SENDER_DELTA_H

#include "sender_transfer.h"

extern void sender_choose_file(Transfer *t);

#endif							/* SMSDIST_SENDER_DELTA_H */
