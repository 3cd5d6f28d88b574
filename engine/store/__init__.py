"""The workspace: its DuckDB database (the system of record), numbered migrations, and the vector shards."""
