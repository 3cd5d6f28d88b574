"""Loading exchange files: readers and row checks (`loader`), prompt normalisation and fingerprints."""
