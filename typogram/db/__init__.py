"""SQL schema, migrations and the database handle."""
