/*-------------------------------------------------------------------------
 *
 * icons.h
 *	  The icons of the packages offered, kept in the state directory
 *	  (icons.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_ICONS_H
#define SMSDIST_ICONS_H

#include <stdint.h>

#include "config.h"
#include "offers.h"

/* The icons dir under the state directory: <PACKAGEID>.ICO each. */
#define ICONS_DIR	"icons"

/*
 * Keep the icon of every offer that has one in <state dir>/icons, once its
 * SHA-256 is the one the site vouched for and it is an icon; remove the
 * icons of packages no longer offered with an icon.
 */
extern void keep_icons(const Config *c, int64_t now, const Offers *o);

#endif							/* SMSDIST_ICONS_H */
