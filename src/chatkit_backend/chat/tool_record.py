"""The hidden thread item that records one tool call (written by agent/todo_tools.py).

It lets history replay the call to the model (chat/history.py) and the REST API show
it (chat/conversations.py); it lives apart so the API does not import the Agents SDK.
"""

# The `kind` of such a HiddenContextItem's content.
TOOL_RECORD = "tool_call"
