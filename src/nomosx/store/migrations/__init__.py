"""Alembic migrations of the NomosX schema.

``HEAD_REVISION`` lets start-up skip alembic entirely when the schema is current; a test
keeps it equal to the script directory's head.
"""

HEAD_REVISION = "0005"
