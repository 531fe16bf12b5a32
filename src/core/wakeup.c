/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Waking components when a transaction that changed their tables commits.
 *
 * SMS had the SQL Monitor write wake-up files into a component's inbox.
 * Here a trigger does two things with every change:
 *
 *	- NOTIFY on the channel smsdist_<component> with the row's ID as payload,
 *	  for psql sessions and client agents that LISTEN (PostgreSQL delivers it
 *	  at commit, and not at all on rollback);
 *	- marks the component in a per-backend "pending wake-up" mask.  A
 *	  transaction callback sets the latch of every marked component when the
 *	  transaction commits and clears the mask when it aborts.  This is needed
 *	  because PostgreSQL 15 does not allow LISTEN in a background worker.
 *
 * The commit callback runs after the commit is visible to other
 * transactions (XACT_EVENT_COMMIT is called after ProcArrayEndTransaction),
 * so a woken worker's next snapshot sees the new rows.
 *
 * Wake-ups are hints: a worker always finds its work by query, so a wake-up
 * lost to a crash, to PREPARE TRANSACTION, or to a worker that was not
 * running yet costs at most one smsdist.poll_interval.  A savepoint that is
 * rolled back may leave a spurious wake-up, which is harmless.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "wakeup.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

/* Components to wake when the current transaction commits (bit per id). */
static uint32 pending_wakeups = 0;
static bool xact_callback_registered = false;

/* Set the latch of a running component now. */
void
sms_wake_now(SmsComponentId id)
{
	SmsWorkerSlot *slot = &sms_shared->slots[id];
	Latch	   *latch;

	SpinLockAcquire(&slot->mutex);
	if (slot->pid == MyProcPid)
	{
		/* a worker's own commits: its step already knows what it did */
		SpinLockRelease(&slot->mutex);
		return;
	}
	latch = slot->latch;
	slot->last_wake_at = GetCurrentTimestamp();
	SpinLockRelease(&slot->mutex);

	pg_atomic_fetch_add_u64(&slot->wake_requests, 1);

	/*
	 * The latch belongs to a PGPROC in shared memory, so setting it is safe
	 * even if the worker has just exited: at worst another process gets a
	 * spurious wake-up, which every latch user tolerates.
	 */
	if (latch != NULL)
		SetLatch(latch);
}

static void
sms_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			{
				uint32		mask = pending_wakeups;

				pending_wakeups = 0;
				for (int i = 0; i < SMS_NUM_COMPONENTS; i++)
				{
					if (mask & (1U << i))
						sms_wake_now((SmsComponentId) i);
				}
				break;
			}
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* rolled back: wake nobody; prepared: the poll will find it */
			pending_wakeups = 0;
			break;
		default:
			break;
	}
}

void
sms_wake_at_commit(SmsComponentId id)
{
	Assert(id >= 0 && id < SMS_NUM_COMPONENTS);
	if (!xact_callback_registered)
	{
		RegisterXactCallback(sms_xact_callback, NULL);
		xact_callback_registered = true;
	}
	pending_wakeups |= (1U << id);
}

/*
 * The value of one column of a row, as text, for a NOTIFY payload.
 */
static void
append_column(StringInfo buf, HeapTuple tuple, TupleDesc tupdesc, const char *colname)
{
	int			attnum = SPI_fnumber(tupdesc, colname);
	char	   *value;

	if (attnum == SPI_ERROR_NOATTRIBUTE)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("smsdist.notify_change: column \"%s\" does not exist", colname)));
	value = SPI_getvalue(tuple, tupdesc, attnum);
	if (buf->len > 0)
		appendStringInfoChar(buf, '/');
	appendStringInfoString(buf, value ? value : "");
}

/*
 * smsdist.notify_change(): trigger function.
 *
 * Arguments: a comma-separated list of components to wake, then the names of
 * the columns that identify the row.  The payload is those columns' values
 * joined by '/' (IDs and names cannot contain '/').  Used as a statement
 * trigger (bulk inventory loads), the payload is '*': "many rows changed".
 */
PG_FUNCTION_INFO_V1(smsdist_notify_change);
Datum
smsdist_notify_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	StringInfoData payload;
	char	   *components;
	char	   *tok;
	char	   *save;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("smsdist.notify_change() must be called as a trigger")));

	trigger = trigdata->tg_trigger;
	if (trigger->tgnargs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("smsdist.notify_change() needs the components to wake as its first argument")));

	initStringInfo(&payload);
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
	{
		HeapTuple	tuple = TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ?
			trigdata->tg_trigtuple :
			(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
			 trigdata->tg_newtuple : trigdata->tg_trigtuple);
		TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);

		for (int i = 1; i < trigger->tgnargs; i++)
			append_column(&payload, tuple, tupdesc, trigger->tgargs[i]);
	}
	else
		appendStringInfoChar(&payload, '*');

	components = pstrdup(trigger->tgargs[0]);
	for (tok = strtok_r(components, ",", &save); tok != NULL;
		 tok = strtok_r(NULL, ",", &save))
	{
		SmsComponentId id = sms_component_by_name(tok, false);
		char		channel[NAMEDATALEN];

		snprintf(channel, sizeof(channel), "smsdist_%s", sms_components[id].name);
		Async_Notify(channel, payload.data);
		sms_wake_at_commit(id);
	}

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ?
							   trigdata->tg_trigtuple :
							   (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
								trigdata->tg_newtuple : trigdata->tg_trigtuple));
	return PointerGetDatum(NULL);
}
