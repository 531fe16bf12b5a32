/*-------------------------------------------------------------------------
 *
 * target_trigger.c
 *	  The trigger target_changed of job_target_status and
 *	  advertisement_target_status.
 *
 * Terms:
 *	target row	a row of job_target_status (a job's machine) or of
 *				advertisement_target_status (an advertisement's machine).
 *	change		a target row whose state, detail or exit code is no longer
 *				what it was (IS DISTINCT FROM).  The trigger's WHEN clause
 *				keeps other updates from calling this function at all.
 *	owner		the job or advertisement the row belongs to; one received
 *				from a parent site has a source_site, and then the parent
 *				must hear of every change (report_pending).
 *
 * On a change the row is stamped (updated_at), marked for the parent when
 * the owner came from one, and a change of state is announced on the
 * channel smsdist_targets with the JSON payload docs/targets.md describes.
 *
 * Written in C because a child's report updates up to 20,000 rows in one
 * statement: the PL/pgSQL version paid a function call with its own
 * search_path, a query for the owner and a JSON build for every row, about
 * half of the statement's time.  Here the owner's answer is kept for the
 * rest of the statement (the trigger's call context lives as long as the
 * statement), so a report about one job asks once.  A job's or an
 * advertisement's source_site is set when it is received and never
 * changes.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

/* the owner's answer kept for one statement: the last owner asked about */
typedef struct TargetTriggerCache
{
	bool		is_job;
	int			id_att;			/* job_id or advert_id */
	int			sms_id_att;
	int			site_att;
	int			state_att;
	int			detail_att;
	int			exit_code_att;
	int			updated_at_att;
	int			report_pending_att;
	Oid			state_out;		/* the state enum's output function */
	char	   *last_id;		/* NULL: nothing asked yet */
	bool		last_pending;
} TargetTriggerCache;

/* the owner queries, planned once per backend */
static SPIPlanPtr job_plan = NULL;
static SPIPlanPtr advert_plan = NULL;

static int
column_of(TupleDesc tupdesc, const char *name)
{
	int			att = SPI_fnumber(tupdesc, name);

	if (att <= 0)
		elog(ERROR, "smsdist target_changed: the table has no column \"%s\"", name);
	return att;
}

static TargetTriggerCache *
trigger_cache(FunctionCallInfo fcinfo, Relation rel)
{
	TargetTriggerCache *c = (TargetTriggerCache *) fcinfo->flinfo->fn_extra;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			typoutput;
	bool		varlena;

	if (c != NULL)
		return c;
	c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(TargetTriggerCache));
	c->is_job = strcmp(RelationGetRelationName(rel), "job_target_status") == 0;
	c->id_att = column_of(tupdesc, c->is_job ? "job_id" : "advert_id");
	c->sms_id_att = column_of(tupdesc, "sms_id");
	c->site_att = column_of(tupdesc, "site_code");
	c->state_att = column_of(tupdesc, "state");
	c->detail_att = column_of(tupdesc, "detail");
	c->exit_code_att = column_of(tupdesc, "exit_code");
	c->updated_at_att = column_of(tupdesc, "updated_at");
	c->report_pending_att = column_of(tupdesc, "report_pending");
	if (TupleDescAttr(tupdesc, c->updated_at_att - 1)->atttypid != TIMESTAMPTZOID ||
		TupleDescAttr(tupdesc, c->report_pending_att - 1)->atttypid != BOOLOID ||
		TupleDescAttr(tupdesc, c->exit_code_att - 1)->atttypid != INT4OID)
		elog(ERROR, "smsdist target_changed: unexpected column types in \"%s\"",
			 RelationGetRelationName(rel));
	getTypeOutputInfo(TupleDescAttr(tupdesc, c->state_att - 1)->atttypid, &typoutput, &varlena);
	c->state_out = typoutput;
	fcinfo->flinfo->fn_extra = c;
	return c;
}

/* Two values of a column, NULL equal to NULL (IS NOT DISTINCT FROM). */
static bool
same_value(HeapTuple a, HeapTuple b, TupleDesc tupdesc, int att, bool is_text)
{
	bool		null_a,
				null_b;
	Datum		da = heap_getattr(a, att, tupdesc, &null_a);
	Datum		db = heap_getattr(b, att, tupdesc, &null_b);

	if (null_a || null_b)
		return null_a == null_b;
	if (is_text)
	{
		/* detail: the default collation is deterministic, equal is bytewise */
		text	   *ta = DatumGetTextPP(da);
		text	   *tb = DatumGetTextPP(db);

		return VARSIZE_ANY_EXHDR(ta) == VARSIZE_ANY_EXHDR(tb) &&
			memcmp(VARDATA_ANY(ta), VARDATA_ANY(tb), VARSIZE_ANY_EXHDR(ta)) == 0;
	}
	/* state (an enum: its OID) and exit_code (int4) are passed by value */
	return da == db;
}

/* Does the owner come from a parent site?  Asked once per owner in a row. */
static bool
owner_reports(TargetTriggerCache *c, FunctionCallInfo fcinfo, Datum id)
{
	char	   *id_str;
	SPIPlanPtr *plan = c->is_job ? &job_plan : &advert_plan;
	Oid			argtypes[1] = {TEXTOID};
	bool		pending,
				isnull;

	id_str = TextDatumGetCString(id);
	if (c->last_id != NULL && strcmp(c->last_id, id_str) == 0)
		return c->last_pending;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "smsdist target_changed: SPI_connect failed");
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(c->is_job
								   ? "SELECT EXISTS (SELECT 1 FROM smsdist.jobs j"
								   "  WHERE j.job_id OPERATOR(pg_catalog.=) $1"
								   "    AND j.source_site IS NOT NULL)"
								   : "SELECT EXISTS (SELECT 1 FROM smsdist.advertisements a"
								   "  WHERE a.advert_id OPERATOR(pg_catalog.=) $1"
								   "    AND a.source_site IS NOT NULL)",
								   1, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "smsdist target_changed: preparing the owner query failed");
		*plan = p;
	}
	/* not read-only: a snapshot of its own, as the PL/pgSQL version had */
	if (SPI_execute_plan(*plan, &id, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist target_changed: the owner query failed");
	pending = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	if (c->last_id != NULL)
		pfree(c->last_id);
	c->last_id = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, id_str);
	c->last_pending = pending;
	return pending;
}

/* "key" : value, as json_build_object() writes a text value or NULL */
static void
json_member(StringInfo buf, const char *key, const char *value)
{
	if (buf->len > 1)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, " : ");
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

static char *
text_or_null(HeapTuple tup, TupleDesc tupdesc, int att, Oid out)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, att, tupdesc, &isnull);

	if (isnull)
		return NULL;
	return OidIsValid(out) ? OidOutputFunctionCall(out, d) : TextDatumGetCString(d);
}

/* One smsdist_targets notification: the row's state changed. */
static void
announce(TargetTriggerCache *c, HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_member(&buf, "kind", c->is_job ? "job" : "advertisement");
	json_member(&buf, "id", text_or_null(newtup, tupdesc, c->id_att, InvalidOid));
	json_member(&buf, "sms_id", text_or_null(newtup, tupdesc, c->sms_id_att, InvalidOid));
	json_member(&buf, "site", text_or_null(newtup, tupdesc, c->site_att, InvalidOid));
	json_member(&buf, "state", text_or_null(newtup, tupdesc, c->state_att, c->state_out));
	json_member(&buf, "from", text_or_null(oldtup, tupdesc, c->state_att, c->state_out));
	appendStringInfoChar(&buf, '}');
	Async_Notify("smsdist_targets", buf.data);
	pfree(buf.data);
}

PG_FUNCTION_INFO_V1(smsdist_target_changed);
Datum
smsdist_target_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TargetTriggerCache *c;
	TupleDesc	tupdesc;
	HeapTuple	oldtup,
				newtup;
	int			cols[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};
	Datum		id;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "smsdist target_changed: must be a BEFORE UPDATE trigger FOR EACH ROW");
	c = trigger_cache(fcinfo, trigdata->tg_relation);
	tupdesc = RelationGetDescr(trigdata->tg_relation);
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;

	if (same_value(oldtup, newtup, tupdesc, c->state_att, false) &&
		same_value(oldtup, newtup, tupdesc, c->detail_att, true) &&
		same_value(oldtup, newtup, tupdesc, c->exit_code_att, false))
		return PointerGetDatum(newtup);

	cols[0] = c->updated_at_att;
	values[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	cols[1] = c->report_pending_att;
	id = heap_getattr(newtup, c->id_att, tupdesc, &isnull);
	values[1] = BoolGetDatum(!isnull && owner_reports(c, fcinfo, id));
	if (!same_value(oldtup, newtup, tupdesc, c->state_att, false))
		announce(c, oldtup, newtup, tupdesc);
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, tupdesc, 2, cols, values, nulls));
}
