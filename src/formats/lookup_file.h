/*-------------------------------------------------------------------------
 *
 * lookup_file.h
 *	  The lookup files, offerinf.box/<SITE>SYSTM.LKP, USR.LKP and
 *	  USRGRP.LKP: which advertisements each machine, user or user group
 *	  is offered.
 *
 * The functions follow the rules of every typed format (pcm_file.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_LOOKUP_FILE_H
#define SMS_FMT_LOOKUP_FILE_H

#include <stdbool.h>
#include <stddef.h>

#define SMS_FMT_LOOKUP			"lookup"

typedef enum SmsLookupKind
{
	SMS_LOOKUP_SYSTEM,			/* entry names are machine SMS IDs */
	SMS_LOOKUP_USER,
	SMS_LOOKUP_USERGROUP
} SmsLookupKind;

typedef struct SmsLookupEntry
{
	char	   *name;			/* unique ignoring ASCII case */
	char	  **adverts;		/* advertisement IDs, written sorted */
	size_t		nadverts;
} SmsLookupEntry;

typedef struct SmsLookupFile
{
	char	   *site;
	SmsLookupKind kind;
	SmsLookupEntry *entries;	/* written sorted by name, ignoring case */
	size_t		nentries;
} SmsLookupFile;

extern bool sms_lookup_to_text(const SmsLookupFile *f, char **out, size_t *len,
							   char *err, size_t errlen);
extern bool sms_lookup_parse(const char *buf, size_t len, SmsLookupFile *out,
							 char *err, size_t errlen);
extern void sms_lookup_free(SmsLookupFile *f);
/* The entry for name (ASCII case ignored), or NULL: no advertisement. */
extern const SmsLookupEntry *sms_lookup_find(const SmsLookupFile *f, const char *name);

#endif							/* SMS_FMT_LOOKUP_FILE_H */
