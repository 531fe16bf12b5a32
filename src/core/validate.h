/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  One definition of every name and path rule (site codes, SMS IDs,
 *	  object and NetBIOS names, server paths, stream IDs).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_VALIDATE_H
#define SMSDIST_VALIDATE_H

#include "smsdist.h"

extern bool sms_valid_site_code(const char *s, bool raise);
extern bool sms_valid_sms_id(const char *s, bool raise);
extern bool sms_valid_object_name(const char *s, const char *what, bool raise);
extern bool sms_valid_netbios_name(const char *s, const char *what, bool raise);
extern bool sms_valid_server_path(const char *s, const char *what, bool raise);

/*
 * A package file sent while it is written (package_builder.c, sender.c,
 * receiver.c): the builder names it <stem>.tar.gz.<stream ID>.tmp, the
 * stream ID being SMS_STREAM_ID_LEN random lower-case hex digits.
 */
#define SMS_STREAM_ID_LEN	16
extern bool sms_valid_stream_id(const char *s);

#endif							/* SMSDIST_VALIDATE_H */
