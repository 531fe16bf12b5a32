/*-------------------------------------------------------------------------
 *
 * module.c
 *	  Library entry point: _PG_init registers the settings, reserves the
 *	  shared state, installs the utility hook and registers the supervisor;
 *	  smsdist.wake() asks a component to look for work.
 *
 * The library must be loaded through shared_preload_libraries: its workers
 * are started by the postmaster and its wake-up slots live in shared memory
 * that can only be reserved at server start.  Loading it any other way (for
 * example by CREATE EXTENSION in a server that does not preload it) is an
 * error that says how to fix it.
 *
 * This file stands above every layer of src/: it registers each
 * component's step function with the ground floor (src/core), so that the
 * core names nothing above it; nothing includes or calls this file.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "site_key.h"
#include "wakeup.h"

#include "collection_evaluator.h"
#include "despooler.h"
#include "inbox_manager.h"
#include "offer_manager.h"
#include "scheduler.h"
#include "sender.h"
#include "status_manager.h"
#include "supervisor.h"
#include "validate.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static bool
check_site_code_guc(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;			/* unset: workers wait and say so */
	if (!sms_valid_site_code(*newval, false))
	{
		GUC_check_errdetail("A site code is exactly three characters, each an upper-case letter A-Z or a digit 0-9.");
		return false;
	}
	return true;
}

static bool
check_package_store(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!sms_valid_server_path(*newval, "package store", false))
	{
		GUC_check_errdetail("The package store must be an absolute, canonical path (no \".\" or \"..\" components, no trailing /).");
		return false;
	}
	return true;
}

/* The site: its database, code, safety-net poll and package store. */
static void
define_site_settings(void)
{
	DefineCustomStringVariable("smsdist.database",
							   "Database in which the smsdist workers run (the site database).",
							   NULL,
							   &sms_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("smsdist.site_code",
							   "Three-character code of the site this server is.",
							   "Used to name new packages, jobs and collections and to tell local from remote targets.",
							   &sms_site_code,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_site_code_guc, NULL, NULL);

	DefineCustomIntVariable("smsdist.poll_interval",
							"Safety-net interval at which each worker looks for work even if nobody woke it.",
							"Commits wake the workers at once; this only bounds the delay after a missed wake-up.",
							&sms_poll_interval,
							60,
							1,
							86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("smsdist.package_store",
							   "Directory for compressed package files.",
							   "Empty: pg_smsdist/packages in the data directory.",
							   &sms_package_store_dir,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_package_store, NULL, NULL);
}

static const struct config_enum_entry compression_methods[] = {
	{"libdeflate", SMS_COMPRESSION_LIBDEFLATE, false},
	{"isal", SMS_COMPRESSION_ISAL, false},
	{"zlib", SMS_COMPRESSION_ZLIB, false},
	{NULL, 0, false}
};

/* How packages are compressed, sent and extracted. */
static void
define_pipeline_settings(void)
{
	DefineCustomIntVariable("smsdist.compression_level",
							"zlib level at which packages are compressed (1 fastest, 9 smallest).",
							NULL,
							&sms_compression_level,
							6,
							1,
							9,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("smsdist.compression_method",
							 "Library that compresses packages: libdeflate, isal (fastest, larger files) or zlib.",
							 "libdeflate compresses each 4 MB member whole at smsdist.compression_level; isal (ISA-L) at its level 1 whatever the level, for links where bytes are cheap; zlib streams, as before version 0.9.",
							 &sms_compression_method,
							 SMS_COMPRESSION_LIBDEFLATE,
							 compression_methods,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.compression_workers",
							"Compressor workers that help a package builder compress one package.",
							"They start compressing while the builder is still writing the tar stream; once it is written the builder compresses too.  Each needs a free slot in max_worker_processes; without one the builder does the work alone.  0: the builder alone.",
							&sms_compression_workers,
							2,
							0,
							64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.pcm_helpers",
							"Helper processes that write PCM files beside the Despooler while many are queued.",
							"A job for many machines queues their files; while the Despooler's batches come out full, up to this many helpers take batches of the same queue, each on its own core.  Each needs a free slot in max_worker_processes; without one the Despooler writes alone.  0: the Despooler alone.",
							&sms_pcm_helpers,
							1,
							0,
							8,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("smsdist.source_roots",
							   "Directories that package sources must lie under (comma-separated).",
							   "Set by a superuser in postgresql.conf; empty: no package can be built.  "
							   "Symbolic links in the roots are resolved; the data directory and the "
							   "configuration files are refused even below a root.",
							   &sms_source_roots,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT | GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.send_give_up_after",
							"How long the Sender keeps retrying a transfer before the transfer and its job fail.",
							"Counted from the transfer's first attempt; meanwhile the rows are 'retrying' with the reason.",
							&sms_send_give_up_after,
							3 * 24 * 3600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_concurrent_sends",
							"How many transfers to child sites the Sender runs at once.",
							"Each runs in a send helper, a background worker of its own (max_worker_processes); 1 sends to one site at a time.",
							&sms_max_concurrent_sends,
							4,
							1,
							64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_concurrent_sends_per_site",
							"How many transfers to one child site (of different jobs) the Sender runs at once.",
							"Within smsdist.max_concurrent_sends.",
							&sms_max_concurrent_sends_per_site,
							1,
							1,
							64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.disk_full_give_up_after",
							"How long a full disk may hold up a build, a distribution or a transfer before its job fails.",
							"Counted from the first time the disk was found full; meanwhile the item waits, "
							"retrying with back-off, with the disk and its free bytes in its reason.",
							&sms_disk_full_give_up_after,
							24 * 3600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.send_while_compressing",
							 "Send a package to a child site while it is being compressed.",
							 "Only to a child site whose sites hold no version of the package (no delta is possible).",
							 &sms_send_while_compressing,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.store_incompressible",
							 "Store data that is as good as random instead of compressing it.",
							 "Each 64 kB of a package whose bytes are near-random (already compressed) is stored in the gzip stream; off compresses everything at smsdist.compression_level.",
							 &sms_store_incompressible,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.extract_while_receiving",
							 "Extract a package sent while the parent site compresses it as it arrives.",
							 "The Despooler starts an early extractor for the part file; the job then only publishes the tree.",
							 &sms_extract_while_receiving,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.content_validation_interval",
							"How often the Despooler checks each published package tree against its manifest.",
							"A tree whose last check (or publication) is this old is checked between distributions, and re-published from the package file if it differs.  0: only when validate_content() or a machine's 10004 asks.",
							&sms_content_validation_interval,
							7 * 86400,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* What machines may say, the test hooks, and the signing key. */
static void
define_status_settings(void)
{
	/* Status from machines: limits on what the Status Manager takes in */
	DefineCustomIntVariable("smsdist.status_text_max",
							"The longest status message text taken in from a machine.",
							"A status file or client_status() call with a longer text is refused with the reason.",
							&sms_status_text_max,
							16 * 1024,
							256,
							1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.status_file_max",
							"The largest status file the Status Manager reads from a CAP's status inbox.",
							"Checked before the file is read; a larger file is kept as <name>.bad with the reason.",
							&sms_status_file_max,
							64 * 1024,
							4096,
							64 * 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.client_time_window",
							"How far a machine's time in a status message may be from the site's clock.",
							"Either way; a status message with a client time outside the window is refused with the reason.",
							&sms_client_time_window,
							30 * 86400,
							60,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	/*
	 * Read by smsdist.prune_status_messages() (the administrator's or
	 * pg_cron's call), not by a worker: the Status Manager never deletes.
	 */
	DefineCustomIntVariable("smsdist.status_retention",
							"How long status messages are kept before prune_status_messages() may remove them.",
							"0 keeps them for ever. Messages an unfinished job or advertisement still needs are kept whatever their age.",
							&sms_status_retention,
							90 * 86400,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.test_corrupt_next_chunk",
							 "For tests: the Sender flips one byte of the next chunk it sends.",
							 "The receiving site must refuse the chunk and the Sender send it again.",
							 &sms_test_corrupt_chunk,
							 false,
							 PGC_SIGHUP,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.test_compress_delay_ms",
							"For tests: every compression chunk takes this much longer.",
							"Makes a build slow enough to watch what happens while it runs.",
							&sms_test_compress_delay_ms,
							0,
							0,
							60000,
							PGC_SIGHUP,
							GUC_NOT_IN_SAMPLE | GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* signed instruction files (site_key.c) */
	DefineCustomStringVariable("smsdist.signing_key",
							   "The site's Ed25519 private key (PEM), which signs every instruction file for workstations.",
							   "Relative to the data directory unless absolute; created with mode 0600 when it does not exist.  Agents verify the signatures with the public key from smsdist.site_public_key().",
							   &sms_signing_key,
							   "smsdist_signing_key.pem",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
}

/* What one package may hold. */
static void
define_package_limits(void)
{
	/*
	 * Limits on packages (package_archive.c, package_extract.c): what one
	 * package may hold, checked at build and at extraction before anything
	 * is written.  SUSET: a superuser may raise them for one session's
	 * build_tar() or extract_package(); the workers read the server's.
	 */
	DefineCustomIntVariable("smsdist.max_package_files",
							"Most files and directories one package may hold.",
							"Checked when a package is built and when a package file is extracted.",
							&sms_max_package_files,
							100000,
							1,
							INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_package_size",
							"Most bytes the files of one package may hold together.",
							"Checked when a package is built and, for each file, before it is extracted.",
							&sms_max_package_size_mb,
							65536,
							1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_path_depth",
							"Most directory levels of a path in a package.",
							"A file at the top of the package has depth 1.",
							&sms_max_path_depth,
							64,
							1,
							SMS_PATH_LENGTH_CEILING / 2,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_path_length",
							"Longest relative path in a package, in bytes.",
							"A directory's path counts its trailing slash.",
							&sms_max_path_length,
							1024,
							16,
							SMS_PATH_LENGTH_CEILING,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_manifest_size",
							"Largest manifest a package may have.",
							"The manifest is read into memory; a larger one is refused before it is read.",
							&sms_max_manifest_size_kb,
							65536,
							1,
							(int) (MaxAllocSize / 1024) - 1,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("smsdist must be loaded via shared_preload_libraries"),
				 errhint("Add smsdist to shared_preload_libraries in postgresql.conf and restart the server.")));

	/*
	 * The supervisor, seven components, a package builder and its compressor,
	 * and whatever parallel query uses: with fewer slots a component or a
	 * builder does not start, and the symptom is a slow site, not an error.
	 */
	if (max_worker_processes < 12)
		ereport(WARNING,
				(errmsg("max_worker_processes is %d: smsdist needs at least 12 background worker slots",
						max_worker_processes),
				 errdetail("The supervisor, its seven components and a package builder with a compressor use ten; parallel query takes from the same pool."),
				 errhint("Set max_worker_processes = 16 in postgresql.conf and restart the server.")));

	define_site_settings();
	define_pipeline_settings();
	define_status_settings();
	define_package_limits();

	MarkGUCPrefixReserved("smsdist");

	sms_shmem_install();

	/* the components the supervisor starts, each by its step function */
	sms_register_component_step(SMS_SCHEDULER, sms_scheduler_step);
	sms_register_component_step(SMS_SENDER, sms_sender_step);
	sms_register_component_step(SMS_DESPOOLER, sms_despooler_step);
	sms_register_component_step(SMS_OFFER_MANAGER, sms_offer_manager_step);
	sms_register_component_step(SMS_INBOX_MANAGER, sms_inbox_manager_step);
	sms_register_component_step(SMS_COLLECTION_EVALUATOR, sms_collection_evaluator_step);
	sms_register_component_step(SMS_STATUS_MANAGER, sms_status_manager_step);

	sms_install_utility_hook();
	sms_register_supervisor();
}

/*
 * smsdist.wake(component text): ask a component to look for work when the
 * calling transaction commits (nothing happens if it rolls back).
 */
PG_FUNCTION_INFO_V1(smsdist_wake);
Datum
smsdist_wake(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	sms_wake_at_commit(sms_component_by_name(name, false));
	PG_RETURN_VOID();
}

