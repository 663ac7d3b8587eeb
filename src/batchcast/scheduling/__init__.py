"""Deciding which runs are due: cron plans and the SQLite ledger of every logical date."""
