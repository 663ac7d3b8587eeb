"""Runs: ids, manifests and their seals, the commit step, the artifact store, aliases, promotion."""
