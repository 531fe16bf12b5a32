/*-------------------------------------------------------------------------
 *
 * smsdist.h
 *	  Declarations shared by every part of the smsdist extension.
 *
 * Terms used throughout the code:
 *
 *	component	one SMS site service (Scheduler, Sender, Despooler, Offer
 *				Manager, Inbox Manager, Collection Evaluator, Status Manager).
 *				Each runs as one dynamic background worker in the site
 *				database (GUC smsdist.database).
 *	supervisor	the static background worker that starts, watches and
 *				restarts the component workers.  It connects to no database,
 *				so a wrong or missing database never puts it in a restart loop.
 *	wake-up		a request, made by a committing transaction, that a
 *				component look for work now.  It is a latch set from a commit
 *				callback (see wakeup.c); NOTIFY on the channel smsdist_<name>
 *				carries the same news to outside listeners.
 *	step		one pass of a component over its pending work, run inside one
 *				transaction with SPI connected (see worker.c).  It returns the
 *				time it next wants to run, so nobody polls every second.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_H
#define SMSDIST_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/palloc.h"

#ifndef SMSDIST_VERSION
#error "SMSDIST_VERSION must be defined by the Makefile"
#endif

#define SMSDIST_EXTENSION_NAME	"smsdist"
#define SMSDIST_SCHEMA_NAME		"smsdist"

/*
 * The components, in the order the supervisor starts them.  The wake-up
 * channel of each is "smsdist_" || name.  SMS_COMPONENT_SUPERVISOR is not a
 * database worker, but it can be woken the same way (CREATE EXTENSION does).
 */
typedef enum SmsComponentId
{
	SMS_SCHEDULER = 0,
	SMS_SENDER,
	SMS_DESPOOLER,
	SMS_OFFER_MANAGER,
	SMS_INBOX_MANAGER,
	SMS_COLLECTION_EVALUATOR,
	SMS_STATUS_MANAGER,
	SMS_SUPERVISOR,
	SMS_NUM_COMPONENTS
} SmsComponentId;

/*
 * One step of a component: called inside a transaction, SPI connected, an
 * active snapshot pushed.  Returns the time at which it wants to run again
 * even if nobody wakes it (DT_NOEND: only on wake-up or the safety-net poll;
 * a time at or before now: immediately, because work remains).
 */
typedef TimestampTz (*SmsStepFunction) (void);

typedef struct SmsComponent
{
	const char *name;			/* "scheduler": channel suffix, SQL name */
	const char *title;			/* "SMS Scheduler": for people */
	SmsStepFunction step;		/* set by _PG_init; NULL: not started */
} SmsComponent;

extern SmsComponent sms_components[SMS_NUM_COMPONENTS];
extern void sms_register_component_step(SmsComponentId id, SmsStepFunction step);

/* Shared-memory state of one component worker, for wake-ups and status. */
typedef struct SmsWorkerSlot
{
	slock_t		mutex;			/* protects everything but the atomics */
	pid_t		pid;			/* 0 when not running */
	Latch	   *latch;			/* the worker's latch while it runs */
	TimestampTz started_at;
	TimestampTz last_wake_at;	/* when a commit last asked for a wake-up */
	TimestampTz last_step_at;	/* when the last step began */
	TimestampTz next_step_at;	/* when it will run next without a wake-up */
	int			restarts;		/* started by the supervisor since boot, less one */
	char		state[96];		/* what it is doing, for worker_status() */
	char		last_error[256];
	pg_atomic_uint64 wake_requests; /* commits that asked to wake it */
	pg_atomic_uint64 steps;			/* steps run */
} SmsWorkerSlot;

typedef struct SmsSharedState
{
	SmsWorkerSlot slots[SMS_NUM_COMPONENTS];
	/* a database whose workers must stop: DROP/RENAME DATABASE is running */
	slock_t		release_mutex;
	Oid			released_db;
	/*
	 * Nonzero while the Sender follows a build to send it as it is written:
	 * only then does a builder wake it after every compressed member (a
	 * Sender step for nothing, 50 times a build, costs the build CPU).
	 */
	pg_atomic_uint32 sender_follows_build;
} SmsSharedState;

extern SmsSharedState *sms_shared;

/*
 * smsdist.compression_method: the library that compresses each gzip member
 * of a package file (src/package/gzip_member.c, docs/packages.md).
 */
typedef enum SmsCompressionMethod
{
	SMS_COMPRESSION_LIBDEFLATE,	/* whole members, at smsdist.compression_level */
	SMS_COMPRESSION_ISAL,		/* ISA-L level 1: fastest, larger files */
	SMS_COMPRESSION_ZLIB		/* zlib streaming, as before 0.9 */
} SmsCompressionMethod;

/* GUCs (defined in smsdist.c, registered in module.c) */
extern char *sms_database;
extern char *sms_site_code;
extern int	sms_poll_interval;	/* seconds */
extern char *sms_package_store_dir;
extern char *sms_source_roots;	/* smsdist.source_roots: see source_roots.c */
extern int	sms_compression_level;
extern int	sms_compression_method; /* SmsCompressionMethod */
extern int	sms_compression_workers;
extern int	sms_pcm_helpers;
extern int	sms_send_give_up_after;	/* seconds */
/* transfers the Sender runs at once: in all, and to one child site */
extern int	sms_max_concurrent_sends;
extern int	sms_max_concurrent_sends_per_site;
extern int	sms_disk_full_give_up_after;	/* seconds */
extern bool sms_send_while_compressing;
extern bool sms_extract_while_receiving;
extern int	sms_content_validation_interval;	/* seconds; 0: off */
extern bool sms_store_incompressible;
/*
 * Limits on what one package may hold, checked at build (the operator's
 * source tree) and at extraction (a package file, whoever made it) before
 * anything is written (docs/packages.md).
 */
extern int	sms_max_package_files;	/* files and directories */
extern int	sms_max_package_size_mb;	/* bytes of all files, in MB */
extern int	sms_max_path_depth;		/* components of a relative path */
extern int	sms_max_path_length;	/* bytes of a relative path */
extern int	sms_max_manifest_size_kb;	/* bytes of the manifest, in kB */

/* The hard ceiling of smsdist.max_path_length (PATH_MAX on Linux). */
#define SMS_PATH_LENGTH_CEILING	4096
/* status limits */
extern int	sms_status_text_max;	/* bytes */
extern int	sms_status_file_max;	/* bytes */
extern int	sms_client_time_window;	/* seconds */
extern int	sms_status_retention;	/* seconds, 0: keep for ever */
/* test hooks (settings only the tests set) */
extern bool sms_test_corrupt_chunk;
extern int	sms_test_compress_delay_ms;

/* smsdist.c */
extern void sms_shmem_install(void);
extern SmsComponentId sms_component_by_name(const char *name, bool missing_ok);
extern void sms_slot_set_state(SmsComponentId id, const char *fmt,...) pg_attribute_printf(2, 3);
extern void sms_slot_set_error(SmsComponentId id, const char *msg);

/* smsdist.c: glibc keeps freed memory in this process (large buffers) */
extern void sms_keep_freed_memory(void);
#define SMS_WORKER_SEARCH_PATH "pg_catalog, smsdist, pg_temp"
extern void sms_set_safe_search_path(void);	/* every worker, after connecting */

/* smsdist.c: a helper process; its one argument is a DSM segment (compressor,
 * inflater, early extractor) or what its function makes of it (a PCM writer:
 * its place among smsdist.pcm_helpers) */
struct BackgroundWorkerHandle;
extern bool sms_start_helper(const char *function, const char *name, uint32 dsm_handle,
							 Oid dboid, struct BackgroundWorkerHandle **handle);

#endif							/* SMSDIST_H */
