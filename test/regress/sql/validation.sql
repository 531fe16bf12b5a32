-- Bad input is refused at INSERT with a message that says what is wrong.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
DROP EXTENSION smsdist CASCADE;
CREATE EXTENSION smsdist;
\set VERBOSITY default
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Good', '/srv/good');
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Install', 'setup.exe', NULL, 10);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00001', 'WKS1', 'CORP', 'CEN', 'WIN95');

-- site codes
INSERT INTO smsdist.sites VALUES ('ce', 'Too short', NULL);
INSERT INTO smsdist.sites VALUES ('cen', 'Lower case', NULL);
INSERT INTO smsdist.sites VALUES ('C/N', 'Slash', NULL);
INSERT INTO smsdist.sites VALUES ('XYZ', 'Unknown parent', 'ABC');
UPDATE smsdist.sites SET parent_site_code = 'CH1' WHERE site_code = 'CEN';
UPDATE smsdist.sites SET parent_site_code = 'CEN' WHERE site_code = 'CEN';

-- SMS IDs: site code + 5 upper-case hex digits
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0001', 'Short', '/srv/a');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0000g', 'Not hex', '/srv/a');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('../00001', 'Escape', '/srv/a');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN/0001', 'Escape', '/srv/a');

-- names that could escape a directory or break a file
INSERT INTO smsdist.packages (name, source_directory) VALUES ('..', '/srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('../../etc', '/srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('a\b', '/srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES (E'two\nlines', '/srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('', '/srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES (' padded', '/srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('trailing.', '/srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES (repeat('x', 129), '/srv/a');
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Run/Me', 'x', NULL, 1);

-- paths: absolute and canonical
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Relative', 'srv/a');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Dotdot', '/srv/../etc');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Dot', '/srv/./a');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Double slash', '/srv//a');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Trailing slash', '/srv/a/');
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Control', E'/srv/a\tb');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CEN', 'distribution_point', 'DP1', '/srv/dp/..');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CEN', 'file_server', 'FS1', '/srv/fs');

-- platforms and programs
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Win99', 'setup.exe', '{WIN99}', 10);
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Empty', 'setup.exe', '{}', 10);
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Nocmd', '', NULL, 10);
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Newline', E'setup.exe\nrm -rf /', NULL, 10);
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Forever', 'setup.exe', NULL, 0);
INSERT INTO smsdist.programs VALUES ('CEN00009', 'Orphan', 'setup.exe', NULL, 10);

-- systems, users, groups
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00002', 'A-NAME-LONGER-THAN-15', 'CORP', 'CEN', 'WIN95');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00002', 'WKS2', 'CO RP', 'CEN', 'WIN95');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00002', 'WKS2', 'CORP', 'ZZZ', 'WIN95');
INSERT INTO smsdist.users VALUES ('CORP', 'bad/user', NULL);
INSERT INTO smsdist.user_group_members VALUES ('CORP', 'Admins', 'CORP', 'nobody');

-- sender addresses
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host=child port');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host=child bogus=1');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle) VALUES ('CH1', 'host=child', 'pulse');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, hourly_rate_pct)
    VALUES ('CH1', 'host=child', 'rate_limited', '{100,100,50}');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, hourly_rate_pct)
    VALUES ('CH1', 'host=child', 'rate_limited', array_fill(101::smallint, ARRAY[24]));
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, pulse_block_kb, pulse_delay_ms)
    VALUES ('CH1', 'host=child dbname=site', 'pulse', 64, 500) RETURNING target_site_code, throttle;
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, priority, throttle, hourly_rate_pct)
    VALUES ('CH1', 'host=child2 dbname=site', 2, 'rate_limited', array_fill(50::smallint, ARRAY[24]))
    RETURNING target_site_code, priority, throttle;

-- jobs (terse: the failing row holds creation times; the constraint name says it all)
\set VERBOSITY terse
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after, offer_after)
    VALUES ('run_command', 'CEN00001', 'Install', 'machines', '{CEN00001}', '2099-01-02', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after, expires_at)
    VALUES ('run_command', 'CEN00001', 'Install', 'machines', '{CEN00001}', '2099-01-02', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
    VALUES ('run_command', 'CEN00001', 'Install', 'machines', '{CEN00001}', '2099-01-01', '2099-01-03', '2099-01-02');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_machines, start_after)
    VALUES ('run_command', 'CEN00001', 'machines', '{CEN00001}', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after)
    VALUES ('run_command', 'CEN00001', 'Uninstall', 'machines', '{CEN00001}', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_machines, start_after)
    VALUES ('share_package', 'CEN00001', 'machines', '{CEN00001}', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, start_after)
    VALUES ('run_command', 'CEN00001', 'Install', 'machines', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after)
    VALUES ('run_command', 'CEN00001', 'Install', 'machines', '{}', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after)
    VALUES ('run_command', 'CEN00001', 'Install', 'machines', '{CEN00001,CH100042}', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites, start_after)
    VALUES ('share_package', 'CEN00001', 'sites', '{CH1,XX9}', '2099-01-01');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites, start_after)
    VALUES ('share_package', 'CEN00001', 'sites', '{CH1}', '2099-01-01')
    RETURNING job_type, target_sites;

-- collections
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00001', 'All');
UPDATE smsdist.collections SET limiting_collection_id = 'CEN00001' WHERE collection_id = 'CEN00001';
INSERT INTO smsdist.collection_rules (collection_id, rule_type) VALUES ('CEN00001', 'direct');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, ref_collection_id) VALUES ('CEN00001', 'include', 'CEN00001');
INSERT INTO smsdist.collection_subcollections VALUES ('CEN00001', 'CEN00001');

-- advertisements
INSERT INTO smsdist.advertisements (name, package_id, program_name, collection_id)
    VALUES ('No such program', 'CEN00001', 'Uninstall', 'CEN00001');
INSERT INTO smsdist.advertisements (name, package_id, program_name, collection_id, offer_time, expires_time)
    VALUES ('Expires first', 'CEN00001', 'Install', 'CEN00001', '2099-01-02', '2099-01-01');
INSERT INTO smsdist.advertisements (name, package_id, program_name, collection_id, offer_time, offer_time_utc, expires_time)
    VALUES ('Mixed too close', 'CEN00001', 'Install', 'CEN00001', '2099-01-01 00:00', false, '2099-01-01 12:00');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, expires_time)
    VALUES ('CEN00001', 'Good', 'CEN00001', 'Install', 'CEN00001', '2099-01-01', '2099-01-02')
    RETURNING advert_id, offer_time, offer_time_utc;
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, recur_every)
    VALUES ('CEN00001', '2099-01-01', '5 minutes');
