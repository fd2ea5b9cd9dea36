"""The service layer: functions named by verbs that take the acting user explicitly.

Services flush but do not commit; the caller (a view, an event handler, a CLI command) owns the
transaction. They never touch `flask.session`, requests or sockets.
"""
