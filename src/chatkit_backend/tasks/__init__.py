"""The todo tasks domain: table, pydantic contract, service and REST routes."""
