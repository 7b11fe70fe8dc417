"""The one-click unsubscribe (RFC 8058): tokens, the service and its server."""
