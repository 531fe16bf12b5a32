/*-------------------------------------------------------------------------
 *
 * kept_plan.h
 *	  Statements a process runs again and again, planned once: SPI plans
 *	  kept for the life of the process (SPI_keepplan), found by the text
 *	  of the statement.
 *
 *	kept plan	a statement prepared with SPI_prepare() and kept; the plan
 *				cache plans it for its first calls with their values and
 *				may then keep one generic plan, and plans it again when a
 *				table, function or setting it depends on changes.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_KEPT_PLAN_H
#define SMSDIST_KEPT_PLAN_H

#include "postgres.h"

/*
 * SPI_execute_with_args() with the plan kept.  sql must be a string
 * constant of the caller (its address is its identity); a statement whose
 * best plan depends on the size of an array argument must not come here
 * with arrays of every size (see pcm_writer.c).
 */
extern int	sms_execute_kept(const char *sql, int nargs, Oid *argtypes, Datum *values,
							 const char *nulls, bool read_only, long count);

/* The same, always with the generic plan: for a statement whose plan is
 * the same for every value (an array of a few jobs, say), which the plan
 * cache would otherwise plan again at each call when a plan for the
 * values looks cheaper. */
extern int	sms_execute_kept_generic(const char *sql, int nargs, Oid *argtypes, Datum *values,
									 const char *nulls, bool read_only, long count);

/*
 * For a statement over a set of nitems items (an array argument): one
 * generic plan kept (sms_execute_kept_generic) for at most SMS_FEW_ITEMS,
 * planned for its values at each call for more, where a plan made for a
 * few would be wrong.  Generic, because the plan cache would otherwise
 * plan at every call: a generic plan is costed for an array of unknown
 * size (100 elements), a custom one for the few it gets, so the custom
 * plan always looks cheaper.
 */
#define SMS_FEW_ITEMS	16
extern int	sms_execute_for_items(uint64 nitems, const char *sql, int nargs, Oid *argtypes,
								  Datum *values, const char *nulls, bool read_only, long count);

/* SPI_execute() of a statement without arguments, with the plan kept. */
extern int	sms_execute_kept_noargs(const char *sql, bool read_only, long count);

#endif							/* SMSDIST_KEPT_PLAN_H */
