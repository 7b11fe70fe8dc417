"""E-mail: what a recipient reads, rendered, formatted and encoded (no I/O)."""
