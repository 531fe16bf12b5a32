/*-------------------------------------------------------------------------
 *
 * status_file.h
 *	  The status message, written by a client into a CAP's status inbox
 *	  as <MACHINE>.<SEQ>.SMS (or <MACHINE>.INV with the download cache's
 *	  inventory), and authenticated by the machine's key.
 *
 * The functions follow the rules of every typed format (pcm_file.h).
 *
 * A status file is authenticated by its machine: its last line is
 * hmac=<64 lower-case hex digits>, HMAC-SHA256 with the machine's key
 * (SMS_STATUS_KEY_LEN bytes, issued by the site: smsdist.machine_key())
 * over every byte of the file before that line.  The key is written as
 * SMS_STATUS_KEY_LEN * 2 hex digits (a key file may end with one LF).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_STATUS_FILE_H
#define SMS_FMT_STATUS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMS_FMT_STATUS			"status"

typedef enum SmsStatusLevel
{
	SMS_STATUS_INFO,
	SMS_STATUS_WARNING,
	SMS_STATUS_ERROR
} SmsStatusLevel;

#define SMS_STATUS_KEY_LEN		32
#define SMS_STATUS_CACHE_INVENTORY	10030	/* the message ID of an inventory file */
#define SMS_STATUS_INVENTORY_MAX	(256 * 1024)	/* bytes of its inventory= */
#define SMS_STATUS_HMAC_HEX		64

typedef struct SmsStatusFile
{
	char	   *machine;
	char	   *site;
	int64_t		sequence;		/* 0-9999999999, per machine */
	int64_t		at;				/* UTC, by the client's clock */
	int32_t		message_id;		/* >= 0 */
	SmsStatusLevel severity;
	char	   *component;
	char	   *advert_id;		/* optional */
	char	   *job_id;			/* optional */
	char	   *package_id;		/* optional */
	char	   *text;			/* may be empty */
	bool		has_exit_code;	/* exit_code= is present (optional) */
	int32_t		exit_code;		/* 0-2147483647: the program's exit code */
	/*
	 * optional: the download cache's inventory, a JSON object on one line
	 * (message SMS_STATUS_CACHE_INVENTORY in a <MACHINE>.INV file; the site
	 * checks its content: smsdist.cache_inventory_problem())
	 */
	char	   *inventory;
	/* writer: the machine's key; NULL writes no hmac line (the site refuses it) */
	const uint8_t *key;
	/* reader: the hmac line's value ("" if none) and the bytes it covers */
	char		hmac[SMS_STATUS_HMAC_HEX + 1];
	size_t		signed_len;
} SmsStatusFile;

extern bool sms_status_to_text(const SmsStatusFile *f, char **out, size_t *len,
							   char *err, size_t errlen);
extern bool sms_status_parse(const char *buf, size_t len, SmsStatusFile *out,
							 char *err, size_t errlen);
extern void sms_status_free(SmsStatusFile *f);

/*
 * true if buf (len bytes, parsed into m by sms_status_parse) carries an
 * hmac line that verifies with key (SMS_STATUS_KEY_LEN bytes); otherwise
 * false with the reason: no hmac line, or one that does not verify.
 */
extern bool sms_status_verify(const char *buf, size_t len, const SmsStatusFile *m,
							  const uint8_t *key, char *err, size_t errlen);
/* A key from its hex form (an optional final LF); false with the reason. */
extern bool sms_status_key_from_hex(const char *text, size_t len,
									uint8_t key[SMS_STATUS_KEY_LEN],
									char *err, size_t errlen);

#endif							/* SMS_FMT_STATUS_FILE_H */
