/*-------------------------------------------------------------------------
 *
 * pcm_writer.h
 *	  The Run phase (run by the Despooler): writes the PCM files and
 *	  policies of the machines a job or advertisement now reaches.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PCM_WRITER_H
#define SMSDIST_PCM_WRITER_H

#include "smsdist.h"

/* write one batch of queued PCM files; true if it did a batch */
extern bool sms_pcm_write_queued(void);
/* a helper process that writes batches beside the Despooler */
extern PGDLLEXPORT void smsdist_pcm_helper_main(Datum arg);
/* machine_policies: the Offer Manager writes alone, the PCM writers together */
extern void sms_lock_machine_policies(bool exclusive);

#endif							/* SMSDIST_PCM_WRITER_H */
