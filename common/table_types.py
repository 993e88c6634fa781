"""What every table module shares: the one MetaData and the column types of ids and names."""

from sqlalchemy import MetaData, String

metadata = MetaData()

ID = String(200)  # ids from ACD exports: long enough for joined keys ("AA0101|34536|990201")
NAME = String(100)
