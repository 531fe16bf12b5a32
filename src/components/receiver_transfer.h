/*-------------------------------------------------------------------------
 *
 * receiver_transfer.h
 *	  The durable state of a package file on its way to this site: its row
 *	  of smsdist.package_transfers, its part file, and what this backend
 *	  wrote of it since the row last moved (the receiving session).
 *
 *	transfer	a row of smsdist.package_transfers: one package version on
 *				its way here (total size, SHA-256, bytes received so far,
 *				and the stream ID of a file the parent is still writing).
 *	part file	the bytes received so far (package_store.h).  It is never
 *				shorter than the row's bytes_received.
 *	session		what this backend wrote beyond the row: chunks are
 *				acknowledged once written and made durable (fsync, then the
 *				row) only now and then; see receiver_transfer.c.
 *	ready build	a 'ready' row of smsdist.package_builds whose file is there.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_RECEIVER_TRANSFER_H
#define SMSDIST_RECEIVER_TRANSFER_H

#include "sha256.h"
#include "validate.h"

#include <sys/types.h>

/* total_bytes -1 and sha256 "": a streamed file whose size is not known yet */
typedef struct TransferRow
{
	bool		found;
	int64		total_bytes;
	int64		bytes_received;
	char		sha256[SMS_SHA256_HEX_LEN + 1];
	char		stream_id[SMS_STREAM_ID_LEN + 1];	/* "" when not streamed */
} TransferRow;

/* The ready build of a version, if its file is there and is the one meant. */
typedef struct ReadyBuild
{
	bool		found;
	char	   *file_path;
	int64		bytes;
	char		sha256[SMS_SHA256_HEX_LEN + 1];
} ReadyBuild;

/* Rows (SPI connected) */
extern void receiver_execute_for_version(const char *sql, const char *package_id, int32 version,
										 int expected, const char *failed);
extern void receiver_lock_transfer(const char *package_id, int32 version);
extern TransferRow receiver_fetch_transfer(const char *package_id, int32 version);
extern void receiver_set_bytes_received(const char *package_id, int32 version, int64 bytes);
extern void receiver_set_stream_total(const char *package_id, int32 version,
									  int64 total_bytes, const char *sha256);
extern void receiver_delete_transfer(const char *package_id, int32 version, const char *what);
extern void receiver_reset_transfer(int fd, const char *path, const char *package_id,
									int32 version, int64 had, off_t file_size);
extern ReadyBuild receiver_fetch_ready_build(const char *package_id, int32 version);

/* The part file */
extern int	receiver_open_part_file(const char *store, const char *path, off_t *size);
extern void receiver_truncate_part_file(int fd, const char *path, off_t length);
extern void receiver_fsync_part_file(int fd, const char *path);
extern void receiver_write_part_file(int fd, const char *store, const char *path,
									 const char *bytes, int64 offset, int64 len,
									 int64 total_bytes);
extern void receiver_sha256_of_part_file(int fd, const char *path, char *hex, int64 *size);

/* The receiving session of this backend */
extern void receiver_forget_session(void);
extern int64 receiver_session_offset(const char *package_id, int32 version, int64 durable);
extern void receiver_session_wrote(const char *package_id, int32 version, int64 durable,
								   const char *bytes, int64 offset, int64 len);
extern bool receiver_session_sync_due(int64 done, int64 total_bytes);
extern void receiver_session_made_durable(int64 done);
extern bool receiver_session_file_hash(const char *package_id, int32 version, int64 total,
									   int fd, char *hex);

#endif							/* SMSDIST_RECEIVER_TRANSFER_H */
