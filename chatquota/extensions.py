"""Flask extensions, created unbound and bound in `create_app`."""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every model."""


# Services commit and then still read what they wrote (e.g. the new event).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
