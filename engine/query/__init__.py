"""The read side: who-else lookups, the sender index, the analyst views, marks, exports and reports, and
the online checks a service holds (checker, snapshot, delta index)."""
