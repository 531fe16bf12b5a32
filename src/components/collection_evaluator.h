/*-------------------------------------------------------------------------
 *
 * collection_evaluator.h
 *	  The Collection Evaluator: keeps collection members in step with
 *	  their rules.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_COLLECTION_EVALUATOR_H
#define SMSDIST_COLLECTION_EVALUATOR_H

#include "smsdist.h"

extern TimestampTz sms_collection_evaluator_step(void);

#endif							/* SMSDIST_COLLECTION_EVALUATOR_H */
