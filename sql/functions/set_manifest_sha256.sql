-- package_builds.manifest_sha256: the SHA-256 of the version's manifest,
-- the package hash that every PCM file and policy carries (live_run_jobs(),
-- policy_advertisements()).  Kept with the row whenever the manifest is
-- written, so that a policy request does not hash a manifest of a line per
-- file (300 kB for 5,000 files, 0.6 ms) for each advertisement it names.
-- Set from the manifest whatever a writer put in the column.
CREATE OR REPLACE FUNCTION set_manifest_sha256() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.manifest_sha256 := encode(sha256(convert_to(NEW.manifest, 'UTF8')), 'hex');
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION set_manifest_sha256() FROM PUBLIC;
