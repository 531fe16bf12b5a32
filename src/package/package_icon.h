/*-------------------------------------------------------------------------
 *
 * package_icon.h
 *	  A package's icon read from its published tree (package_icon.c).
 *
 * Terms:
 *	icon file	packages.icon_file: a path relative to the package's tree
 *				(check_package_path()), which must be a regular file there,
 *				reached through no symbolic link, and a Windows icon within
 *				SMS_FMT_ICON_MAX_BYTES (src/formats/icon_file.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PACKAGE_ICON_H
#define SMSDIST_PACKAGE_ICON_H

#include "postgres.h"

/*
 * Read icon_file under tree (a published tree of this site).  True with the
 * bytes (palloc'd) in *buf and *len; false with why in *problem (palloc'd,
 * for an administrator: "not found", "a symbolic link", "larger than ...",
 * "not an icon file: ...").  Never raises an error for the file's sake.
 */
extern bool sms_read_package_icon(const char *tree, const char *icon_file,
								  char **buf, size_t *len, char **problem);

#endif							/* SMSDIST_PACKAGE_ICON_H */
