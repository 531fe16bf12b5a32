/*-------------------------------------------------------------------------
 *
 * message_text.h
 *	  The text of messages made from a printf-style format and its
 *	  arguments (message_text.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_MESSAGE_TEXT_H
#define SMSDIST_MESSAGE_TEXT_H

#include "postgres.h"

#include <stdarg.h>

extern char *sms_vformat(const char *fmt, va_list args) pg_attribute_printf(1, 0);

#endif							/* SMSDIST_MESSAGE_TEXT_H */
