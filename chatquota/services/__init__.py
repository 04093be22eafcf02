"""Business rules and transactions. Plain functions over a session; no Flask."""
