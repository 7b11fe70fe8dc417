"""Local stand-ins for production services (embedded PostgreSQL, SMTP sink) and the demo."""
