/*-------------------------------------------------------------------------
 *
 * machine_policy.c
 *	  smsdist.machine_policy(): the management point's answer to an agent.
 *
 * Terms:
 *	request		one call of machine_policy(sms_id, user, groups) by an
 *				agent's login or by a reader (a member of smsdist_reader).
 *	binding		the row of machine_logins whose role_name is the session
 *				user: the one machine that login speaks for.
 *	stored policy	machine_policies.policy, the policy the Offer Manager
 *				computed when anything it depends on last changed.
 *	plain request	a request without a user and groups, for a machine that
 *				exists and has a stored policy, by the login bound to that
 *				machine or by a reader bound to none.  Every agent asks this
 *				at every poll.
 *
 * A plain request is answered here with three index lookups (the
 * binding, the machine, its stored policy) and, for a reader, a role
 * check.  Every other request (a user or groups to add, a policy not
 * stored yet, a refusal) goes to answer_machine_policy(), the SECURITY
 * DEFINER PL/pgSQL function that answers all of them and raises the
 * errors; it does the checks again.
 *
 * Why C and direct index scans: the plain request is what every agent of
 * the site asks every poll, and a SECURITY DEFINER function with its SET
 * clause, a PL/pgSQL frame and an executor started for its one query cost
 * twice what the lookups themselves do.  The lookups go around the
 * executor, so they go around its privilege checks too: the binding check
 * below is the one answer_machine_policy() makes, and nothing is returned
 * that it would refuse.  IDs are compared byte for byte here, and the
 * PL/pgSQL is called in the default collation, never the caller's.  The
 * relations are found by name in the extension's fixed schema at every
 * call (syscache hits); what was checked of each (a plain table, its key,
 * its columns' types) is kept until a relcache invalidation of it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "storage/lockdefs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(smsdist_machine_policy);

/*
 * A table read by its primary key: its name and columns, and what was
 * checked of it (kept until a relcache invalidation of the table or its
 * index: an ALTER TABLE, a new index, a DROP).
 */
typedef struct KeyedTable
{
	const char *relname;		/* in the smsdist schema */
	const char *keycol;			/* the primary key's one column */
	Oid			keytype;		/* its type (a domain's base type) */
	RegProcedure eqproc;		/* equality of keytype */
	const char *valcol;			/* the column returned */
	Oid			valtype;		/* its type (a domain's base type) */
	/* checked: still as smsdist made it */
	bool		checked;
	Oid			relid;
	Oid			indexid;
	AttrNumber	keyatt;
	AttrNumber	valatt;
	Oid			collation;		/* the index's */
} KeyedTable;

static KeyedTable machine_logins_table = {"machine_logins", "role_name", NAMEOID, F_NAMEEQ, "sms_id", TEXTOID};
static KeyedTable system_resources_table = {"system_resources", "sms_id", TEXTOID, F_TEXTEQ, "sms_id", TEXTOID};
static KeyedTable machine_policies_table = {"machine_policies", "sms_id", TEXTOID, F_TEXTEQ, "policy", JSONBOID};
static KeyedTable *keyed_tables[] = {&machine_logins_table, &system_resources_table, &machine_policies_table};
static bool keyed_callback_registered = false;

static void
forget_checked_tables(Datum arg, Oid relid)
{
	for (size_t i = 0; i < lengthof(keyed_tables); i++)
		if (relid == InvalidOid || relid == keyed_tables[i]->relid ||
			relid == keyed_tables[i]->indexid)
			keyed_tables[i]->checked = false;
}

static void report_changed_table(KeyedTable *t) pg_attribute_noreturn();

/* a table that is no longer as smsdist made it: an error, never a guess */
static void
report_changed_table(KeyedTable *t)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("relation \"%s.%s\" is not as smsdist made it",
					SMSDIST_SCHEMA_NAME, t->relname)));
}

/*
 * Is the open relation (and its open primary key index) still as smsdist
 * made it: a plain table, a one-column primary key on keycol, the columns'
 * types (the value is returned as that type)?  Kept in t once checked.
 */
static void
check_keyed_table(KeyedTable *t, Relation rel, Relation idx)
{
	Oid			relid = RelationGetRelid(rel);
	AttrNumber	keyatt;
	AttrNumber	valatt;

	if (t->checked && t->relid == relid && t->indexid == RelationGetRelid(idx))
		return;
	t->checked = false;
	keyatt = get_attnum(relid, t->keycol);
	valatt = get_attnum(relid, t->valcol);
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		keyatt == InvalidAttrNumber || valatt == InvalidAttrNumber ||
		idx->rd_index->indnkeyatts != 1 || idx->rd_index->indkey.values[0] != keyatt ||
		getBaseType(TupleDescAttr(RelationGetDescr(rel), keyatt - 1)->atttypid) != t->keytype ||
		getBaseType(TupleDescAttr(RelationGetDescr(rel), valatt - 1)->atttypid) != t->valtype)
		report_changed_table(t);
	if (!keyed_callback_registered)
	{
		CacheRegisterRelcacheCallback(forget_checked_tables, (Datum) 0);
		keyed_callback_registered = true;
	}
	t->relid = relid;
	t->indexid = RelationGetRelid(idx);
	t->keyatt = keyatt;
	t->valatt = valatt;
	t->collation = idx->rd_indcollation[0];
	t->checked = true;
}

/*
 * The one row of table t whose key equals "key".  Returns a copy of its
 * value column (detoasted), or false when there is no such row or the value
 * is NULL.
 */
static bool
lookup_by_key(Oid nsp, KeyedTable *t, Datum key, Datum *value)
{
	Oid			relid = get_relname_relid(t->relname, nsp);
	Relation	rel;
	Relation	idx;
	Oid			indexid;
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist",
						SMSDIST_SCHEMA_NAME, t->relname)));
	rel = table_open(relid, AccessShareLock);
	indexid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(indexid))
		report_changed_table(t);
	idx = index_open(indexid, AccessShareLock);
	check_keyed_table(t, rel, idx);
	index_close(idx, NoLock);

	/* compared in the index's own collation, or the search goes astray */
	ScanKeyEntryInitialize(&skey, 0, t->keyatt, BTEqualStrategyNumber,
						   InvalidOid, t->collation, t->eqproc, key);
	/* the calling query's snapshot (plain_request_policy() checks it is set) */
	scan = systable_beginscan(rel, indexid, true, GetActiveSnapshot(), 1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, t->valatt, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), t->valatt - 1);

			/* copied before the scan lets go of the buffer */
			if (att->attlen == -1)
				*value = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
			else
				*value = datumCopy(d, att->attbyval, att->attlen);
			found = true;
		}
	}
	systable_endscan(scan);
	/* held to the end of the transaction, as a query holds it */
	table_close(rel, NoLock);
	return found;
}

static bool
texts_equal(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * The stored policy of a plain request, or NULL when the request is not
 * one (answer_machine_policy() answers it then).
 */
static Datum
plain_request_policy(text *sms_id, bool *answered)
{
	Oid			nsp = get_namespace_oid(SMSDIST_SCHEMA_NAME, false);
	Oid			session = GetSessionUserId();
	NameData	login;
	Datum		bound;
	Datum		policy;
	Datum		unused;

	*answered = false;

	/*
	 * Not without an active snapshot (all three lookups must see the same
	 * rows), nor with ignore_system_indexes, which any login may set when
	 * it connects and which turns systable_beginscan() into a scan of the
	 * whole table: the PL/pgSQL answers those.
	 */
	if (!ActiveSnapshotSet() || IgnoreSystemIndexes)
		return (Datum) 0;

	namestrcpy(&login, GetUserNameFromId(session, false));
	if (lookup_by_key(nsp, &machine_logins_table, NameGetDatum(&login), &bound))
	{
		if (!texts_equal(DatumGetTextPP(bound), sms_id))
			return (Datum) 0;
	}
	else
	{
		Oid			reader = get_role_oid("smsdist_reader", true);

		if (!OidIsValid(reader) || !has_privs_of_role(session, reader))
			return (Datum) 0;
	}

	/*
	 * A machine that exists (a stored policy outlives its machine a while;
	 * an agent's binding cannot, unless its foreign key was bypassed), with
	 * a stored policy.
	 */
	if (!lookup_by_key(nsp, &system_resources_table, PointerGetDatum(sms_id), &unused))
		return (Datum) 0;
	if (!lookup_by_key(nsp, &machine_policies_table, PointerGetDatum(sms_id), &policy))
		return (Datum) 0;
	*answered = true;
	return policy;
}

/*
 * answer_machine_policy(sms_id, user, groups), called through the function
 * manager: it runs as its owner (SECURITY DEFINER) and is granted to
 * nobody, so only this function reaches it.  Its FmgrInfo is kept for the
 * calling query.
 */
static Datum
answer_in_plpgsql(FunctionCallInfo outer)
{
	FmgrInfo   *answer = (FmgrInfo *) outer->flinfo->fn_extra;
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;

	/*
	 * Kept for the calling expression, which a procedure's COMMIT can let
	 * outlive the function it found (an extension dropped and made again)
	 */
	if (answer != NULL && !SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(answer->fn_oid)))
		answer = NULL;
	if (answer == NULL)
	{
		Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTARRAYOID};
		List	   *name = list_make2(makeString(SMSDIST_SCHEMA_NAME),
									  makeString("answer_machine_policy"));
		Oid			fn = LookupFuncName(name, 3, argtypes, false);

		answer = MemoryContextAllocZero(outer->flinfo->fn_mcxt, sizeof(FmgrInfo));
		fmgr_info_cxt(fn, answer, outer->flinfo->fn_mcxt);
		outer->flinfo->fn_extra = answer;
	}
	/*
	 * Never the caller's collation: PL/pgSQL compares its parameters in it,
	 * and a nondeterministic one (which any login may create in pg_temp)
	 * makes another machine's ID equal to the caller's.
	 */
	InitFunctionCallInfoData(*fcinfo, answer, 3, InvalidOid, NULL, NULL);
	for (int i = 0; i < 3; i++)
		fcinfo->args[i] = outer->args[i];
	result = FunctionCallInvoke(fcinfo);
	outer->isnull = fcinfo->isnull;
	return result;
}

/*
 * machine_policy(sms_id text, user text DEFAULT NULL, groups text[] DEFAULT
 * NULL) RETURNS jsonb
 */
Datum
smsdist_machine_policy(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0) && PG_ARGISNULL(1) && PG_ARGISNULL(2))
	{
		bool		answered;
		Datum		policy = plain_request_policy(PG_GETARG_TEXT_PP(0), &answered);

		if (answered)
			PG_RETURN_DATUM(policy);
	}
	return answer_in_plpgsql(fcinfo);
}
