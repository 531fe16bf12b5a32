/*-------------------------------------------------------------------------
 *
 * legacy.h
 *	  Legacy mode: the offers and the site's clock from the shares
 *	  (legacy.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_LEGACY_H
#define SMSDIST_LEGACY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "offers.h"

/*
 * The site's clock, from the heartbeat on the CAP, given this machine's
 * (local); local itself when there is no heartbeat or it agrees.
 */
extern int64_t legacy_site_time(const Config *c, int64_t local);

/* Run-command jobs from the PCM file, into o. */
extern void legacy_job_offers(const Config *c, int64_t now, Offers *o);
/* Advertisements for this machine, its user and its groups, into o. */
extern void legacy_advert_offers(const Config *c, int64_t now, Offers *o);

/* Is advertisement advert_id's offer file still on the CAP? */
extern bool legacy_offer_file_exists(const Config *c, const char *advert_id);

/*
 * Instruction files refused so far in this run: a poll that refused one
 * does not know all its targets.
 */
extern int	legacy_refusals(void);

#endif							/* SMSDIST_LEGACY_H */
