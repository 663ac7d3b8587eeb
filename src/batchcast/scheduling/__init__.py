"""Deciding which runs are due and which start next: the cron plan, the SQLite ledger, the pure rules."""
