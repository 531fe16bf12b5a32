/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The component worker: the loop that runs a component's step in a
 *	  transaction and sleeps on its latch until woken or due.
 *
 *	step context	memory that lives for one turn of the loop, across
 *					sms_step_commit()
 *	step note		what the current step is doing, for worker_status()
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_WORKER_H
#define SMSDIST_WORKER_H

#include "smsdist.h"

extern PGDLLEXPORT void smsdist_component_main(Datum arg);
/* a helper process's loop: step in transactions until it returns false */
extern void sms_helper_loop(SmsComponentId component, bool (*step) (void),
							void (*cleanup) (void));
extern const char *sms_step_note;	/* a step's own state for worker_status() */
extern void sms_step_commit(void);
extern void sms_wait_on_latch(long timeout_ms);
struct LOCKTAG;
extern void sms_maintenance_locktag(struct LOCKTAG *tag);
extern MemoryContext sms_step_context;	/* lives across sms_step_commit() */

#endif							/* SMSDIST_WORKER_H */
