"""The agent side: model selection, the offline model and the todo agent."""
