"""The ChatKit side: store, server, history, event fixes and the HTTP routes."""
