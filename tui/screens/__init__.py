"""One screen per pivot: overview, search, prompt, account, ring (and the mark dialog)."""
