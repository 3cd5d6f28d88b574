"""The read side: who-else lookups, the sender index, the analyst views, marks, exports and reports."""
