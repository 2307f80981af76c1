"""The centre's schema migrations (Alembic): env.py, the revisions in
versions/ and the frozen schema of the first release they start from.
dashboard/migrate.py runs them; docs/centre.md says how to add one."""
