/*-------------------------------------------------------------------------
 *
 * sms_signature.c
 *	  Ed25519 signatures of instruction files (sms_signature.h), through
 *	  OpenSSL's libcrypto.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "sms_signature.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "box_file.h"
#include "values.h"

#define RAW_KEY_LEN		32
#define SIG_LEN			64
#define MAX_KEY_FILE	(1024 * 1024)

/*
 * ready is a signing context set up once for the key (EVP_DigestSignInit),
 * copied into work for each signature: setting one up fetches the
 * algorithm from OpenSSL's provider store and took about as long as a
 * third of the signature itself (69 against 41 us for a 700-byte PCM file;
 * 100,000 files a job).  Ed25519 signatures are deterministic, so a copy
 * signs exactly as a fresh context would.  NULL when OpenSSL would not set
 * one up or copy it: each signature then sets up its own.  work makes a
 * signer unfit for two threads at once; no caller has threads.
 */
struct SmsSigner
{
	EVP_PKEY   *key;
	EVP_MD_CTX *ready;
	EVP_MD_CTX *work;
	char		id[SMS_SIG_KEY_ID_LEN + 1];
};

typedef struct RingKey
{
	EVP_PKEY   *key;
	char		id[SMS_SIG_KEY_ID_LEN + 1];
} RingKey;

struct SmsSigKeyring
{
	RingKey		keys[SMS_SIG_MAX_KEYS];
	size_t		n;
};

/* The reason OpenSSL gives for its last failure, or a fallback. */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown OpenSSL error";
}

/* The key ID of an Ed25519 key: hex of the first 8 bytes of SHA-256(raw). */
static bool
key_id(EVP_PKEY *key, char *id)
{
	unsigned char raw[RAW_KEY_LEN];
	size_t		rawlen = sizeof(raw);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	static const char hex[] = "0123456789abcdef";

	if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) != 1 || rawlen != RAW_KEY_LEN ||
		EVP_Digest(raw, rawlen, md, &mdlen, EVP_sha256(), NULL) != 1)
		return false;
	for (int i = 0; i < SMS_SIG_KEY_ID_LEN / 2; i++)
	{
		id[2 * i] = hex[md[i] >> 4];
		id[2 * i + 1] = hex[md[i] & 15];
	}
	id[SMS_SIG_KEY_ID_LEN] = '\0';
	return true;
}

/*
 * Read a whole key file into a malloc'd buffer.  private_key: it must be
 * readable by its owner only; else it must not be writable by group or
 * others.
 */
static char *
read_key_file(const char *path, bool private_key, size_t *len, char *err, size_t errlen)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char	   *buf = NULL;
	size_t		have = 0;

	if (fd < 0)
	{
		sms_fmt_error(err, errlen, "could not open key file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0)
	{
		sms_fmt_error(err, errlen, "could not stat key file \"%s\": %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode))
	{
		sms_fmt_error(err, errlen, "key file \"%s\" is not a regular file", path);
		goto fail;
	}
	if (private_key && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		sms_fmt_error(err, errlen, "private key file \"%s\" may be accessed by group or others (mode %04o): it must be 0600 or stricter",
				path, (unsigned) (st.st_mode & 07777));
		goto fail;
	}
	if (!private_key && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
	{
		sms_fmt_error(err, errlen, "key file \"%s\" may be written by group or others (mode %04o): whoever can change it decides what this machine runs",
				path, (unsigned) (st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size > MAX_KEY_FILE)
	{
		sms_fmt_error(err, errlen, "key file \"%s\" is larger than %d bytes", path, MAX_KEY_FILE);
		goto fail;
	}
	buf = malloc((size_t) st.st_size + 1);
	if (buf == NULL)
	{
		sms_fmt_error(err, errlen, "out of memory");
		goto fail;
	}
	while (have < (size_t) st.st_size)
	{
		ssize_t		r = read(fd, buf + have, (size_t) st.st_size - have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			sms_fmt_error(err, errlen, "could not read key file \"%s\": %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		have += (size_t) r;
	}
	buf[have] = '\0';
	close(fd);
	*len = have;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

SmsSigner *
sms_sig_signer_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	BIO		   *bio = BIO_new_mem_buf(pem, (int) len);
	EVP_PKEY   *key;
	SmsSigner  *s;

	if (bio == NULL)
	{
		sms_fmt_error(err, errlen, "out of memory");
		return NULL;
	}
	ERR_clear_error();
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL)
	{
		sms_fmt_error(err, errlen, "no PEM private key (%s)", ssl_reason());
		return NULL;
	}
	if (EVP_PKEY_id(key) != EVP_PKEY_ED25519)
	{
		EVP_PKEY_free(key);
		sms_fmt_error(err, errlen, "the private key is not an Ed25519 key");
		return NULL;
	}
	s = calloc(1, sizeof(SmsSigner));
	if (s == NULL || !key_id(key, s->id))
	{
		EVP_PKEY_free(key);
		free(s);
		sms_fmt_error(err, errlen, "could not compute the key ID");
		return NULL;
	}
	s->key = key;
	s->ready = EVP_MD_CTX_new();
	s->work = EVP_MD_CTX_new();
	if (s->ready == NULL || s->work == NULL ||
		EVP_DigestSignInit(s->ready, NULL, NULL, NULL, key) != 1)
	{
		EVP_MD_CTX_free(s->ready);
		EVP_MD_CTX_free(s->work);
		s->ready = s->work = NULL;
		ERR_clear_error();
	}
	return s;
}

SmsSigner *
sms_sig_signer_load(const char *path, char *err, size_t errlen)
{
	size_t		len;
	char	   *pem = read_key_file(path, true, &len, err, errlen);
	SmsSigner  *s;
	char		e2[256];

	if (pem == NULL)
		return NULL;
	s = sms_sig_signer_from_pem(pem, len, e2, sizeof(e2));
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (s == NULL)
		sms_fmt_error(err, errlen, "key file \"%s\": %s", path, e2);
	return s;
}

void
sms_sig_signer_free(SmsSigner *s)
{
	if (s == NULL)
		return;
	EVP_MD_CTX_free(s->ready);
	EVP_MD_CTX_free(s->work);
	EVP_PKEY_free(s->key);
	free(s);
}

const char *
sms_sig_signer_key_id(const SmsSigner *s)
{
	return s->id;
}

char *
sms_sig_signer_public_pem(const SmsSigner *s, char *err, size_t errlen)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *data;
	long		n;
	char	   *out = NULL;

	if (bio == NULL || PEM_write_bio_PUBKEY(bio, s->key) != 1)
		sms_fmt_error(err, errlen, "could not write the public key (%s)", ssl_reason());
	else if ((n = BIO_get_mem_data(bio, &data)) <= 0 || (out = malloc((size_t) n + 1)) == NULL)
		sms_fmt_error(err, errlen, "out of memory");
	else
	{
		memcpy(out, data, (size_t) n);
		out[n] = '\0';
	}
	BIO_free(bio);
	return out;
}

bool
sms_sig_create_key(const char *path, bool *created, char *err, size_t errlen)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY   *key = NULL;
	BIO		   *bio = NULL;
	char	   *tmp = NULL;
	char	   *dir = NULL;
	char	   *data;
	long		n;
	int			fd = -1;
	bool		ok = false;
	struct stat st;
	char	   *slash;

	*created = false;
	if (stat(path, &st) == 0)
		return true;
	if (errno != ENOENT)
	{
		sms_fmt_error(err, errlen, "could not stat \"%s\": %s", path, strerror(errno));
		return false;
	}
	ERR_clear_error();
	if ((ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL ||
		EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1 ||
		(bio = BIO_new(BIO_s_mem())) == NULL ||
		PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
		(n = BIO_get_mem_data(bio, &data)) <= 0)
	{
		sms_fmt_error(err, errlen, "could not make an Ed25519 key (%s)", ssl_reason());
		goto out;
	}
	tmp = malloc(strlen(path) + 32);
	dir = strdup(path);
	if (tmp == NULL || dir == NULL)
	{
		sms_fmt_error(err, errlen, "out of memory");
		goto out;
	}
	sprintf(tmp, "%s.tmp.%ld", path, (long) getpid());
	(void) unlink(tmp);			/* a leftover of a crashed process with our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0 || !sms_fmt_write_all(fd, data, (size_t) n) || fsync(fd) != 0)
	{
		sms_fmt_error(err, errlen, "could not write \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0)
	{
		fd = -1;
		sms_fmt_error(err, errlen, "could not write \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	/* link, not rename: a key another process made first is never replaced */
	if (link(tmp, path) == 0)
		*created = true;
	else if (errno != EEXIST)
	{
		sms_fmt_error(err, errlen, "could not create \"%s\": %s", path, strerror(errno));
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) != 0)
	{
		sms_fmt_error(err, errlen, "could not sync directory \"%s\": %s", dir, strerror(errno));
		goto out;
	}
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		(void) unlink(tmp);
	free(tmp);
	free(dir);
	if (bio != NULL)
	{
		BIO_set_close(bio, BIO_CLOSE);
		BIO_free(bio);
	}
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

bool
sms_sig_append(const SmsSigner *s, char **buf, size_t *len, char *err, size_t errlen)
{
	size_t		n = *len;
	char	   *b;
	unsigned char sig[SIG_LEN];
	size_t		siglen = sizeof(sig);
	unsigned char b64[SMS_SIG_B64_LEN + 1];
	EVP_MD_CTX *ctx;
	bool		ok;

	if (n == 0 || (*buf)[n - 1] != '\n')
	{
		sms_fmt_error(err, errlen, "a document to sign must end with a line feed");
		return false;
	}
	b = realloc(*buf, n + 1 + SMS_SIG_TRAILER_LEN + 1);
	if (b == NULL)
	{
		sms_fmt_error(err, errlen, "out of memory");
		return false;
	}
	*buf = b;
	b[n++] = '\n';
	ERR_clear_error();
	if (s->ready != NULL && EVP_MD_CTX_copy_ex(s->work, s->ready) == 1)
		ok = EVP_DigestSign(s->work, sig, &siglen, (const unsigned char *) b, n) == 1 &&
			siglen == SIG_LEN;
	else
	{
		ctx = EVP_MD_CTX_new();
		ok = ctx != NULL &&
			EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
			EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *) b, n) == 1 &&
			siglen == SIG_LEN;
		EVP_MD_CTX_free(ctx);
	}
	if (!ok)
	{
		sms_fmt_error(err, errlen, "could not sign (%s)", ssl_reason());
		return false;
	}
	EVP_EncodeBlock(b64, sig, SIG_LEN);
	n += (size_t) sprintf(b + n, "[" SMS_SIG_SECTION "]\nkey_id=%s\ned25519=%s\n", s->id, (char *) b64);
	*len = n;
	return true;
}

SmsSigKeyring *
sms_sig_keyring_new(void)
{
	return calloc(1, sizeof(SmsSigKeyring));
}

void
sms_sig_keyring_free(SmsSigKeyring *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		EVP_PKEY_free(r->keys[i].key);
	free(r);
}

/* Does text hold the start of a PEM block? */
static bool
has_begin(const char *text, size_t len)
{
	static const char begin[] = "-----BEGIN ";

	for (size_t i = 0; i + sizeof(begin) - 1 <= len; i++)
		if (text[i] == '-' && memcmp(text + i, begin, sizeof(begin) - 1) == 0)
			return true;
	return false;
}

bool
sms_sig_keyring_add_pem(SmsSigKeyring *r, const char *pem, size_t len, const char *what,
						char *err, size_t errlen)
{
	BIO		   *bio = BIO_new_mem_buf(pem, (int) len);
	int			found = 0;
	bool		ok = true;

	if (bio == NULL)
	{
		sms_fmt_error(err, errlen, "out of memory");
		return false;
	}
	ERR_clear_error();
	for (;;)
	{
		EVP_PKEY   *key;
		char		id[SMS_SIG_KEY_ID_LEN + 1];
		bool		dup = false;
		char	   *left;
		long		nleft = BIO_get_mem_data(bio, &left);

		/* the end of the text: no further PEM block */
		if (found > 0 && (nleft <= 0 || !has_begin(left, (size_t) nleft)))
			break;
		key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		if (key == NULL)
		{
			if (found == 0)
				sms_fmt_error(err, errlen, "%s holds no PEM public key (%s)", what, ssl_reason());
			else
				sms_fmt_error(err, errlen, "%s: PEM block after public key %d is not a public key (%s)",
						what, found, ssl_reason());
			ok = false;
			break;
		}
		found++;
		if (EVP_PKEY_id(key) != EVP_PKEY_ED25519 || !key_id(key, id))
		{
			EVP_PKEY_free(key);
			sms_fmt_error(err, errlen, "%s: public key %d is not an Ed25519 key", what, found);
			ok = false;
			break;
		}
		for (size_t i = 0; i < r->n; i++)
			if (strcmp(r->keys[i].id, id) == 0)
				dup = true;
		if (dup)
		{
			EVP_PKEY_free(key);
			continue;
		}
		if (r->n == SMS_SIG_MAX_KEYS)
		{
			EVP_PKEY_free(key);
			sms_fmt_error(err, errlen, "%s: more than %d site keys", what, SMS_SIG_MAX_KEYS);
			ok = false;
			break;
		}
		r->keys[r->n].key = key;
		memcpy(r->keys[r->n].id, id, sizeof(id));
		r->n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	return ok;
}

bool
sms_sig_keyring_load(SmsSigKeyring *r, const char *path, char *err, size_t errlen)
{
	size_t		len;
	char	   *pem = read_key_file(path, false, &len, err, errlen);
	char	   *what;
	bool		ok;

	if (pem == NULL)
		return false;
	what = malloc(strlen(path) + 16);
	if (what == NULL)
	{
		free(pem);
		sms_fmt_error(err, errlen, "out of memory");
		return false;
	}
	sprintf(what, "key file \"%s\"", path);
	ok = sms_sig_keyring_add_pem(r, pem, len, what, err, errlen);
	free(what);
	free(pem);
	return ok;
}

size_t
sms_sig_keyring_count(const SmsSigKeyring *r)
{
	return r ? r->n : 0;
}

const char *
sms_sig_keyring_key_id(const SmsSigKeyring *r, size_t i)
{
	return i < r->n ? r->keys[i].id : NULL;
}

/* Where the last "[signature]" line starts, or (size_t) -1. */
static size_t
find_section(const char *buf, size_t len)
{
	static const char line[] = "[" SMS_SIG_SECTION "]\n";
	size_t		ll = sizeof(line) - 1;

	if (len < ll)
		return (size_t) -1;
	for (size_t p = len - ll + 1; p-- > 0;)
		if ((p == 0 || buf[p - 1] == '\n') && buf[p] == '[' && memcmp(buf + p, line, ll) == 0)
			return p;
	return (size_t) -1;
}

static bool
is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool
sms_sig_verify(const SmsSigKeyring *r, const char *buf, size_t len, size_t *signed_len,
			   char *err, size_t errlen)
{
	size_t		p = find_section(buf, len);
	const char *t;
	size_t		rest;
	char		id[SMS_SIG_KEY_ID_LEN + 1];
	unsigned char dec[SMS_SIG_B64_LEN];
	unsigned char again[SMS_SIG_B64_LEN + 1];
	const RingKey *k = NULL;
	EVP_MD_CTX *ctx;
	int			v;

	if (p == (size_t) -1)
	{
		sms_fmt_error(err, errlen, "it is not signed: it has no [" SMS_SIG_SECTION "] section");
		return false;
	}
	t = buf + p + 12;
	rest = len - p - 12;
	/* key_id=<16 hex>\n */
	if (rest < 7 + SMS_SIG_KEY_ID_LEN + 1 || memcmp(t, "key_id=", 7) != 0 ||
		t[7 + SMS_SIG_KEY_ID_LEN] != '\n')
	{
		sms_fmt_error(err, errlen, "its [" SMS_SIG_SECTION "] section does not start with key_id=<%d hex digits>",
				SMS_SIG_KEY_ID_LEN);
		return false;
	}
	for (int i = 0; i < SMS_SIG_KEY_ID_LEN; i++)
	{
		char		c = t[7 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
		{
			sms_fmt_error(err, errlen, "its key_id is not %d lower-case hex digits", SMS_SIG_KEY_ID_LEN);
			return false;
		}
	}
	memcpy(id, t + 7, SMS_SIG_KEY_ID_LEN);
	id[SMS_SIG_KEY_ID_LEN] = '\0';
	t += 7 + SMS_SIG_KEY_ID_LEN + 1;
	rest -= 7 + SMS_SIG_KEY_ID_LEN + 1;
	/* ed25519=<88 base64>\n, and the end of the file */
	if (rest < 8 || memcmp(t, "ed25519=", 8) != 0)
	{
		sms_fmt_error(err, errlen, "its [" SMS_SIG_SECTION "] section has no ed25519= line after key_id");
		return false;
	}
	t += 8;
	rest -= 8;
	{
		size_t		n = 0;

		while (n < rest && t[n] != '\n')
			n++;
		if (n == rest)
		{
			sms_fmt_error(err, errlen, "its ed25519 line does not end with a line feed: the file is truncated");
			return false;
		}
		if (n != SMS_SIG_B64_LEN || t[86] != '=' || t[87] != '=')
		{
			sms_fmt_error(err, errlen, "its ed25519 signature is %zu characters, not %d of base64 (64 bytes): truncated or damaged",
					n, SMS_SIG_B64_LEN);
			return false;
		}
		for (int i = 0; i < 86; i++)
			if (!is_b64(t[i]))
			{
				sms_fmt_error(err, errlen, "its ed25519 signature is not base64");
				return false;
			}
		if (n + 1 != rest)
		{
			sms_fmt_error(err, errlen, "%zu bytes follow its [" SMS_SIG_SECTION "] section: the signature must end the file",
					rest - n - 1);
			return false;
		}
	}
	/* the one encoding of 64 bytes: decode, encode again, compare */
	if (EVP_DecodeBlock(dec, (const unsigned char *) t, SMS_SIG_B64_LEN) != 66 ||
		EVP_EncodeBlock(again, dec, SIG_LEN) != SMS_SIG_B64_LEN ||
		memcmp(again, t, SMS_SIG_B64_LEN) != 0)
	{
		sms_fmt_error(err, errlen, "its ed25519 signature is not the base64 of 64 bytes");
		return false;
	}
	for (size_t i = 0; r != NULL && i < r->n; i++)
		if (strcmp(r->keys[i].id, id) == 0)
			k = &r->keys[i];
	if (k == NULL)
	{
		sms_fmt_error(err, errlen, "it is signed with key %s, which is not a site key this machine trusts (%zu installed with --site-key)",
				id, r ? r->n : 0);
		return false;
	}
	ERR_clear_error();
	ctx = EVP_MD_CTX_new();
	v = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->key) == 1 ?
		EVP_DigestVerify(ctx, dec, SIG_LEN, (const unsigned char *) buf, p) : -1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (v != 1)
	{
		sms_fmt_error(err, errlen, "its signature does not verify with site key %s: the file was changed after the site signed it",
				id);
		return false;
	}
	*signed_len = p;
	return true;
}
