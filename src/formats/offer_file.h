/*-------------------------------------------------------------------------
 *
 * offer_file.h
 *	  The offer, offerinf.box/<ADVERTID>.OFR: an advertisement as clients
 *	  that read the shares see it, with its assignments (mandatory times)
 *	  and maintenance windows.
 *
 * The functions follow the rules of every typed format (pcm_file.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_OFFER_FILE_H
#define SMS_FMT_OFFER_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "values.h"

#define SMS_FMT_OFFER			"offer"

#define SMS_DAY_MON		0x01
#define SMS_DAY_TUE		0x02
#define SMS_DAY_WED		0x04
#define SMS_DAY_THU		0x08
#define SMS_DAY_FRI		0x10
#define SMS_DAY_SAT		0x20
#define SMS_DAY_SUN		0x40

typedef struct SmsOfferAssignment
{
	SmsWhen		time;
	int32_t		recur_every_minutes;	/* 0: once */
} SmsOfferAssignment;

typedef struct SmsOfferWindow
{
	int			start_minute;	/* local time of day, 0-1439 */
	int32_t		duration_minutes;	/* 1-10080 */
	unsigned	days;			/* SMS_DAY_* bits, at least one */
} SmsOfferWindow;

/*
 * What a mandatory time does when the program already ran on this machine
 * (the rerun behaviour of Configuration Manager's deployments).  The
 * key rerun_behaviour= of an offer file; absent: SMS_RERUN_IF_FAILED, so
 * files written before the key existed keep the default.
 */
typedef enum SmsRerunBehaviour
{
	SMS_RERUN_IF_FAILED = 0,	/* rerun_if_failed: run again only after a failure */
	SMS_RERUN_NEVER,			/* never_rerun: run only if it never ran */
	SMS_RERUN_ALWAYS,			/* always_rerun: run at every mandatory time */
	SMS_RERUN_IF_SUCCEEDED		/* rerun_if_succeeded: run again only after a success */
} SmsRerunBehaviour;

/* "rerun_if_failed" ...; NULL for a value out of range */
extern const char *sms_rerun_name(SmsRerunBehaviour r);
/* false: not one of the four names */
extern bool sms_rerun_from_name(const char *name, SmsRerunBehaviour *out);

typedef struct SmsOfferFile
{
	char	   *advert_id;
	char	   *name;
	char	   *package_id;
	char	   *program;
	char	   *command_line;
	char	  **platforms;
	size_t		nplatforms;
	SmsWhen		offer_time;
	SmsWhen		expires_time;	/* secs SMS_TIME_NONE: never */
	SmsOfferAssignment *assignments;	/* written sorted by time */
	size_t		nassignments;
	SmsOfferWindow *windows;	/* written sorted by start, duration, days */
	size_t		nwindows;
	SmsRerunBehaviour rerun;	/* always written; absent when read: rerun_if_failed */
} SmsOfferFile;

extern bool sms_offer_to_text(const SmsOfferFile *f, char **out, size_t *len,
							  char *err, size_t errlen);
extern bool sms_offer_parse(const char *buf, size_t len, SmsOfferFile *out,
							char *err, size_t errlen);
extern void sms_offer_free(SmsOfferFile *f);

#endif							/* SMS_FMT_OFFER_FILE_H */
