-- The validators (src/core/validate.c) called directly, the domains built on them,
-- and the site hierarchy's refusal of cycles.
BEGIN;
SELECT plan(113);

-------------------------------------------------------------------------------
-- check_site_code: exactly three of A-Z 0-9
-------------------------------------------------------------------------------
SELECT ok(smsdist.check_site_code('CEN'), 'site code CEN is valid');
SELECT ok(smsdist.check_site_code('A1Z'), 'site code A1Z is valid');
SELECT ok(smsdist.check_site_code('007'), 'site code 007 (all digits) is valid');
SELECT throws_ok($$SELECT smsdist.check_site_code('cen')$$, '23514', 'invalid site code "cen"', 'a lower-case site code is refused');
SELECT throws_ok($$SELECT smsdist.check_site_code('Cen')$$, '23514', 'invalid site code "Cen"', 'a mixed-case site code is refused');
SELECT throws_ok($$SELECT smsdist.check_site_code('CE')$$, '23514', 'invalid site code "CE"', 'a two-character site code is refused');
SELECT throws_ok($$SELECT smsdist.check_site_code('CENT')$$, '23514', 'invalid site code "CENT"', 'a four-character site code is refused');
SELECT throws_ok($$SELECT smsdist.check_site_code('')$$, '23514', 'invalid site code ""', 'an empty site code is refused');
SELECT throws_ok($$SELECT smsdist.check_site_code('C/N')$$, '23514', 'invalid site code "C/N"', 'a site code with / is refused');
SELECT throws_ok($$SELECT smsdist.check_site_code('..')$$, '23514', 'invalid site code ".."', 'site code .. is refused');
SELECT throws_ok($$SELECT smsdist.check_site_code('CÉN')$$, '23514', 'invalid site code "CÉN"', 'a site code with a non-ASCII letter is refused');
SELECT is(smsdist.check_site_code(NULL), NULL, 'check_site_code is STRICT: NULL gives NULL');

-------------------------------------------------------------------------------
-- check_sms_id: site code + five upper-case hex digits
-------------------------------------------------------------------------------
SELECT ok(smsdist.check_sms_id('CEN00001'), 'SMS ID CEN00001 is valid');
SELECT ok(smsdist.check_sms_id('A1BFFFFF'), 'SMS ID A1BFFFFF is valid');
SELECT ok(smsdist.check_sms_id('XYZ0A0B0'), 'SMS ID XYZ0A0B0 is valid');
SELECT throws_ok($$SELECT smsdist.check_sms_id('CEN0000g')$$, '23514', 'invalid SMS ID "CEN0000g"', 'a non-hex digit g is refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('CEN0000G')$$, '23514', 'invalid SMS ID "CEN0000G"', 'a non-hex digit G is refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('CEN0000a')$$, '23514', 'invalid SMS ID "CEN0000a"', 'lower-case hex is refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('cen00001')$$, '23514', 'invalid SMS ID "cen00001"', 'a lower-case site code part is refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('CEN0001')$$, '23514', 'invalid SMS ID "CEN0001"', 'four hex digits are refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('CEN000001')$$, '23514', 'invalid SMS ID "CEN000001"', 'six hex digits are refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('../00001')$$, '23514', 'invalid SMS ID "../00001"', 'an SMS ID starting with .. is refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('CEN/0001')$$, '23514', 'invalid SMS ID "CEN/0001"', 'an SMS ID with / is refused');
SELECT throws_ok($$SELECT smsdist.check_sms_id('CEN 0001')$$, '23514', 'invalid SMS ID "CEN 0001"', 'an SMS ID with a space is refused');

-------------------------------------------------------------------------------
-- check_object_name: Windows file-name rules, 1-128 characters
-------------------------------------------------------------------------------
SELECT ok(smsdist.check_object_name('Office 97'), 'name "Office 97" is valid');
SELECT ok(smsdist.check_object_name('a.b..c'), 'dots inside a name are valid');
SELECT ok(smsdist.check_object_name('.hidden'), 'a leading dot is valid');
SELECT ok(smsdist.check_object_name(repeat('x', 128)), 'a 128-character name is valid');
SELECT ok(smsdist.check_object_name(repeat('é', 128)), '128 two-byte characters are valid (characters, not bytes, are counted)');
SELECT throws_ok($$SELECT smsdist.check_object_name('..')$$, '23514',
                 'invalid name "..": "." and ".." name directories', 'name .. is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('.')$$, '23514',
                 'invalid name ".": "." and ".." name directories', 'name . is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('')$$, '23514',
                 'invalid name "": it is empty', 'an empty name is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name(repeat('x', 129))$$, '23514',
                 'invalid name "' || repeat('x', 129) || '": it is longer than 128 characters', 'a 129-character name is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('a/b')$$, '23514',
                 'invalid name "a/b": it contains one of \ / : * ? " < > |', 'a name with / is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('../../etc')$$, '23514',
                 'invalid name "../../etc": it contains one of \ / : * ? " < > |', 'a name that climbs directories is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('a\b')$$, '23514',
                 'invalid name "a\b": it contains one of \ / : * ? " < > |', 'a name with \ is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('C:x')$$, '23514',
                 'invalid name "C:x": it contains one of \ / : * ? " < > |', 'a name with : is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('a*')$$, '23514',
                 'invalid name "a*": it contains one of \ / : * ? " < > |', 'a name with * is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('a?')$$, '23514',
                 'invalid name "a?": it contains one of \ / : * ? " < > |', 'a name with ? is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('say "hi"')$$, '23514',
                 'invalid name "say "hi"": it contains one of \ / : * ? " < > |', 'a name with " is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('<a>')$$, '23514',
                 'invalid name "<a>": it contains one of \ / : * ? " < > |', 'a name with < > is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('a|b')$$, '23514',
                 'invalid name "a|b": it contains one of \ / : * ? " < > |', 'a name with | is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name(E'two\nlines')$$, '23514',
                 E'invalid name "two\nlines": it contains a control character', 'a name with a newline is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name(E'tab\there')$$, '23514',
                 E'invalid name "tab\there": it contains a control character', 'a name with a tab is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name(E'\x01start')$$, '23514',
                 E'invalid name "\x01start": it contains a control character', 'a name with U+0001 is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name(E'del\x7f')$$, '23514',
                 E'invalid name "del\x7f": it contains a control character', 'a name with DEL (0x7F) is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name(' padded')$$, '23514',
                 'invalid name " padded": it begins or ends with a space', 'a leading space is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('padded ')$$, '23514',
                 'invalid name "padded ": it begins or ends with a space', 'a trailing space is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('trailing.')$$, '23514',
                 'invalid name "trailing.": it ends with a dot', 'a trailing dot is refused');
SELECT throws_ok($$SELECT smsdist.check_object_name('...')$$, '23514',
                 'invalid name "...": it ends with a dot', 'name ... is refused');

-------------------------------------------------------------------------------
-- check_netbios_name: 1-15 of A-Z a-z 0-9 - _, not starting with -
-------------------------------------------------------------------------------
SELECT ok(smsdist.check_netbios_name('WKS-1'), 'NetBIOS name WKS-1 is valid');
SELECT ok(smsdist.check_netbios_name('corp_dom'), 'NetBIOS name corp_dom (lower case, underscore) is valid');
SELECT ok(smsdist.check_netbios_name('ABCDEFGHIJKLMNO'), 'a 15-character NetBIOS name is valid');
SELECT ok(smsdist.check_netbios_name('X'), 'a 1-character NetBIOS name is valid');
SELECT throws_ok($$SELECT smsdist.check_netbios_name('ABCDEFGHIJKLMNOP')$$, '23514',
                 'invalid NetBIOS name "ABCDEFGHIJKLMNOP"', 'a 16-character NetBIOS name is refused');
SELECT throws_ok($$SELECT smsdist.check_netbios_name('')$$, '23514',
                 'invalid NetBIOS name ""', 'an empty NetBIOS name is refused');
SELECT throws_ok($$SELECT smsdist.check_netbios_name('-WKS')$$, '23514',
                 'invalid NetBIOS name "-WKS"', 'a NetBIOS name starting with - is refused');
SELECT throws_ok($$SELECT smsdist.check_netbios_name('CO RP')$$, '23514',
                 'invalid NetBIOS name "CO RP"', 'a NetBIOS name with a space is refused');
SELECT throws_ok($$SELECT smsdist.check_netbios_name('wks.corp')$$, '23514',
                 'invalid NetBIOS name "wks.corp"', 'a NetBIOS name with a dot is refused');
SELECT throws_ok($$SELECT smsdist.check_netbios_name('a/b')$$, '23514',
                 'invalid NetBIOS name "a/b"', 'a NetBIOS name with / is refused');
SELECT throws_ok($$SELECT smsdist.check_netbios_name('..')$$, '23514',
                 'invalid NetBIOS name ".."', 'NetBIOS name .. is refused');

-------------------------------------------------------------------------------
-- check_server_path: absolute, canonical, no control characters, <= 1024 bytes
-------------------------------------------------------------------------------
SELECT ok(smsdist.check_server_path('/srv/source/office97'), 'path /srv/source/office97 is valid');
SELECT ok(smsdist.check_server_path('/'), 'path / is valid');
SELECT ok(smsdist.check_server_path('/srv/.hidden/a..b/c.'), 'dots inside components are valid');
SELECT ok(smsdist.check_server_path('/' || repeat('x', 1023)), 'a 1024-byte path is valid');
SELECT throws_ok($$SELECT smsdist.check_server_path('..')$$, '23514',
                 'invalid server path "..": it is not an absolute path', 'path .. is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('srv/a')$$, '23514',
                 'invalid server path "srv/a": it is not an absolute path', 'a relative path is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('a//b')$$, '23514',
                 'invalid server path "a//b": it is not an absolute path', 'relative a//b is refused as not absolute');
SELECT throws_ok($$SELECT smsdist.check_server_path('')$$, '23514',
                 'invalid server path "": it is not an absolute path', 'an empty path is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('/a/../b')$$, '23514',
                 'invalid server path "/a/../b": it contains a . or .. component', 'a .. component is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('/..')$$, '23514',
                 'invalid server path "/..": it contains a . or .. component', 'path /.. is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('/srv/dp/..')$$, '23514',
                 'invalid server path "/srv/dp/..": it contains a . or .. component', 'a trailing .. component is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('/srv/./a')$$, '23514',
                 'invalid server path "/srv/./a": it contains a . or .. component', 'a . component is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('/a//b')$$, '23514',
                 'invalid server path "/a//b": it contains //', 'an empty component is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('//srv')$$, '23514',
                 'invalid server path "//srv": it contains //', 'a leading // is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('/srv/a/')$$, '23514',
                 'invalid server path "/srv/a/": it ends with /', 'a trailing / is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path(E'/srv/a\tb')$$, '23514',
                 E'invalid server path "/srv/a\tb": it contains a control character', 'a tab is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path(E'/srv/a\nb')$$, '23514',
                 E'invalid server path "/srv/a\nb": it contains a control character', 'a newline is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path('/' || repeat('x', 1024))$$, '23514',
                 'invalid server path "/' || repeat('x', 1024) || '": it is longer than 1024 bytes', 'a 1025-byte path is refused');

-------------------------------------------------------------------------------
-- check_command_line: 1-1024 bytes, no control characters
-------------------------------------------------------------------------------
SELECT ok(smsdist.check_command_line('setup.exe /q /typical'), 'command line "setup.exe /q /typical" is valid');
SELECT ok(smsdist.check_command_line('sh -c "cd /tmp && ./install.sh | tee log"'), 'quotes, pipes and slashes are valid in a command line');
SELECT ok(smsdist.check_command_line(repeat('x', 1024)), 'a 1024-byte command line is valid');
SELECT throws_ok($$SELECT smsdist.check_command_line('')$$, '23514',
                 'invalid command line: it must be 1 to 1024 bytes long', 'an empty command line is refused');
SELECT throws_ok($$SELECT smsdist.check_command_line(repeat('x', 1025))$$, '23514',
                 'invalid command line: it must be 1 to 1024 bytes long', 'a 1025-byte command line is refused');
SELECT throws_ok($$SELECT smsdist.check_command_line(E'setup.exe\nrm -rf /')$$, '23514',
                 E'invalid command line "setup.exe\nrm -rf /": it contains a control character', 'a newline is refused');
SELECT throws_ok($$SELECT smsdist.check_command_line(E'setup.exe\r')$$, '23514',
                 E'invalid command line "setup.exe\r": it contains a control character', 'a carriage return is refused');
SELECT throws_ok($$SELECT smsdist.check_command_line(E'a\x1bb')$$, '23514',
                 E'invalid command line "a\x1bb": it contains a control character', 'an escape character is refused');

-------------------------------------------------------------------------------
-- check_conninfo: parseable by libpq
-------------------------------------------------------------------------------
SELECT ok(smsdist.check_conninfo('host=child.example.org port=5432 dbname=sms user=smsdist_sender'), 'a key=value conninfo is valid');
SELECT ok(smsdist.check_conninfo('postgresql://smsdist_sender@child.example.org:5432/sms'), 'a URI conninfo is valid');
SELECT ok(smsdist.check_conninfo($$host=child password='it\'s secret'$$), 'a quoted value with an escaped quote is valid');
SELECT throws_ok($$SELECT smsdist.check_conninfo('host=child port')$$, '23514',
                 'invalid connection string for sender address: missing "=" after "port" in connection info string',
                 'a keyword without = is refused');
SELECT throws_ok($$SELECT smsdist.check_conninfo('host=child bogus=1')$$, '23514',
                 'invalid connection string for sender address: invalid connection option "bogus"',
                 'an unknown keyword is refused');
SELECT throws_ok($$SELECT smsdist.check_conninfo($q$host='unterminated$q$)$$, '23514',
                 'invalid connection string for sender address: unterminated quoted string in connection info string',
                 'an unterminated quote is refused');

-------------------------------------------------------------------------------
-- The domains use the validators (and let NULL through)
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT 'cen'::smsdist.site_code$$, '23514', 'invalid site code "cen"', 'domain site_code refuses cen');
SELECT throws_ok($$SELECT 'CEN0000g'::smsdist.sms_id$$, '23514', 'invalid SMS ID "CEN0000g"', 'domain sms_id refuses CEN0000g');
SELECT throws_ok($$SELECT 'a/b'::smsdist.object_name$$, '23514',
                 'invalid name "a/b": it contains one of \ / : * ? " < > |', 'domain object_name refuses a/b');
SELECT throws_ok($$SELECT 'ABCDEFGHIJKLMNOP'::smsdist.netbios_name$$, '23514',
                 'invalid NetBIOS name "ABCDEFGHIJKLMNOP"', 'domain netbios_name refuses 16 characters');
SELECT throws_ok($$SELECT '/a/../b'::smsdist.server_path$$, '23514',
                 'invalid server path "/a/../b": it contains a . or .. component', 'domain server_path refuses /a/../b');
SELECT throws_ok($$SELECT ''::smsdist.command_line$$, '23514',
                 'invalid command line: it must be 1 to 1024 bytes long', 'domain command_line refuses the empty string');
SELECT throws_ok($$SELECT 'host=child port'::smsdist.conninfo$$, '23514',
                 'invalid connection string for sender address: missing "=" after "port" in connection info string',
                 'domain conninfo refuses a keyword without =');
SELECT is(NULL::smsdist.site_code, NULL, 'a NULL site_code passes the domain check');
SELECT throws_ok($$INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('TV100001', 'Escape', '/srv/../etc')$$,
                 '23514', 'invalid server path "/srv/../etc": it contains a . or .. component',
                 'a package whose source directory climbs out is refused at INSERT');
SELECT throws_ok($$INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
                   VALUES ('TV100001', 'A-NAME-LONGER-THAN-15', 'CORP', 'TV1', 'WIN95')$$,
                 '23514', 'invalid NetBIOS name "A-NAME-LONGER-THAN-15"', 'a system with a 21-character name is refused at INSERT');

-------------------------------------------------------------------------------
-- Sites: no cycles in the hierarchy (TV1 > TV2 > TV3)
-------------------------------------------------------------------------------
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES
    ('TV1', 'Validation central', NULL), ('TV2', 'Validation child', 'TV1'), ('TV3', 'Validation grandchild', 'TV2'),
    ('TV4', 'Validation other', NULL);
SELECT throws_ok($$UPDATE smsdist.sites SET parent_site_code = 'TV3' WHERE site_code = 'TV1'$$, '23514',
                 'site TV1 cannot have parent TV3: TV3 is already below TV1', 'a site cannot move below its grandchild');
SELECT throws_ok($$UPDATE smsdist.sites SET parent_site_code = 'TV2' WHERE site_code = 'TV1'$$, '23514',
                 'site TV1 cannot have parent TV2: TV2 is already below TV1', 'a site cannot move below its child');
SELECT throws_ok($$UPDATE smsdist.sites SET parent_site_code = 'TV3' WHERE site_code = 'TV2'$$, '23514',
                 'site TV2 cannot have parent TV3: TV3 is already below TV2', 'a mid-level site cannot move below its child');
SELECT throws_ok($$UPDATE smsdist.sites SET parent_site_code = 'TV2' WHERE site_code = 'TV2'$$, '23514',
                 'site TV2 cannot have parent TV2: TV2 is already below TV2', 'a site cannot be its own parent');
SELECT throws_ok($$INSERT INTO smsdist.sites VALUES ('TV5', 'Self', 'TV5')$$, '23514',
                 'site TV5 cannot have parent TV5: TV5 is already below TV5', 'a new site cannot be its own parent');
SELECT results_eq($$SELECT site_code::text, parent_site_code::text FROM smsdist.sites WHERE site_code LIKE 'TV_' ORDER BY 1$$,
                  $$VALUES ('TV1', NULL::text), ('TV2', 'TV1'), ('TV3', 'TV2'), ('TV4', NULL)$$,
                  'refused moves leave the hierarchy unchanged');
SELECT lives_ok($$UPDATE smsdist.sites SET parent_site_code = 'TV4' WHERE site_code = 'TV1'$$,
                'a central site may move below an unrelated site');
SELECT lives_ok($$UPDATE smsdist.sites SET parent_site_code = 'TV1' WHERE site_code = 'TV3'$$,
                'a grandchild may move up to its grandparent');
SELECT throws_ok($$UPDATE smsdist.sites SET parent_site_code = 'TV3' WHERE site_code = 'TV4'$$, '23514',
                 'site TV4 cannot have parent TV3: TV3 is already below TV4', 'after the moves, TV4 is above TV3 and cannot go below it');
SELECT throws_ok($$DELETE FROM smsdist.sites WHERE site_code = 'TV1'$$, '23503', NULL,
                 'a site with child sites cannot be deleted');

SELECT * FROM finish();
ROLLBACK;
