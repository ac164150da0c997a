"""Alembic migrations of the roster store (run through roster.schema, never by hand).

`versions/` holds one file per revision.  0001 is the schema as of the first release with
migrations, reached from an empty database or from a database made by any earlier release;
later revisions are ordinary Alembic revisions.  docs/deploy.md "Upgrades" says how to add one.
"""
