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
	SmsStepFunction step;		/* NULL: not built yet, not started */
} SmsComponent;

extern const SmsComponent sms_components[SMS_NUM_COMPONENTS];

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

/* GUCs (defined in smsdist.c, registered in module.c) */
extern char *sms_database;
extern char *sms_site_code;
extern int	sms_poll_interval;	/* seconds */
extern char *sms_package_store_dir;
extern char *sms_source_roots;	/* smsdist.source_roots: see source_roots.c */
extern int	sms_compression_level;
extern int	sms_compression_workers;
extern int	sms_send_give_up_after;	/* seconds */
extern bool sms_send_while_compressing;
extern bool sms_extract_while_receiving;
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
/* status limits (GUCs registered in module.c, defined in status_manager.c) */
extern int	sms_status_text_max;	/* bytes */
extern int	sms_status_file_max;	/* bytes */
extern int	sms_client_time_window;	/* seconds */

/* site_key.c: the site's signing key (smsdist.signing_key) */
struct SmsSigner;
extern char *sms_signing_key;
extern const struct SmsSigner *sms_site_signer(void);
extern const char *sms_site_key_id(void);
extern void sms_sign_instruction(char **buf, size_t *len, const char *what);

/* smsdist.c */
extern void sms_shmem_install(void);
extern SmsComponentId sms_component_by_name(const char *name, bool missing_ok);
extern void sms_slot_set_state(SmsComponentId id, const char *fmt,...) pg_attribute_printf(2, 3);
extern void sms_slot_set_error(SmsComponentId id, const char *msg);

/* wakeup.c */
extern void sms_wake_at_commit(SmsComponentId id);
extern void sms_wake_now(SmsComponentId id);

/* smsdist.c: glibc keeps freed memory in this process (large buffers) */
extern void sms_keep_freed_memory(void);
#define SMS_WORKER_SEARCH_PATH "pg_catalog, smsdist, pg_temp"
extern void sms_set_safe_search_path(void);	/* every worker, after connecting */

/* smsdist.c: a helper process with a DSM segment (compressor, inflater, early extractor) */
struct BackgroundWorkerHandle;
extern bool sms_start_helper(const char *function, const char *name, uint32 dsm_handle,
							 Oid dboid, struct BackgroundWorkerHandle **handle);

/* worker.c, supervisor.c */
extern PGDLLEXPORT void smsdist_supervisor_main(Datum arg);
extern PGDLLEXPORT void smsdist_component_main(Datum arg);
extern const char *sms_step_note;	/* a step's own state for worker_status() */
extern void sms_step_commit(void);
struct LOCKTAG;
extern void sms_maintenance_locktag(struct LOCKTAG *tag);
extern MemoryContext sms_step_context;	/* lives across sms_step_commit() */

/* despooler.c, sender.c */
extern TimestampTz sms_despooler_step(void);
extern TimestampTz sms_sender_step(void);
extern TimestampTz sms_replicate_advertisements(void);	/* replication_manager.c */
extern TimestampTz sms_push_job_control(void);	/* job_control.c */
extern TimestampTz sms_collection_evaluator_step(void);
extern TimestampTz sms_offer_manager_step(void);
extern TimestampTz sms_inbox_manager_step(void);
extern TimestampTz sms_status_manager_step(void);	/* status_manager.c */

/* pcm_writer.c: the Run phase, run by the Despooler; true if it did a batch */
extern bool sms_pcm_write_queued(void);
/* the site server's directory for instruction files (step memory) */
extern char *sms_site_server_dir(void);
/* machine_policies is written by one transaction at a time (pcm_writer.c) */
extern void sms_lock_machine_policies(void);

/* query_rule.c: a collection query rule as a SQL condition over alias r */
extern char *sms_compile_query_rule(const char *rule);
extern bool sms_test_corrupt_chunk;
extern int	sms_test_compress_delay_ms;
extern void sms_register_supervisor(void);
extern void sms_install_utility_hook(void);

/* scheduler.c */
extern TimestampTz sms_scheduler_step(void);

/* package_builder.c */
struct BackgroundWorkerHandle;
extern bool sms_start_package_builder(Oid dboid, const char *package_id, int source_version,
									  struct BackgroundWorkerHandle **handle);
extern PGDLLEXPORT void smsdist_package_builder_main(Datum arg);
extern bool sms_build_small_package_here(const char *package_id, int version);

/* status.c: status messages (the operator-visible log) */
typedef enum SmsSeverity
{
	SMS_INFO,
	SMS_WARNING,
	SMS_ERROR
} SmsSeverity;

typedef struct SmsStatusRefs
{
	const char *job_id;
	const char *package_id;
	const char *advert_id;
	const char *machine;		/* SMS ID of a system, when there is one */
	const char *site_code;		/* defaults to smsdist.site_code */
} SmsStatusRefs;

extern void sms_status_message(SmsComponentId component, SmsSeverity severity,
							   int message_id, const SmsStatusRefs *refs,
							   const char *fmt,...) pg_attribute_printf(5, 6);

/* source_roots.c: package sources only from directories a superuser allowed */
extern void sms_check_source_directory(const char *source_dir, int dirfd);

/* validate.c: one definition of every name and path rule */
extern bool sms_valid_site_code(const char *s, bool raise);
extern bool sms_valid_sms_id(const char *s, bool raise);
extern bool sms_valid_object_name(const char *s, const char *what, bool raise);
extern bool sms_valid_netbios_name(const char *s, const char *what, bool raise);
extern bool sms_valid_server_path(const char *s, const char *what, bool raise);

/*
 * A package file sent while it is written (package_builder.c, sender.c,
 * receiver.c): the builder names it <stem>.tar.gz.<stream ID>.tmp, the
 * stream ID being SMS_STREAM_ID_LEN random lower-case hex digits.
 */
#define SMS_STREAM_ID_LEN	16
extern bool sms_valid_stream_id(const char *s);

/* Status message IDs (documented in docs/status-messages.md). */
#define SMS_MSG_COMPONENT_STARTED		500
#define SMS_MSG_COMPONENT_ERROR			501
#define SMS_MSG_JOB_ACTIVATED			3000
#define SMS_MSG_JOB_NO_TARGETS			3001
#define SMS_MSG_JOB_EXPIRED				3002
#define SMS_MSG_PACKAGE_COMPRESSED		3100
#define SMS_MSG_PACKAGE_FAILED			3101
#define SMS_MSG_DISTRIBUTED				3200
#define SMS_MSG_DISTRIBUTE_FAILED		3201
#define SMS_MSG_PACKAGE_CORRUPT			3202
#define SMS_MSG_NEEDS_FULL_PACKAGE		3203
#define SMS_MSG_ALREADY_PUBLISHED		3204
#define SMS_MSG_JOB_FOLLOWS_VERSION		3205
#define SMS_MSG_JOB_CONTENT_GONE		3206
#define SMS_MSG_SEND_FAILED				3301
#define SMS_MSG_SENT					3302
#define SMS_MSG_RESENDING_FULL			3303
#define SMS_MSG_REPORT_REFUSED			3304
#define SMS_MSG_ADVERT_SENT				3310
#define SMS_MSG_ADVERT_SEND_FAILED		3311
#define SMS_MSG_JOB_CONTROL_SENT		3320
#define SMS_MSG_JOB_CONTROL_FAILED		3321
#define SMS_MSG_JOB_CONTROL_TAKEN		3322	/* (written by receive_job_state) */

/*
 * What a distribute row's detail says while its site waits for the full
 * package because a delta could not be applied there (despooler.c); the
 * parent's Sender looks for it in distribution_report (sender.c).
 */
#define SMS_NEEDS_FULL_PACKAGE			"needs the full package"

#endif							/* SMSDIST_H */
