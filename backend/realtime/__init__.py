"""Socket.IO: `/agent` for extensions (device token), `/panel` for signed-in panel users.

Rooms: `tenant:<id>` and `department:<id>` (staff only), `user:<id>`, `agent:<id>`, `device:<id>`,
`conversation:<id>`. Emitting goes
through the configured message queue, so any server process reaches every room.
"""

from backend.realtime import agent_events, panel_events  # noqa: F401  (handlers register on import)
