"""The scan: embed what is new, self-join, mine families and templates, score; and its Ray and re-check paths."""
