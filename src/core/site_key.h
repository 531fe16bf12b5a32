/*-------------------------------------------------------------------------
 *
 * site_key.h
 *	  The site's signing key (smsdist.signing_key): signs the instruction
 *	  files its components write.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SITE_KEY_H
#define SMSDIST_SITE_KEY_H

#include "smsdist.h"

struct SmsSigner;
extern char *sms_signing_key;
extern const struct SmsSigner *sms_site_signer(void);
extern const char *sms_site_key_id(void);
extern void sms_sign_instruction(char **buf, size_t *len, const char *what);

#endif							/* SMSDIST_SITE_KEY_H */
