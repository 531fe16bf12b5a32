/*-------------------------------------------------------------------------
 *
 * source_roots.h
 *	  Package sources are read only from directories a superuser allowed
 *	  (smsdist.source_roots).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SOURCE_ROOTS_H
#define SMSDIST_SOURCE_ROOTS_H

#include "smsdist.h"

extern void sms_check_source_directory(const char *source_dir, int dirfd);

#endif							/* SMSDIST_SOURCE_ROOTS_H */
