"""Prefect tasks, one module per concern. Each wraps one kind of I/O and returns plain data."""
