"""Identity tables (Keystone v3 subset) on the shared metadata: domains own projects and users; roles are global;
a role assignment grants a user a role on a project; tokens are stored by the sha256 of the secret only."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from neutrino.db.models import Base

ID = String(64)


class Domain(Base):
    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uniq_projects0domain0name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uniq_users0domain0name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    default_project_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("projects.id", ondelete="SET NULL"), nullable=True)


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, ForeignKey("projects.id", ondelete="CASCADE"),
                                            primary_key=True, index=True)
    role_id: Mapped[str] = mapped_column(ID, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)


class Token(Base):
    """An issued token: `id` is sha256(secret) in hex; `roles` is the [{id, name}] snapshot taken at issue."""
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True)
    roles: Mapped[list] = mapped_column(JSON, default=list)
    methods: Mapped[list] = mapped_column(JSON, default=list)
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
