"""The built-in client page (static files shipped in the package) and its routes."""
