/*-------------------------------------------------------------------------
 *
 * agent_poll.h
 *	  One poll of the client agent (agent_poll.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_AGENT_POLL_H
#define SMSDIST_AGENT_POLL_H

#include <stdbool.h>

#include "config.h"

/* One poll; false if it failed (nothing known, or the offers not recorded). */
extern bool poll_once(const Config *c);

#endif							/* SMSDIST_AGENT_POLL_H */
