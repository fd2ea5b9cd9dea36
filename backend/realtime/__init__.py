"""Socket.IO: `/agent` for extensions (device token), `/panel` for signed-in panel users.

Rooms in `/panel`: `user:<id>`, `department:<id>` (staff), `managers:<tenant id>` (owners and admins),
`conversation:<id>`.
Rooms in `/agent`: `device:<id>`, `agent:<id>`, `tenant:<id>` (the tenant's devices). Emitting goes
through the configured message queue, so any server process reaches every room. What services announce
(`backend.services.signals`) is turned into pushes here, after the commit (`broadcast.after_commit`).
"""

from backend.realtime import agent_events, grant_events, panel_events, panel_push  # noqa: F401  (handlers register on import)
