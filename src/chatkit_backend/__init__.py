"""chatkit-backend: a self-hosted ChatKit server on SQL with any LiteLLM model."""
