/*-------------------------------------------------------------------------
 *
 * site_key.c
 *	  The site's signing key: every instruction file a worker writes for
 *	  workstations (PCM, offer, install, lookup, package, NAL, heartbeat)
 *	  is signed with it, and agents verify the signature before they read
 *	  the file (src/formats/sms_signature.h, docs/formats.md).
 *
 * Terms:
 *	signing key	smsdist.signing_key: the path of a PEM Ed25519 private key,
 *				relative to the data directory unless absolute (default
 *				smsdist_signing_key.pem).  Made by the first process that
 *				needs it when the file does not exist (mode 0600; written
 *				under a temporary name, fsynced, then linked into place so
 *				that two processes making it at once agree on one key).
 *	key ID		the first 16 hex digits of the SHA-256 of the raw public
 *				key; written into every signed file.
 *
 * Each process keeps the key it loaded and loads it again when the setting
 * or the file changes (another path after a reload, or a file replaced in
 * place), so a rotation needs no restart.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "site_key.h"

#include <sys/stat.h>

#include "fmgr.h"
#include "formats/sms_signature.h"
#include "miscadmin.h"
#include "utils/builtins.h"

char	   *sms_signing_key = NULL;

static SmsSigner *signer = NULL;
static char *signer_path = NULL;	/* malloc'd */
static struct stat signer_st;

/* The key file's path: the setting, relative to the data directory. */
static char *
key_path(void)
{
	const char *p = (sms_signing_key && sms_signing_key[0]) ? sms_signing_key : "smsdist_signing_key.pem";

	if (is_absolute_path(p))
		return pstrdup(p);
	return psprintf("%s/%s", DataDir, p);
}

const SmsSigner *
sms_site_signer(void)
{
	char	   *path = key_path();
	char		err[512];
	bool		created;
	struct stat st;
	SmsSigner  *s;

	if (!sms_sig_create_key(path, &created, err, sizeof(err)))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not create the site's signing key: %s", err),
				 errhint("smsdist.signing_key names the key file; the server creates it when it does not exist.")));
	if (created)
		ereport(LOG,
				(errmsg("smsdist: created the site's signing key \"%s\"", path),
				 errhint("Install the site's public key on the agents: SELECT smsdist.site_public_key();")));
	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat the site's signing key \"%s\": %m", path)));
	if (signer != NULL && strcmp(signer_path, path) == 0 &&
		st.st_dev == signer_st.st_dev && st.st_ino == signer_st.st_ino &&
		st.st_size == signer_st.st_size && st.st_mtime == signer_st.st_mtime &&
		st.st_ctime == signer_st.st_ctime)
		return signer;
	s = sms_sig_signer_load(path, err, sizeof(err));
	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not load the site's signing key: %s", err),
				 errhint("smsdist.signing_key must name a PEM Ed25519 private key that only the server's account can read (mode 0600).")));
	sms_sig_signer_free(signer);
	free(signer_path);
	signer = s;
	signer_path = strdup(path);
	if (signer_path == NULL)
	{
		sms_sig_signer_free(signer);
		signer = NULL;
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	signer_st = st;
	return signer;
}

const char *
sms_site_key_id(void)
{
	return sms_sig_signer_key_id(sms_site_signer());
}

/*
 * Sign a malloc'd instruction file in place (what names it in the error):
 * no file leaves the site unsigned.
 */
void
sms_sign_instruction(char **buf, size_t *len, const char *what)
{
	const SmsSigner *s = sms_site_signer();
	char		err[512];

	if (!sms_sig_append(s, buf, len, err, sizeof(err)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("could not sign the %s: %s", what, err)));
}

/*
 * smsdist.site_public_key(): the site's public key (PEM), to install on
 * the agents of this site (smsdist-agent --site-key).
 */
PG_FUNCTION_INFO_V1(smsdist_site_public_key);
Datum
smsdist_site_public_key(PG_FUNCTION_ARGS)
{
	char		err[512];
	char	   *pem = sms_sig_signer_public_pem(sms_site_signer(), err, sizeof(err));
	text	   *t;

	if (pem == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not write the site's public key: %s", err)));
	t = cstring_to_text(pem);
	free(pem);
	PG_RETURN_TEXT_P(t);
}

/*
 * Keys the site issues (machine keys, the status HMAC keys of the agents)
 * come from the operating system's strong random source.
 */
PG_FUNCTION_INFO_V1(smsdist_strong_random_bytes);

/* smsdist.strong_random_bytes(n integer) returns bytea: for keys */
Datum
smsdist_strong_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *b;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("strong_random_bytes takes 1 to 1024 bytes, not %d", n)));
	b = palloc(VARHDRSZ + n);
	SET_VARSIZE(b, VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(b), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate %d random bytes", n)));
	PG_RETURN_BYTEA_P(b);
}
