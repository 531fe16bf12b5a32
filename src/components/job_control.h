/*-------------------------------------------------------------------------
 *
 * job_control.h
 *	  Job control across the hierarchy: pushes cancelled and expired jobs
 *	  to the child sites that hold copies; run by the Sender.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_JOB_CONTROL_H
#define SMSDIST_JOB_CONTROL_H

#include "smsdist.h"

extern TimestampTz sms_push_job_control(void);

#endif							/* SMSDIST_JOB_CONTROL_H */
