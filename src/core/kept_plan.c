/*-------------------------------------------------------------------------
 *
 * kept_plan.c
 *	  Statements a process runs again and again, planned once.
 *
 * The workers run the same few dozen statements at every step: the
 * Sender's look for work, the Despooler's claim, the reports to the parent
 * site.  Run with SPI_execute_with_args(), each is parsed and planned at
 * every call, and for these joins of several tables the planning took
 * longer than the execution: in a benchmark of 1 KB jobs, planning was 60 %
 * of the time both sites spent in SQL.  Here each statement is prepared
 * once per process and kept (SPI_keepplan); PostgreSQL's plan cache plans
 * its first five calls with their values, may then keep one generic plan
 * when that is no costlier, and plans again whenever something the plan
 * depends on changes (a table altered, a function replaced by ALTER
 * EXTENSION UPDATE, the search_path).
 *
 * A statement is found by the address of its text, a string constant of
 * the caller, and the text is compared as well: a caller that passed a
 * string it built would only make the entry be prepared again, never run
 * another statement's plan.  The number kept is bounded; past it,
 * statements are planned at each call as before.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"

#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "utils/memutils.h"

#define MAX_KEPT_PLANS	256
#define MAX_KEPT_ARGS	16

typedef struct KeptPlan
{
	const char *sql;			/* the caller's constant: the key */
	char	   *text;			/* a copy of it, checked on every hit */
	int			nargs;
	Oid			argtypes[MAX_KEPT_ARGS];
	int			options;		/* CURSOR_OPT_GENERIC_PLAN or 0 */
	SPIPlanPtr	plan;
} KeptPlan;

static KeptPlan kept[MAX_KEPT_PLANS];
static int	nkept = 0;

static bool
same_statement(const KeptPlan *k, const char *sql, int nargs, const Oid *argtypes, int options)
{
	if (k->nargs != nargs || k->options != options || strcmp(k->text, sql) != 0)
		return false;
	for (int i = 0; i < nargs; i++)
		if (k->argtypes[i] != argtypes[i])
			return false;
	return true;
}

/* Prepare sql and keep it in k (which may hold an older statement). */
static void
keep(KeptPlan *k, const char *sql, int nargs, Oid *argtypes, int options)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, options);

	if (plan == NULL)
		elog(ERROR, "smsdist: preparing a statement failed: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "smsdist: keeping a statement's plan failed");
	if (k->plan != NULL)
	{
		SPI_freeplan(k->plan);
		pfree(k->text);
	}
	k->sql = sql;
	k->text = MemoryContextStrdup(TopMemoryContext, sql);
	k->nargs = nargs;
	if (nargs > 0)
		memcpy(k->argtypes, argtypes, sizeof(Oid) * nargs);
	k->options = options;
	k->plan = plan;
}

static int
execute_kept(const char *sql, int nargs, Oid *argtypes, Datum *values,
			 const char *nulls, bool read_only, long count, int options)
{
	KeptPlan   *k = NULL;

	if (nargs > MAX_KEPT_ARGS)
		return SPI_execute_with_args(sql, nargs, argtypes, values, nulls, read_only, count);
	for (int i = 0; i < nkept; i++)
	{
		if (kept[i].sql == sql)
		{
			k = &kept[i];
			break;
		}
	}
	if (k == NULL)
	{
		if (nkept >= MAX_KEPT_PLANS)
			return SPI_execute_with_args(sql, nargs, argtypes, values, nulls, read_only, count);
		k = &kept[nkept];
		keep(k, sql, nargs, argtypes, options);
		nkept++;				/* only once it is whole */
	}
	else if (!same_statement(k, sql, nargs, argtypes, options))
		keep(k, sql, nargs, argtypes, options);
	return SPI_execute_plan(k->plan, values, nulls, read_only, count);
}

int
sms_execute_kept(const char *sql, int nargs, Oid *argtypes, Datum *values,
				 const char *nulls, bool read_only, long count)
{
	return execute_kept(sql, nargs, argtypes, values, nulls, read_only, count, 0);
}

int
sms_execute_kept_generic(const char *sql, int nargs, Oid *argtypes, Datum *values,
						 const char *nulls, bool read_only, long count)
{
	return execute_kept(sql, nargs, argtypes, values, nulls, read_only, count,
						CURSOR_OPT_GENERIC_PLAN);
}

int
sms_execute_for_items(uint64 nitems, const char *sql, int nargs, Oid *argtypes,
					  Datum *values, const char *nulls, bool read_only, long count)
{
	if (nitems > SMS_FEW_ITEMS)
		return SPI_execute_with_args(sql, nargs, argtypes, values, nulls, read_only, count);
	return execute_kept(sql, nargs, argtypes, values, nulls, read_only, count,
						CURSOR_OPT_GENERIC_PLAN);
}

int
sms_execute_kept_noargs(const char *sql, bool read_only, long count)
{
	return execute_kept(sql, 0, NULL, NULL, NULL, read_only, count, 0);
}
