-- The policies of many machines at once (compute_machine_policy() of
-- each, in one statement): what the PCM writer stores for a batch of
-- 2,000 machines and the Offer Manager for every targeted machine.  Called
-- once per machine, the single-machine query started an executor for each
-- of its subqueries at every call -- most of the PCM writer's time for a
-- 100,000-machine job.  Here each part is computed for the whole set and
-- joined by machine: the advertisements a machine's collections reach
-- (member_advertisements() for all of them), the entries of each distinct
-- set of advertisements at each site once (policy_advertisements(), as a
-- single machine's), its maintenance windows and its live run-command jobs.
-- A machine that does not exist has no row.
--
-- In PL/pgSQL, which keeps the statement's plan for the session: the PCM
-- writer and the Offer Manager call it for one machine or a few at every
-- job, and planning it took longer than running it.  Up to 16 machines
-- use that kept (generic) plan, made for about ten; a larger set is
-- planned for its own size at each call (with the plan for ten, a batch of
-- 20,000 machines was joined to its jobs in a nested loop: 26 s instead
-- of 1 s).  Never compiled with JIT: right after a large job, before its
-- target rows have statistics, the plan's estimated cost passes the JIT
-- thresholds, and compiling it took 0.6-0.7 s of every batch of the PCM
-- writer (and would of an agent's request for a policy not yet stored).
CREATE OR REPLACE FUNCTION compute_machine_policies(p_sms_ids text[])
    RETURNS TABLE (sms_id text, policy jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = auto
    SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    IF coalesce(cardinality(p_sms_ids), 0) > 16 THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    ELSE
        PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    END IF;
    RETURN QUERY
    WITH RECURSIVE
    m AS (
        SELECT r.sms_id AS id, r.site_code, r.platform
          FROM smsdist.system_resources r WHERE r.sms_id = ANY (p_sms_ids)),
    -- each machine's collections, and up through the collections that
    -- include them as subcollections (as member_advertisements() walks)
    up(id, collection_id, depth) AS (
        SELECT DISTINCT cm.sms_id::text, cm.collection_id::text, 0
          FROM smsdist.collection_members cm WHERE cm.sms_id = ANY (p_sms_ids)
        UNION
        SELECT u.id, s.parent_collection_id::text, u.depth + 1
          FROM up u JOIN smsdist.collection_subcollections s ON s.child_collection_id = u.collection_id
         WHERE u.depth < 100),
    sets AS (
        SELECT up.id, array_agg(DISTINCT a.advert_id::text ORDER BY a.advert_id::text) AS adverts
          FROM up JOIN smsdist.advertisements a ON a.collection_id = up.collection_id
         WHERE a.enabled AND (up.depth = 0 OR a.include_subcollections)
         GROUP BY up.id),
    entries AS (
        SELECT c.adverts, c.site_code, smsdist.policy_advertisements(c.adverts, c.site_code, 'machine') AS j
          FROM (SELECT DISTINCT s.adverts, m.site_code::text AS site_code
                  FROM sets s JOIN m ON m.id = s.id) c),
    windows AS (
        SELECT cm.sms_id::text AS id,
               jsonb_agg(jsonb_build_object(
                   'collection_id', w.collection_id, 'name', w.name,
                   'start', to_char(w.start_time, 'HH24:MI'), 'duration_minutes', w.duration_minutes,
                   'days', (SELECT jsonb_agg(d ORDER BY d) FROM unnest(w.days) d))
                   ORDER BY w.start_time, w.duration_minutes, w.collection_id, w.name) AS j
          FROM smsdist.maintenance_windows w
          JOIN smsdist.collection_members cm ON cm.collection_id = w.collection_id
         WHERE w.enabled AND cm.sms_id = ANY (p_sms_ids)
         GROUP BY cm.sms_id),
    jobs AS (
        SELECT lj.sms_id AS id,
               jsonb_agg(lj.policy_entry ORDER BY lj.job_id) AS j
          FROM smsdist.live_run_jobs(p_sms_ids, current_setting('smsdist.site_code', true)) lj
         GROUP BY lj.sms_id)
    SELECT m.id::text, jsonb_build_object(
               'machine', m.id, 'site', m.site_code, 'platform', m.platform,
               'advertisements', coalesce(e.j, '[]'::jsonb),
               'maintenance_windows', coalesce(w.j, '[]'::jsonb),
               'jobs', coalesce(jb.j, '[]'::jsonb))
      FROM m
      LEFT JOIN sets s ON s.id = m.id::text
      LEFT JOIN entries e ON e.adverts = s.adverts AND e.site_code = m.site_code::text
      LEFT JOIN windows w ON w.id = m.id::text
      LEFT JOIN jobs jb ON jb.id = m.id::text;
END
$$;
REVOKE ALL ON FUNCTION compute_machine_policies(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compute_machine_policies(text[]) TO smsdist_reader;
