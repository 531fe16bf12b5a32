/*-------------------------------------------------------------------------
 *
 * icon_file.h
 *	  A package's icon, pkginfo.box/<PACKAGEID>.ICO: the checks of a
 *	  Windows icon file (icon_file.c).
 *
 * Terms:
 *	icon file	the bytes of a Windows .ico: an ICONDIR header (reserved
 *				0, type 1, count >= 1), count ICONDIRENTRY records of 16
 *				bytes, and count images, each either a BMP DIB (a
 *				BITMAPINFOHEADER of 40 bytes or more) or a PNG (its
 *				8-byte signature), lying wholly inside the file.
 *	size limit	SMS_FMT_ICON_MAX_BYTES: the site refuses a larger icon,
 *				and so does the agent, whatever the .PKG or policy says.
 *
 * The .ICO is written as it is, unsigned (an icon with a signature
 * appended would no longer be the file the package holds): what vouches
 * for it is its SHA-256 in the signed .PKG (icon_sha256=) or in the
 * machine's policy, which the agent checks before it keeps the icon.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_ICON_FILE_H
#define SMS_FMT_ICON_FILE_H

#include <stdbool.h>
#include <stddef.h>

#define SMS_FMT_ICON_MAX_BYTES	(256 * 1024)
/* More images than any real icon carries (sizes x colour depths). */
#define SMS_FMT_ICON_MAX_IMAGES	64

/*
 * Is buf[len] an icon file within the size limit?  False with the reason
 * in err ("not an icon file: ...", "larger than ...") if not.
 */
extern bool sms_icon_check(const unsigned char *buf, size_t len, char *err, size_t errlen);

#endif							/* SMS_FMT_ICON_FILE_H */
