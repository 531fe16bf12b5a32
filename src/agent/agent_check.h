/*-------------------------------------------------------------------------
 *
 * agent_check.h
 *	  --check: the agent's settings and what they name, checked without a
 *	  poll (agent_check.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_AGENT_CHECK_H
#define SMSDIST_AGENT_CHECK_H

#include "config.h"

/*
 * Check what settings c (already valid) name: the state directory, and the
 * shares (legacy mode) or the management point (advanced mode).  Logs one
 * line per check, an error for each problem; 0 when all is well, else 1.
 */
extern int	agent_check(const Config *c);

#endif							/* SMSDIST_AGENT_CHECK_H */
