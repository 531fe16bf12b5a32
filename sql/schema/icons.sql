-- Package icons: a package may name a file of its tree as its icon
-- (packages.icon_file); the Offer Manager writes it as <PACKAGE>.ICO beside
-- the .PKG, and records here what it found (docs/advertisements.md#icons).
-- The icon of each advertised package published at this site, as the Offer
-- Manager last read it from the published tree: its hash and size, or why
-- it was refused (the offer goes out without an icon, and status message
-- 3600 says why, once per new problem).  Rewritten only when it changes.
CREATE TABLE package_icons (
    package_id       sms_id PRIMARY KEY REFERENCES packages ON DELETE CASCADE,
    source_version   integer NOT NULL,
    icon_file        text NOT NULL,
    sha256           text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes            integer CHECK (bytes > 0),
    problem          text,
    checked_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT icon_or_problem CHECK ((sha256 IS NULL) = (bytes IS NULL) AND (sha256 IS NULL) <> (problem IS NULL))
);
COMMENT ON COLUMN package_icons.problem IS
    'why the icon was refused (not found, a link or special file, too large, not an icon): the offer went out without it';
REVOKE ALL ON package_icons FROM PUBLIC;
GRANT SELECT ON package_icons TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_icons', '');
