-- Collection query rules are compiled, never run as written: what they
-- compile to, and what is refused (SQL injection, functions, unknown
-- attributes, bad values), and collection loops.
BEGIN;
SELECT plan(37);
-- times are kept as the instant the writer meant, shown in ISO form
SET LOCAL timezone = 'UTC';

-- what rules compile to
SELECT is(smsdist.compile_query_rule($$platform = 'WINNT_X86'$$),
          $$((r.platform::text = 'WINNT_X86'::text))$$, 'a comparison');
SELECT is(smsdist.compile_query_rule($$memory_mb >= 512 and NOT (name like 'LAB%' or domain = 'TEST')$$),
          $$((r.memory_mb >= '512'::integer) AND (NOT ((r.name::text LIKE 'LAB%') OR (r.domain::text = 'TEST'::text))))$$,
          'AND, OR, NOT, LIKE and parentheses; keywords in any case');
SELECT is(smsdist.compile_query_rule($$site_code IN ('CH1', 'CH2') AND os_version IS NOT NULL$$),
          $$((r.site_code::text IN ('CH1'::text, 'CH2'::text)) AND (r.os_version IS NOT NULL))$$, 'IN and IS NOT NULL');
SELECT is(smsdist.compile_query_rule($$ip_address IN SUBNET '10.1.0.0/16'$$),
          $$(((r.ip_address <<= '10.1.0.0/16'::inet)))$$, 'IN SUBNET');
SELECT is(smsdist.compile_query_rule($$name = 'O''Brien'$$),
          $$((r.name::text = 'O''Brien'::text))$$, 'a quote inside a value stays a quote');
SELECT is(smsdist.compile_query_rule($$name = '''; DROP TABLE smsdist.jobs; --'$$),
          $$((r.name::text = '''; DROP TABLE smsdist.jobs; --'::text))$$,
          'SQL inside a value is only a value');
SELECT is(smsdist.compile_query_rule($$last_seen > '2026-01-01' AND free_disk_mb < 1000 AND name NOT ILIKE 'x%'$$),
          $$((r.last_seen > '2026-01-01 00:00:00+00'::timestamptz) AND (r.free_disk_mb < '1000'::bigint) AND (r.name::text NOT ILIKE 'x%'))$$,
          'timestamps, bigints, NOT ILIKE');

-- refused, with the reason and the place
SELECT throws_like($$SELECT smsdist.compile_query_rule('name = ''x''; DROP TABLE smsdist.jobs')$$,
    'invalid query rule: unexpected ";" at character 11', 'a second statement is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('name = ''x'' OR 1 = 1')$$,
    'invalid query rule: expected an attribute, found "1"%', 'a tautology on a number is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('pg_sleep(10) IS NULL')$$,
    'invalid query rule: unknown attribute "pg_sleep"%', 'a function call is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('(SELECT 1) = 1')$$,
    'invalid query rule: unknown attribute "select"%', 'a subquery is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('password = ''x''')$$,
    'invalid query rule: unknown attribute "password"%', 'an attribute that is not a system attribute is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('name = x')$$,
    'invalid query rule: expected a value for name, found "x"%', 'an unquoted word is not a value');
SELECT throws_like($$SELECT smsdist.compile_query_rule('memory_mb >= ''lots''')$$,
    'invalid query rule: "lots" is not a valid integer for memory_mb%', 'a value of the wrong type is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('ip_address IN SUBNET ''10.1.0.0/99''')$$,
    'invalid query rule: "10.1.0.0/99" is not a valid inet%', 'a bad subnet is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('memory_mb LIKE ''5%''')$$,
    'invalid query rule: memory_mb is not text%', 'LIKE on a number is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('name = ''x')$$,
    'invalid query rule: unterminated string%', 'an unterminated string is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('(name = ''x''')$$,
    'invalid query rule: expected ), found "end of rule"%', 'a missing parenthesis is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('   ')$$,
    'invalid query rule: the rule is empty%', 'an empty rule is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule(repeat('(', 100) || 'name = ''x''' || repeat(')', 100))$$,
    'invalid query rule: the rule is nested more than 64 levels deep%', 'deep nesting is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('name = ''x'' -- comment')$$,
    'invalid query rule: unexpected "-"%', 'SQL comments are refused');

-- what PostgreSQL would refuse only at evaluation is refused now
SELECT throws_like($$SELECT smsdist.compile_query_rule('name LIKE ''WKS\''')$$,
    'invalid query rule: the LIKE pattern ''WKS%'' ends with the escape character%at character 11',
    'a LIKE pattern ending with the escape character is refused');
SELECT throws_like($$SELECT smsdist.compile_query_rule('domain NOT ILIKE ''a\\\''')$$,
    'invalid query rule: the ILIKE pattern%ends with the escape character%',
    'so is an ILIKE pattern whose last backslash is not escaped');
SELECT is(smsdist.compile_query_rule($$name LIKE 'WKS\\' OR name LIKE 'a\%b'$$),
          $$((r.name::text LIKE E'WKS\\\\') OR (r.name::text LIKE E'a\\%b'))$$,
          'an escaped backslash and an escaped % are fine');
SET LOCAL DateStyle = 'ISO, DMY';
SELECT is(smsdist.compile_query_rule($$last_seen > '13/01/2026'$$),
          $$((r.last_seen > '2026-01-13 00:00:00+00'::timestamptz))$$,
          'a day-first date is kept as the day it meant, whatever DateStyle the evaluator has');
SET LOCAL DateStyle = 'ISO, MDY';
SELECT is(smsdist.compile_query_rule($$last_seen < 'infinity'$$),
          $$((r.last_seen < 'infinity'::timestamptz))$$, 'infinity stays infinity');

-- the rule is checked when it is stored
INSERT INTO smsdist.sites VALUES ('TR1', 'Rules', NULL);
INSERT INTO smsdist.collections (collection_id, name) VALUES
    ('TR100001', 'A'), ('TR100002', 'B'), ('TR100003', 'C');
SELECT throws_like($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
                     VALUES ('TR100001', 'query', 'name = ''x''; DELETE FROM smsdist.jobs')$$,
    'invalid query rule: unexpected ";"%', 'a bad query rule cannot be stored');
SELECT lives_ok($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
                  VALUES ('TR100001', 'query', 'platform = ''WIN95''')$$, 'a good one can');
SELECT throws_like($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
                     VALUES ('TR100001', 'query', 'name LIKE ''WKS\''')$$,
    'invalid query rule: the LIKE pattern%ends with the escape character%',
    'a rule that would fail at evaluation cannot be stored');

-- loops are refused, naming the loop
SELECT lives_ok($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, ref_collection_id)
                  VALUES ('TR100001', 'include', 'TR100002'), ('TR100002', 'exclude', 'TR100003')$$,
    'A includes B, B excludes C');
SELECT throws_like($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, ref_collection_id)
                     VALUES ('TR100003', 'include', 'TR100001')$$,
    'collection TR100003 cannot depend on collection TR100001: that would make a loop',
    'C including A would close a loop');
SELECT throws_like($$UPDATE smsdist.collections SET limiting_collection_id = 'TR100001' WHERE collection_id = 'TR100003'$$,
    'collection TR100003 cannot depend on collection TR100001: that would make a loop',
    'so would C limited by A');
SELECT lives_ok($$INSERT INTO smsdist.collection_subcollections VALUES ('TR100001', 'TR100002'), ('TR100002', 'TR100003')$$,
    'subcollections A > B > C');
SELECT throws_like($$INSERT INTO smsdist.collection_subcollections VALUES ('TR100003', 'TR100001')$$,
    'collection TR100003 cannot depend on collection TR100001: that would make a loop',
    'a subcollection loop is refused');

-- direct rules name exactly one system, user or group
INSERT INTO smsdist.users VALUES ('CORP', 'alice', 'Alice');
SELECT lives_ok($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name)
                  VALUES ('TR100001', 'direct', 'CORP', 'alice')$$, 'a direct rule for a user');
SELECT throws_ok($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name, group_domain, group_name)
                   VALUES ('TR100001', 'direct', 'CORP', 'alice', 'CORP', 'staff')$$, '23514', NULL,
    'a direct rule naming a user and a group is refused');
SELECT throws_ok($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression, user_domain, user_name)
                   VALUES ('TR100001', 'query', 'name = ''x''', 'CORP', 'alice')$$, '23514', NULL,
    'a query rule naming a user is refused');

SELECT * FROM finish();
ROLLBACK;
