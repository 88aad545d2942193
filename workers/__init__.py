"""Event-log consumer groups, one handler module per topic family."""
