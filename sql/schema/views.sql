-- Views for operators: what the workers do, and how jobs, builds,
-- advertisements and links are getting on.
\ir ../views/workers.sql
\ir ../views/job_overview.sql
\ir ../views/job_progress.sql
\ir ../views/job_status.sql
\ir ../views/build_progress.sql
\ir ../views/advertisement_status.sql
\ir ../views/collection_dependencies.sql
