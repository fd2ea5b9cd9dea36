"""Flask extensions, created unbound here and attached in `create_app`."""

from flask_babel import Babel
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()
# A ping under 30 s keeps a Chrome MV3 service worker awake: Chrome suspends idle workers after ~30 s.
# manage_session=False: every event re-opens the server-side session from the handshake cookie, so a
# panel socket loses its rights the moment its user signs out or is disabled.
socketio = SocketIO(ping_interval=20, ping_timeout=20, manage_session=False)
