/*-------------------------------------------------------------------------
 *
 * inventory.h
 *	  The cache inventory the agent reports to its site (inventory.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_INVENTORY_H
#define SMSDIST_INVENTORY_H

#include <stdint.h>

#include "config.h"

/*
 * Report the cache's inventory to the site at now when it changed since
 * the last report, and at least every --inventory-every polls.
 */
extern void report_inventory(const Config *c, int64_t now);

#endif							/* SMSDIST_INVENTORY_H */
