-- The dependency edges between collections: C depends on D if it includes,
-- excludes or is limited by D.  Subcollections (for advertisements) too
-- must not loop.
CREATE VIEW collection_dependencies AS
SELECT collection_id, ref_collection_id AS depends_on, rule_type::text AS how
  FROM smsdist.collection_rules WHERE rule_type IN ('include', 'exclude')
UNION ALL
SELECT collection_id, limiting_collection_id, 'limit'
  FROM smsdist.collections WHERE limiting_collection_id IS NOT NULL;
REVOKE ALL ON collection_dependencies FROM PUBLIC;
GRANT SELECT ON collection_dependencies TO smsdist_reader;
