/*-------------------------------------------------------------------------
 *
 * collection_evaluator.c
 *	  The SMS Collection Evaluator: keeps the materialized membership of
 *	  every collection current.
 *
 * Terms:
 *	rule		a row of smsdist.collection_rules: direct (one system, user
 *				or user group), query (a predicate over system attributes,
 *				compiled by query_rule.c), include or exclude (the members
 *				of another collection).
 *	limit		collections.limiting_collection_id: members must also be
 *				members of that collection.
 *	membership	smsdist.collection_members (systems),
 *				collection_user_members and collection_group_members.
 *	order		ConfigMgr's: (query UNION direct UNION include) INTERSECT
 *				limit EXCEPT exclude.
 *	dependency	C depends on D when it includes, excludes or is limited by
 *				D (view collection_dependencies; loops are refused by a
 *				trigger).  D is evaluated before C: "topological order".
 *	full evaluation		of one collection: every system, user and group.
 *				Queued in collection_evaluation_queue when its rules or
 *				limit change, when a bulk load arrives, or on demand
 *				(evaluate_collections(), for pg_cron schedules); every
 *				collection that depends on it is queued with it.
 *	incremental evaluation	of a batch of systems that were added or
 *				changed (system_evaluation_queue): every collection, in
 *				topological order, but only for those systems.
 *
 * Each collection's evaluation is one statement that computes the new
 * member set and applies only the difference, and commits with the removal
 * of its queue row: a crash loses nothing, a repeat changes nothing.
 *
 * A collection whose evaluation fails (a rule stored before the compiler
 * refused it, a statement timeout...) fails alone: each evaluation runs in
 * a subtransaction, the error and its time are recorded on the collection
 * (evaluation_error, evaluation_error_at) with a status message, its
 * membership stays as it was, and the others are evaluated as usual.  When
 * membership changes, collections.members_changed_at is set and the active
 * run-command jobs that target the collection gain target machines
 * (job_target_status), which the Run phase follows; a machine that leaves
 * before its program ran is not applicable to the job any more (a final
 * target state, so the job can end), and waiting again if it comes back
 * before its agent reported anything.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "collection_evaluator.h"
#include "query_rule.h"
#include "status.h"
#include "worker.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

/* status message: a collection could not be evaluated (docs/status-messages.md) */
#define SMS_MSG_EVALUATION_FAILED	3500

/* systems evaluated incrementally per step */
#define SYSTEM_BATCH	5000

/*
 * The SQL that evaluates one collection's systems: its query rules
 * compiled, the rest as joins.  restricted: only the systems in $2 (an
 * incremental evaluation).
 */
/*
 * (Every query here is run with read_only = false, which gives it a snapshot
 * of its own: a read-only SPI query would see the snapshot of the step's
 * start, and a rule committed since -- after its queue row was taken --
 * would be missed for good.)
 */
static char *
system_evaluation_sql(const char *collection_id, bool restricted)
{
	StringInfoData sql;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(collection_id)};
	const char *only_r = restricted ? " AND r.sms_id = ANY ($2)" : "";
	bool		isnull;
	bool		one_query;

	/*
	 * Does one query rule give every candidate?  Then they are distinct
	 * already (one scan of system_resources, by its key): no DISTINCT, and
	 * no branches for direct and include rules, which would be empty.  A
	 * direct or include rule added after this read queues the collection
	 * again, as a query rule does.
	 */
	if (SPI_execute_with_args("SELECT count(*) FILTER (WHERE rule_type = 'query') = 1"
							  "   AND count(*) FILTER (WHERE rule_type = 'include'"
							  "                           OR (rule_type = 'direct' AND resource_sms_id IS NOT NULL)) = 0"
							  "  FROM smsdist.collection_rules WHERE collection_id = $1",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist collection evaluator: reading rules failed");
	one_query = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	if (SPI_execute_with_args("SELECT query_expression FROM smsdist.collection_rules"
							  " WHERE collection_id = $1 AND rule_type = 'query' ORDER BY rule_id",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist collection evaluator: reading query rules failed");
	if (one_query && SPI_processed != 1)
		one_query = false;		/* changed between the two reads */

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH cand AS (");
	/* query rules: compiled again here, never trusted from a column */
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *rule = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		appendStringInfo(&sql, "SELECT r.sms_id AS sms_id FROM smsdist.system_resources r WHERE %s%s%s",
						 sms_compile_query_rule(rule), only_r, one_query ? "), " : " UNION ALL ");
	}
	/*
	 * UNION ALL, then one DISTINCT, and the exclusions as an anti-join: a
	 * collection of 250,000 members is hashed once, not three times.
	 */
	if (!one_query)
		appendStringInfo(&sql,
						 "SELECT r.resource_sms_id AS sms_id FROM smsdist.collection_rules r"
						 "  JOIN smsdist.system_resources s ON s.sms_id = r.resource_sms_id"
						 " WHERE r.collection_id = $1 AND r.rule_type = 'direct'%s"
						 " UNION ALL "
						 "SELECT m.sms_id FROM smsdist.collection_members m"
						 "  JOIN smsdist.collection_rules x ON x.ref_collection_id = m.collection_id"
						 " WHERE x.collection_id = $1 AND x.rule_type = 'include'%s), ",
						 restricted ? " AND r.resource_sms_id = ANY ($2)" : "",
						 restricted ? " AND m.sms_id = ANY ($2)" : "");
	appendStringInfo(&sql,
					 "new AS ("
					 " SELECT %s c.sms_id FROM cand c"
					 "  WHERE ($3::text IS NULL OR EXISTS (SELECT 1 FROM smsdist.collection_members l"
					 "                                      WHERE l.collection_id = $3 AND l.sms_id = c.sms_id))"
					 "    AND NOT EXISTS (SELECT 1 FROM smsdist.collection_members m"
					 "                      JOIN smsdist.collection_rules x ON x.ref_collection_id = m.collection_id"
					 "                     WHERE x.collection_id = $1 AND x.rule_type = 'exclude'"
					 "                       AND m.sms_id = c.sms_id%s)), "
					 "cur AS ("
					 " SELECT m.sms_id FROM smsdist.collection_members m WHERE m.collection_id = $1%s), "
					 "gone AS ("
					 " DELETE FROM smsdist.collection_members m"
					 "  WHERE m.collection_id = $1%s"
					 "    AND m.sms_id NOT IN (SELECT sms_id FROM new)"
					 " RETURNING m.sms_id), "
					 /* one evaluator: what is not there yet can be inserted plainly */
					 "added AS ("
					 " INSERT INTO smsdist.collection_members (collection_id, sms_id)"
					 /*
					  * the ID as a value of the domain, checked once (an
					  * InitPlan), not once a row
					  */
					 " SELECT (SELECT $1::smsdist.sms_id), n.sms_id FROM new n"
					 "  WHERE n.sms_id NOT IN (SELECT sms_id FROM cur)"
					 /*
					  * in key order: both B-trees then grow at one place instead
					  * of splitting pages all over (250,000 members: 1.5 s -> 1.0 s)
					  */
					 " ORDER BY n.sms_id"
					 " RETURNING sms_id), "
					 /* the Run phase follows: collection jobs gain and lose machines */
					 "jobs AS ("
					 " SELECT j.job_id FROM smsdist.jobs j"
					 "  WHERE j.target_collection_id = $1 AND j.job_type = 'run_command'"
					 "    AND j.state = 'active'), "
					 "lost AS ("
					 " UPDATE smsdist.job_target_status t SET state = 'not_applicable', status_id = NULL,"
					 "        detail = 'the machine left collection ' || $1 || ' before its program ran'"
					 "   FROM jobs, gone"
					 "  WHERE t.job_id = jobs.job_id AND t.sms_id = gone.sms_id"
					 "    AND t.state < 'running' RETURNING t.sms_id), "
					 /* back before anybody reported on it: waiting again */
					 "gained AS ("
					 " INSERT INTO smsdist.job_target_status AS t (job_id, sms_id, site_code)"
					 " SELECT jobs.job_id, a.sms_id, s.site_code FROM jobs, added a"
					 "   JOIN smsdist.system_resources s ON s.sms_id = a.sms_id"
					 " ON CONFLICT (job_id, sms_id) DO UPDATE SET state = 'waiting', detail = NULL"
					 "  WHERE t.state = 'not_applicable' AND t.status_id IS NULL RETURNING t.sms_id) "
					 "SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM added),"
					 "       (SELECT count(*) FROM lost) + (SELECT count(*) FROM gained)",
					 one_query ? "" : "DISTINCT",
					 restricted ? " AND m.sms_id = ANY ($2)" : "",
					 restricted ? " AND m.sms_id = ANY ($2)" : "",
					 restricted ? " AND m.sms_id = ANY ($2)" : "");
	return sql.data;
}

/*
 * Users and user groups: direct rules and include/exclude/limit (no query
 * rules; those are over systems).  kind: "user" or "group".
 */
static const char *
principal_evaluation_sql(const char *kind)
{
	bool		user = strcmp(kind, "user") == 0;
	const char *table = user ? "smsdist.collection_user_members" : "smsdist.collection_group_members";
	const char *name = user ? "user_name" : "group_name";
	const char *dom = user ? "user_domain" : "group_domain";

	return psprintf("WITH cand AS ("
					" SELECT r.%s AS domain, r.%s AS name FROM smsdist.collection_rules r"
					"  WHERE r.collection_id = $1 AND r.rule_type = 'direct' AND r.%s IS NOT NULL"
					" UNION "
					" SELECT m.domain, m.%s FROM %s m"
					"   JOIN smsdist.collection_rules x ON x.ref_collection_id = m.collection_id"
					"  WHERE x.collection_id = $1 AND x.rule_type = 'include'), "
					"new AS ("
					" SELECT c.domain, c.name FROM cand c"
					"  WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM %s l WHERE l.collection_id = $3"
					"                                     AND l.domain = c.domain AND l.%s = c.name)"
					" EXCEPT "
					" SELECT m.domain, m.%s FROM %s m"
					"   JOIN smsdist.collection_rules x ON x.ref_collection_id = m.collection_id"
					"  WHERE x.collection_id = $1 AND x.rule_type = 'exclude'), "
					"gone AS ("
					" DELETE FROM %s m WHERE m.collection_id = $1"
					"    AND NOT EXISTS (SELECT 1 FROM new WHERE new.domain = m.domain AND new.name = m.%s)"
					" RETURNING 1), "
					"added AS ("
					" INSERT INTO %s (collection_id, domain, %s) SELECT $1, domain, name FROM new"
					" ON CONFLICT DO NOTHING RETURNING 1) "
					"SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM added), 0::bigint",
					dom, name, name,
					name, table,
					table, name,
					name, table,
					table, name,
					table, name);
}

/* Run one evaluation statement; returns the number of members changed. */
static int64
run_evaluation(const char *sql, const char *collection_id, const char *limit, Datum ids)
{
	Oid			types[3] = {TEXTOID, TEXTARRAYOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	int64		changed;

	values[0] = CStringGetTextDatum(collection_id);
	values[1] = ids;
	if (ids == (Datum) 0)
		nulls[1] = 'n';
	if (limit != NULL)
		values[2] = CStringGetTextDatum(limit);
	else
	{
		values[2] = (Datum) 0;
		nulls[2] = 'n';
	}
	/*
	 * The candidate sets of a large collection are hashed (UNION, EXCEPT):
	 * room for them in memory, not in temporary files (this transaction only).
	 */
	if (SPI_execute("SET LOCAL work_mem = '64MB'", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "smsdist collection evaluator: setting work_mem failed");
	if (SPI_execute_with_args(sql, 3, types, values, nulls, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "smsdist collection evaluator: evaluating collection %s failed", collection_id);
	changed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) +
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return changed;
}

/*
 * Lock the collection's row before touching its members; false if it is gone.
 * Deleting a collection locks its row and then its members (the cascade):
 * taking them in the same order, an evaluation and a deletion wait for each
 * other instead of deadlocking.
 */
static bool
lock_collection(const char *collection_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(collection_id)};

	if (SPI_execute_with_args("SELECT 1 FROM smsdist.collections WHERE collection_id = $1 FOR NO KEY UPDATE",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist collection evaluator: locking collection %s failed", collection_id);
	return SPI_processed == 1;
}

/* The limiting collection of a collection, or NULL. */
static char *
limiting_collection(const char *collection_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(collection_id)};

	if (SPI_execute_with_args("SELECT limiting_collection_id FROM smsdist.collections WHERE collection_id = $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist collection evaluator: reading collection %s failed", collection_id);
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* Record the outcome on the collection row (and wake who follows it). */
static void
mark_evaluated(const char *collection_id, bool changed)
{
	Oid			types[2] = {TEXTOID, BOOLOID};
	Datum		values[2] = {CStringGetTextDatum(collection_id), BoolGetDatum(changed)};

	if (SPI_execute_with_args("UPDATE smsdist.collections"
							  "   SET evaluated_at = clock_timestamp(), evaluation_error = NULL, evaluation_error_at = NULL,"
							  "       members_changed_at = CASE WHEN $2 THEN clock_timestamp() ELSE members_changed_at END"
							  " WHERE collection_id = $1",
							  2, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist collection evaluator: recording the evaluation failed");
}

/*
 * Record a failed evaluation on the collection.  The message is kept once
 * per error text: a collection that fails at every incremental batch does
 * not write a status message each time.
 */
static void
record_evaluation_error(const char *collection_id, const char *message)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(collection_id), CStringGetTextDatum(message)};
	SmsStatusRefs refs = {0};

	if (SPI_execute_with_args("UPDATE smsdist.collections"
							  "   SET evaluation_error = $2, evaluation_error_at = clock_timestamp()"
							  " WHERE collection_id = $1 AND evaluation_error IS DISTINCT FROM $2",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist collection evaluator: recording the error of collection %s failed",
			 collection_id);
	if (SPI_processed == 0)
		return;
	ereport(WARNING,
			(errmsg("smsdist collection evaluator: collection %s could not be evaluated: %s",
					collection_id, message)));
	sms_status_message(SMS_COLLECTION_EVALUATOR, SMS_ERROR, SMS_MSG_EVALUATION_FAILED, &refs,
					   "Collection %s could not be evaluated: %s; its membership is unchanged.",
					   collection_id, message);
}

/*
 * Evaluate one collection in a subtransaction: systems (only those in ids,
 * an incremental evaluation, unless it is 0), and for a full evaluation
 * users and groups too.  On success *changed is the number of members
 * added or removed and true is returned; an ERROR is recorded on the
 * collection (the subtransaction is rolled back, the caller's transaction
 * goes on) and false is returned.  A cancel is not a collection's fault: it
 * is raised again.
 */
static bool
evaluate_one(const char *collection_id, Datum ids, int64 *changed)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;
	ErrorData  *volatile edata = NULL;

	*changed = 0;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		char	   *limit = limiting_collection(collection_id);
		int64		n;

		if (ids != (Datum) 0)
			n = run_evaluation(system_evaluation_sql(collection_id, true), collection_id, limit, ids);
		else
		{
			n = run_evaluation(system_evaluation_sql(collection_id, false), collection_id, limit, (Datum) 0);
			n += run_evaluation(principal_evaluation_sql("user"), collection_id, limit, (Datum) 0);
			n += run_evaluation(principal_evaluation_sql("group"), collection_id, limit, (Datum) 0);
		}
		*changed = n;
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		ok = false;
	}
	PG_END_TRY();

	if (!ok)
		record_evaluation_error(collection_id, edata->message);
	return ok;
}

/*
 * Collection IDs (in sms_step_context) in topological order: the longest
 * chain of dependencies below each first.  queued: only those in the
 * collection evaluation queue.
 */
static List *
collections_in_order(bool queued)
{
	List	   *order = NIL;
	MemoryContext old;

	if (SPI_execute(psprintf("WITH RECURSIVE down(id, depth) AS ("
							 "  SELECT c.collection_id::text, 0 FROM smsdist.collections c"
							 "  UNION ALL"
							 "  SELECT d.collection_id::text, down.depth + 1 FROM smsdist.collection_dependencies d"
							 "    JOIN down ON d.depends_on = down.id WHERE down.depth < 1000)"
							 "SELECT o.id FROM (SELECT id, max(depth) AS depth FROM down GROUP BY id) o"
							 " WHERE %s ORDER BY o.depth, o.id",
							 queued ? "o.id IN (SELECT collection_id FROM smsdist.collection_evaluation_queue)" : "true"),
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist collection evaluator: ordering collections failed");
	old = MemoryContextSwitchTo(sms_step_context);
	for (uint64 i = 0; i < SPI_processed; i++)
		order = lappend(order, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	MemoryContextSwitchTo(old);
	return order;
}

/*
 * Full evaluations.  Queue every collection that depends on a queued one,
 * then evaluate the queue in topological order, each collection with the
 * removal of its queue row in one transaction.  Returns true if it did any.
 */
static bool
full_evaluations(void)
{
	List	   *order = NIL;
	ListCell   *lc;
	int			done = 0;

	/* dependents of what is queued are queued too */
	if (SPI_execute("WITH RECURSIVE up(id, depth) AS ("
					"  SELECT collection_id::text, 0 FROM smsdist.collection_evaluation_queue"
					"  UNION ALL"
					"  SELECT d.collection_id::text, up.depth + 1 FROM smsdist.collection_dependencies d"
					"    JOIN up ON d.depends_on = up.id WHERE up.depth < 1000)"
					"INSERT INTO smsdist.collection_evaluation_queue (collection_id)"
					"SELECT DISTINCT id FROM up ON CONFLICT DO NOTHING",
					false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist collection evaluator: queueing dependent collections failed");

	order = collections_in_order(true);
	/* queue rows of deleted collections */
	(void) SPI_execute("DELETE FROM smsdist.collection_evaluation_queue q WHERE NOT EXISTS"
					   " (SELECT 1 FROM smsdist.collections c WHERE c.collection_id = q.collection_id)",
					   false, 0);
	sms_step_commit();

	foreach(lc, order)
	{
		char	   *id = lfirst(lc);
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(id)};
		int64		changed;

		CHECK_FOR_INTERRUPTS();
		/* taken by another evaluator, or done already: skip */
		if (SPI_execute_with_args("DELETE FROM smsdist.collection_evaluation_queue"
								  " WHERE collection_id = $1 AND collection_id IN"
								  "  (SELECT collection_id FROM smsdist.collection_evaluation_queue"
								  "    WHERE collection_id = $1 FOR UPDATE SKIP LOCKED)",
								  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "smsdist collection evaluator: taking collection %s failed", id);
		if (SPI_processed == 0)
			continue;
		if (!lock_collection(id))
		{
			sms_step_commit();	/* deleted meanwhile: nothing to evaluate */
			continue;
		}
		pgstat_report_activity(STATE_RUNNING, psprintf("evaluating collection %s", id));
		if (evaluate_one(id, (Datum) 0, &changed))
			mark_evaluated(id, changed > 0);
		sms_step_commit();
		done++;
	}
	return done > 0;
}

/*
 * Incremental evaluation of a batch of systems against every collection.
 * Returns true if there was a batch.
 */
static bool
incremental_evaluation(void)
{
	Datum		ids;
	bool		isnull;
	List	   *order = NIL;
	ListCell   *lc;
	MemoryContext old;
	int			n;

	/* materialized first: see pcm_writer.c */
	if (SPI_execute("WITH pick AS MATERIALIZED ("
					"  SELECT sms_id FROM smsdist.system_evaluation_queue"
					"   ORDER BY queued_at LIMIT " CppAsString2(SYSTEM_BATCH) " FOR UPDATE SKIP LOCKED), "
					"batch AS ("
					"  DELETE FROM smsdist.system_evaluation_queue q USING pick WHERE q.sms_id = pick.sms_id"
					"  RETURNING q.sms_id)"
					"SELECT array_agg(sms_id::text), count(*)::integer FROM batch",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist collection evaluator: taking changed systems failed");
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (n == 0)
		return false;
	old = MemoryContextSwitchTo(sms_step_context);
	ids = datumCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull), false, -1);
	MemoryContextSwitchTo(old);

	order = collections_in_order(false);

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("evaluating %d changed system%s against %d collection%s",
									n, n == 1 ? "" : "s", list_length(order),
									list_length(order) == 1 ? "" : "s"));
	/* one transaction: the batch leaves the queue only with its results */
	foreach(lc, order)
	{
		char	   *id = lfirst(lc);
		int64		changed;

		CHECK_FOR_INTERRUPTS();
		if (!lock_collection(id))
			continue;			/* deleted meanwhile */
		/* a collection that fails misses this batch; fixing its rule queues it in full */
		if (evaluate_one(id, ids, &changed) && changed > 0)
			mark_evaluated(id, true);
	}
	return true;
}

TimestampTz
sms_collection_evaluator_step(void)
{
	if (full_evaluations())
		return GetCurrentTimestamp();
	if (incremental_evaluation())
		return GetCurrentTimestamp();
	return DT_NOEND;
}
