"""Budgets, rate limits and spend per key and team: admission before the upstream, settlement after
(``app.calls.limits`` holds the data), counted in process, in Redis or in PostgreSQL."""
