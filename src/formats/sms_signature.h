/*-------------------------------------------------------------------------
 *
 * sms_signature.h
 *	  Signed instruction files: the site signs every file it writes for
 *	  workstations, the client agent verifies each one before it reads it.
 *
 * Like sms_formats.h, plain C99 + POSIX over OpenSSL's libcrypto (no
 * PostgreSQL header): compiled into the extension (the writers) and into
 * the client agent (the reader), so the two sides cannot drift.  Memory
 * comes from malloc; functions that can fail return false (or NULL) and
 * write a one-line message into err[errlen]; nothing aborts or exits.
 *
 * The form (docs/formats.md, "Signatures"): a signed file is the bytes of
 * the document, then an empty line, then as its last three lines
 *
 *		[signature]
 *		key_id=<16 lower-case hex digits>
 *		ed25519=<88 characters of base64>
 *
 * The Ed25519 signature covers every byte before the "[signature]" line
 * (the empty line included).  key_id is the first 16 hex digits of the
 * SHA-256 of the signing key's raw 32-byte public key: it names the key,
 * it proves nothing (the signature does).  The section's syntax is the
 * common layer's, so an older reader that does not verify ignores it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_SIGNATURE_H
#define SMS_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#define SMS_SIG_SECTION			"signature"
#define SMS_SIG_KEY_ID_LEN		16	/* hex digits */
#define SMS_SIG_B64_LEN			88	/* base64 of the 64-byte signature */
/* "[signature]\n" "key_id=" id "\n" "ed25519=" b64 "\n" */
#define SMS_SIG_TRAILER_LEN		(12 + 7 + SMS_SIG_KEY_ID_LEN + 1 + 8 + SMS_SIG_B64_LEN + 1)
#define SMS_SIG_MAX_KEYS		64	/* public keys an agent trusts at once */

/* A private key that signs (the site's). */
typedef struct SmsSigner SmsSigner;

/* The public keys that a reader accepts (an agent's --site-key files). */
typedef struct SmsSigKeyring SmsSigKeyring;

/*
 * Make path hold a new Ed25519 private key (PEM, PKCS#8, mode 0600) when
 * it does not exist: written to a temporary name beside it, fsynced, then
 * linked to path (so that of two processes creating it at once, one key
 * wins and neither is overwritten) and the directory fsynced.  *created
 * says whether this call made it.  An existing file is left alone.
 */
extern bool sms_sig_create_key(const char *path, bool *created, char *err, size_t errlen);

/*
 * Load an Ed25519 private key from a PEM file.  Refuses anything but a
 * regular file, a file that group or others may access (it must be 0600
 * or stricter), and any other kind of key.
 */
extern SmsSigner *sms_sig_signer_load(const char *path, char *err, size_t errlen);
/* The same from PEM text in memory (tests). */
extern SmsSigner *sms_sig_signer_from_pem(const char *pem, size_t len, char *err, size_t errlen);
extern void sms_sig_signer_free(SmsSigner *s);
/* Its key ID (SMS_SIG_KEY_ID_LEN hex digits). */
extern const char *sms_sig_signer_key_id(const SmsSigner *s);
/* Its public key as PEM (SubjectPublicKeyInfo), malloc'd and NUL-terminated. */
extern char *sms_sig_signer_public_pem(const SmsSigner *s, char *err, size_t errlen);

/*
 * Sign a document: *buf (malloc'd, *len bytes, ending with LF, as the
 * *_to_text functions make it) grows by an empty line and the [signature]
 * section.  Deterministic: the same bytes and key give the same file.
 */
extern bool sms_sig_append(const SmsSigner *s, char **buf, size_t *len, char *err, size_t errlen);

extern SmsSigKeyring *sms_sig_keyring_new(void);
extern void sms_sig_keyring_free(SmsSigKeyring *r);
/*
 * Add every public key of a PEM text (one or more "PUBLIC KEY" blocks) or
 * of a file.  what names the source in messages.  A file must be a regular
 * file that group and others cannot write: whoever can change it decides
 * what this machine runs.  Every key must be
 * Ed25519; a text without any key is refused.  A key already held is not
 * added twice.
 */
extern bool sms_sig_keyring_add_pem(SmsSigKeyring *r, const char *pem, size_t len, const char *what,
									char *err, size_t errlen);
extern bool sms_sig_keyring_load(SmsSigKeyring *r, const char *path, char *err, size_t errlen);
extern size_t sms_sig_keyring_count(const SmsSigKeyring *r);
/* The i-th key's ID, for messages. */
extern const char *sms_sig_keyring_key_id(const SmsSigKeyring *r, size_t i);

/*
 * Verify a signed file: true if it ends with a well-formed [signature]
 * section whose signature verifies with one of the ring's keys; then
 * *signed_len is the number of bytes it covers, the document to parse.
 * On failure err says why: not signed, a malformed or truncated section,
 * text after it, a key this reader does not trust, or a signature that
 * does not verify (the file was changed after it was signed).
 */
extern bool sms_sig_verify(const SmsSigKeyring *r, const char *buf, size_t len, size_t *signed_len,
						   char *err, size_t errlen);

#endif							/* SMS_SIGNATURE_H */
