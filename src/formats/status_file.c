/*-------------------------------------------------------------------------
 *
 * status_file.c
 *	  The status message (.SMS, .INV): one header section, then the hmac
 *	  line that authenticates it (status_file.h).
 *
 * The hmac line is not a key of the document: it covers the document's
 * bytes, so it is appended after serializing and looked for in the raw
 * buffer when reading.  A reader that does not verify ignores it like any
 * key it does not know.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "status_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "box_file.h"
#include "fields.h"

#define MAX_COMPONENT		64

static const char *const severities[] = {"info", "warning", "error"};

static const char *
check_component(const char *v)
{
	size_t		i,
				l = strlen(v);

	for (i = 0; i < l; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
			  (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' ||
			  v[i] == '-' || v[i] == ' '))
			break;
	if (l == 0 || l > MAX_COMPONENT || i < l)
		return "a component is 1 to 64 of A-Z a-z 0-9 _ . - and space";
	return NULL;
}

/*
 * An inventory: a JSON object of printable ASCII, at most
 * SMS_STATUS_INVENTORY_MAX bytes; the site checks what it says.
 */
static const char *
check_inventory(const char *v)
{
	size_t		l = strlen(v);

	if (l < 2 || l > SMS_STATUS_INVENTORY_MAX || v[0] != '{' || v[l - 1] != '}')
		return "an inventory is a JSON object of at most 262144 bytes";
	for (size_t i = 0; i < l; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return "an inventory holds printable ASCII only";
	return NULL;
}

static const SmsField status_header[] = {
	SMS_STRING(SmsStatusFile, machine, SMS_REQUIRED, sms_check_sms_id),
	SMS_STRING(SmsStatusFile, site, SMS_REQUIRED, sms_check_site),
	SMS_INT(SmsStatusFile, sequence, SMS_REQUIRED, 0, SMS_FMT_MAX_SEQUENCE),
	SMS_UTC(SmsStatusFile, at, SMS_REQUIRED),
	SMS_INT(SmsStatusFile, message_id, SMS_REQUIRED, 0, INT32_MAX),
	SMS_ENUM(SmsStatusFile, severity, "severity", SMS_REQUIRED, severities, "severity",
			 "must be info, warning or error"),
	SMS_STRING(SmsStatusFile, component, SMS_REQUIRED, check_component),
	SMS_STRING(SmsStatusFile, advert_id, SMS_OPTIONAL, sms_check_sms_id),
	SMS_STRING(SmsStatusFile, job_id, SMS_OPTIONAL, sms_check_sms_id),
	SMS_STRING(SmsStatusFile, package_id, SMS_OPTIONAL, sms_check_sms_id),
	SMS_INT_IF(SmsStatusFile, exit_code, has_exit_code, 0, INT32_MAX),
	SMS_STRING(SmsStatusFile, inventory, SMS_OPTIONAL, check_inventory),
	SMS_STRING(SmsStatusFile, text, SMS_REQUIRED, NULL),
};

static const SmsFormatSpec status_format = {
	.format = SMS_FMT_STATUS,
	.size = sizeof(SmsStatusFile),
	.header = status_header,
	.nheader = SMS_NFIELDS(status_header),
};

/* "hmac=" + hex + LF */
#define STATUS_HMAC_LINE	(5 + SMS_STATUS_HMAC_HEX + 1)

/* HMAC-SHA256 of buf[0..len) with key, as lower-case hex */
static bool
status_hmac(const char *buf, size_t len, const uint8_t *key,
			char hex[SMS_STATUS_HMAC_HEX + 1], char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (HMAC(EVP_sha256(), key, SMS_STATUS_KEY_LEN, (const unsigned char *) buf, len,
			 md, &mdlen) == NULL || mdlen * 2 != SMS_STATUS_HMAC_HEX)
	{
		sms_fmt_error(err, errlen, "could not compute HMAC-SHA256");
		return false;
	}
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return true;
}

/*
 * The hmac line, if the file ends with one: its value and the bytes before
 * it.  Anything else (no such line, upper case, another key after it)
 * leaves hmac empty, and sms_status_verify refuses the file.
 */
static void
status_find_hmac(const char *buf, size_t len, SmsStatusFile *out)
{
	const char *line;

	out->hmac[0] = '\0';
	out->signed_len = 0;
	if (len < STATUS_HMAC_LINE)
		return;
	line = buf + len - STATUS_HMAC_LINE;
	if ((line != buf && line[-1] != '\n') || strncmp(line, "hmac=", 5) != 0 ||
		buf[len - 1] != '\n')
		return;
	for (int i = 0; i < SMS_STATUS_HMAC_HEX; i++)
	{
		char		ch = line[5 + i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return;
	}
	memcpy(out->hmac, line + 5, SMS_STATUS_HMAC_HEX);
	out->hmac[SMS_STATUS_HMAC_HEX] = '\0';
	out->signed_len = len - STATUS_HMAC_LINE;
}

bool
sms_status_verify(const char *buf, size_t len, const SmsStatusFile *m,
				  const uint8_t *key, char *err, size_t errlen)
{
	char		hex[SMS_STATUS_HMAC_HEX + 1];

	if (m->hmac[0] == '\0' || m->signed_len > len)
	{
		sms_fmt_error(err, errlen, "it is not authenticated: no hmac line at its end");
		return false;
	}
	if (!status_hmac(buf, m->signed_len, key, hex, err, errlen))
		return false;
	if (CRYPTO_memcmp(hex, m->hmac, SMS_STATUS_HMAC_HEX) != 0)
	{
		sms_fmt_error(err, errlen, "its hmac does not verify with the key of machine %s", m->machine);
		return false;
	}
	return true;
}

bool
sms_status_key_from_hex(const char *text, size_t len, uint8_t key[SMS_STATUS_KEY_LEN],
						char *err, size_t errlen)
{
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len != SMS_STATUS_KEY_LEN * 2)
	{
		sms_fmt_error(err, errlen, "a machine key is %d hexadecimal digits", SMS_STATUS_KEY_LEN * 2);
		return false;
	}
	for (size_t i = 0; i < SMS_STATUS_KEY_LEN; i++)
	{
		int			v = 0;

		for (int j = 0; j < 2; j++)
		{
			char		ch = text[2 * i + j];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				v |= ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				v |= ch - 'A' + 10;
			else
			{
				sms_fmt_error(err, errlen, "a machine key is %d hexadecimal digits", SMS_STATUS_KEY_LEN * 2);
				return false;
			}
		}
		key[i] = (uint8_t) v;
	}
	return true;
}

/* the hmac line comes last and covers every byte before it */
static bool
append_hmac(const uint8_t *key, char **out, size_t *len, char *err, size_t errlen)
{
	char		hex[SMS_STATUS_HMAC_HEX + 1] = "";
	char	   *grown;

	grown = status_hmac(*out, *len, key, hex, err, errlen) ?
		realloc(*out, *len + STATUS_HMAC_LINE + 1) : NULL;
	if (grown == NULL)
	{
		free(*out);
		*out = NULL;
		*len = 0;
		if (hex[0] != '\0')
			sms_fmt_oom(err, errlen);
		return false;
	}
	*out = grown;
	snprintf(*out + *len, STATUS_HMAC_LINE + 1, "hmac=%s\n", hex);
	*len += STATUS_HMAC_LINE;
	return true;
}

bool
sms_status_to_text(const SmsStatusFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	/*
	 * The table refuses it too, but later: an unknown severity is a bug of
	 * the caller, reported before whatever it may have caused in the rest.
	 */
	if ((unsigned) f->severity > SMS_STATUS_ERROR)
	{
		*out = NULL;
		*len = 0;
		return sms_fmt_error(err, errlen, "unknown severity %d", (int) f->severity);
	}
	if (!sms_format_to_text(&status_format, f, out, len, err, errlen))
		return false;
	return f->key == NULL || append_hmac(f->key, out, len, err, errlen);
}

void
sms_status_free(SmsStatusFile *f)
{
	sms_format_free(&status_format, f);
}

bool
sms_status_parse(const char *buf, size_t len, SmsStatusFile *out, char *err, size_t errlen)
{
	if (!sms_format_parse(&status_format, buf, len, out, err, errlen))
		return false;
	status_find_hmac(buf, len, out);
	return true;
}
