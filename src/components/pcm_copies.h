/*-------------------------------------------------------------------------
 *
 * pcm_copies.h
 *	  The places of the PCM files (site server, logon servers) and the
 *	  copies written there, for the Run phase (pcm_writer.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PCM_COPIES_H
#define SMSDIST_PCM_COPIES_H

#include "smsdist.h"

#include "nodes/pg_list.h"
#include "utils/timestamp.h"

/* Where a batch's copies go (in sms_step_context) */
typedef struct PcmPlaces
{
	char	   *site_server;	/* .../mancfg.box/pcmdom.box */
	List	   *logon_servers;	/* .../pcins.box, each, but failing ones */
	List	   *all_logon_servers;	/* failing ones too: a removal is tried there */
	bool		all_or_error;	/* a logon server's copy that fails fails the
								 * batch (a helper's: the Despooler keeps the
								 * failing servers) */
} PcmPlaces;

/* the site server's directory for instruction files (step memory) */
extern char *sms_site_server_dir(void);
/* this site's places now, failing logon servers left out */
extern PcmPlaces sms_pcm_places(void);
/*
 * Logon servers left out after a failed write whose back-off is over: their
 * files are queued again; returns when the next is due (DT_NOEND: none).
 */
extern TimestampTz sms_pcm_retry_failing_servers(void);
/* is a logon server left out of the batches now? */
extern bool sms_pcm_servers_failing(void);

/* a batch: begin, place each machine's copies, flush (durable, renamed) */
extern void sms_pcm_begin_copies(void);
extern int	sms_pcm_place_copies(PcmPlaces *pl, const char *id, const char *domain,
								 const char *old_domain, const char *buf, size_t len);
extern void sms_pcm_flush_copies(void);
/* remove every copy of a machine's file (domain: the site server's) */
extern void sms_pcm_remove_copies(PcmPlaces *pl, const char *sms_id, const char *domain);
/* temporary copies a killed writer or a failed batch left, removed */
extern void sms_pcm_sweep_stale_copies(void);
/* ... at the next call, whatever this process did (another writer stopped) */
extern void sms_pcm_sweep_soon(void);

#endif							/* SMSDIST_PCM_COPIES_H */
