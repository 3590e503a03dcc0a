"""Example assistants for AGENT=package.module:factory (see the README, "Your own assistant")."""
