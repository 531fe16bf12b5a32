/*-------------------------------------------------------------------------
 *
 * supervisor.h
 *	  The supervisor: the static background worker that starts, watches
 *	  and restarts the component workers, and the utility hook that stops
 *	  them for DROP EXTENSION and DROP DATABASE.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SUPERVISOR_H
#define SMSDIST_SUPERVISOR_H

#include "smsdist.h"

extern PGDLLEXPORT void smsdist_supervisor_main(Datum arg);
extern void sms_register_supervisor(void);
extern void sms_install_utility_hook(void);

#endif							/* SMSDIST_SUPERVISOR_H */
