/*-------------------------------------------------------------------------
 *
 * icon_file.c
 *	  The checks of a package's icon file (see icon_file.h for the terms).
 *
 * An icon is read by the site from a package's published tree and by the
 * agent from a share; both check it here, so that neither passes on bytes
 * the other would refuse.  The check is structural: the header, every
 * directory entry, and the start of every image.  It does not decode the
 * pixels; a client that shows the icon decodes them with its own library.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "icon_file.h"

#include <stdint.h>
#include <string.h>

#include "values.h"

#define ICONDIR_BYTES		6
#define ICONDIRENTRY_BYTES	16
#define BMP_INFO_MIN_BYTES	40

static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t
le16(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8);
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/* Image k, at offset for bytes: inside the file, and a DIB or a PNG. */
static bool
check_image(const unsigned char *buf, size_t len, unsigned k, uint32_t offset, uint32_t bytes,
			char *err, size_t errlen)
{
	const unsigned char *img;

	if (bytes == 0 || offset > len || bytes > len - offset)
		return sms_fmt_error(err, errlen, "not an icon file: image %u lies outside the file", k + 1);
	img = buf + offset;
	if (bytes >= sizeof(png_signature) && memcmp(img, png_signature, sizeof(png_signature)) == 0)
		return true;
	if (bytes >= BMP_INFO_MIN_BYTES && le32(img) >= BMP_INFO_MIN_BYTES && le32(img) <= bytes &&
		le16(img + 12) == 1)
		return true;
	return sms_fmt_error(err, errlen, "not an icon file: image %u is neither a BMP nor a PNG image", k + 1);
}

bool
sms_icon_check(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	uint32_t	count;

	if (len > SMS_FMT_ICON_MAX_BYTES)
		return sms_fmt_error(err, errlen, "the icon is larger than %d bytes (%zu bytes)",
							 SMS_FMT_ICON_MAX_BYTES, len);
	if (len >= sizeof(png_signature) && memcmp(buf, png_signature, sizeof(png_signature)) == 0)
		return sms_fmt_error(err, errlen, "not an icon file: it is a PNG image, not an .ico");
	if (len < ICONDIR_BYTES || le16(buf) != 0 || le16(buf + 2) != 1)
		return sms_fmt_error(err, errlen, "not an icon file: no icon header (reserved 0, type 1)");
	count = le16(buf + 4);
	if (count == 0 || count > SMS_FMT_ICON_MAX_IMAGES)
		return sms_fmt_error(err, errlen, "not an icon file: %u images (1 to %d)",
							 (unsigned) count, SMS_FMT_ICON_MAX_IMAGES);
	if (len < ICONDIR_BYTES + (size_t) count * ICONDIRENTRY_BYTES)
		return sms_fmt_error(err, errlen, "not an icon file: its directory of %u images is cut short",
							 (unsigned) count);
	for (unsigned k = 0; k < count; k++)
	{
		const unsigned char *e = buf + ICONDIR_BYTES + (size_t) k * ICONDIRENTRY_BYTES;
		uint32_t	bytes = le32(e + 8);
		uint32_t	offset = le32(e + 12);

		if (e[3] != 0)
			return sms_fmt_error(err, errlen, "not an icon file: entry %u has a nonzero reserved byte", k + 1);
		if (offset < ICONDIR_BYTES + count * ICONDIRENTRY_BYTES)
			return sms_fmt_error(err, errlen, "not an icon file: image %u overlaps the directory", k + 1);
		if (!check_image(buf, len, k, offset, bytes, err, errlen))
			return false;
	}
	return true;
}
