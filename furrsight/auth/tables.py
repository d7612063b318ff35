"""Accounts, API tokens and the audit log."""

from piccolo.columns import JSON, Boolean, ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class User(Table, tablename="users"):
    id = Serial(primary_key=True, db_column_name="id")
    username = Varchar(length=64, unique=True)
    role = Varchar(length=16, default="viewer")  # viewer < curator < admin
    password_hash = Text(null=True, default=None)  # argon2; None for single sign-on accounts
    oidc_subject = Varchar(length=255, null=True, default=None, unique=True)  # "issuer|sub"
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)


class ApiToken(Table, tablename="api_tokens"):
    id = Serial(primary_key=True, db_column_name="id")
    user = ForeignKey(references=User)
    label = Varchar(length=100, default="")
    token_hash = Varchar(length=64, unique=True)  # SHA-256 of the token; the token itself is never stored
    prefix = Varchar(length=16, default="")  # the first characters, to recognise a token in lists
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class AuditEntry(Table, tablename="audit_log"):
    id = Serial(primary_key=True, db_column_name="id")
    at = Timestamptz(default=TimestamptzNow(), index=True)
    actor = Varchar(length=64, null=True, default=None)
    action = Varchar(length=32, index=True)
    target = Varchar(length=128, null=True, default=None)
    address = Varchar(length=64, null=True, default=None)
    detail = JSON(default="{}")
