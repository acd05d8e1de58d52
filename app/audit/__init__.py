"""The audit log: who did what security-relevant thing, to what, from where, and when."""
