"""First-start identity data, as DevStack leaves it: domain `Default` (id `default`), roles admin/member/reader,
project+user `admin` (admin role) and project+user `demo` (member role).

Both users get the same password: settings.admin_password, or a generated one that `bootstrap` returns so the
server can print it once. Idempotent: whatever exists is kept as it is (passwords are never reset); only what is
missing is created."""
from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select

from neutrino.db.engine import serialize_setup
from neutrino.db.identity import Domain, Project, Role, RoleAssignment, User
from neutrino.identity.passwords import hash_password

DEFAULT_DOMAIN_ID = "default"
ROLES = ("admin", "member", "reader")
ACCOUNTS = (("admin", "admin"), ("demo", "member"))   # (project and user name, role)


def new_id() -> str:
    return uuid.uuid4().hex


def bootstrap(db, settings) -> str | None:
    """Create what is missing; return the generated password when users were created without a configured one."""
    password = settings.admin_password or secrets.token_hex(12)
    password_hash = hash_password(password)

    def _bootstrap(s) -> bool:
        serialize_setup(s)                   # servers starting together on one database: one bootstraps
        if s.get(Domain, DEFAULT_DOMAIN_ID) is None:
            s.add(Domain(id=DEFAULT_DOMAIN_ID, name="Default", description="The default domain", enabled=True))
        roles = {}
        for name in ROLES:
            roles[name] = s.scalar(select(Role).where(Role.name == name)) or Role(id=new_id(), name=name)
            s.add(roles[name])
        created = False
        for name, role in ACCOUNTS:
            project = s.scalar(select(Project).where(Project.domain_id == DEFAULT_DOMAIN_ID, Project.name == name))
            if project is None:
                project = Project(id=new_id(), domain_id=DEFAULT_DOMAIN_ID, name=name, enabled=True,
                                  description=f"Bootstrap project {name}")
                s.add(project)
            user = s.scalar(select(User).where(User.domain_id == DEFAULT_DOMAIN_ID, User.name == name))
            if user is None:
                user = User(id=new_id(), domain_id=DEFAULT_DOMAIN_ID, name=name, enabled=True,
                            password_hash=password_hash, default_project_id=project.id)
                s.add(user)
                created = True
            s.flush()
            grant = RoleAssignment(user_id=user.id, project_id=project.id, role_id=roles[role].id)
            if s.get(RoleAssignment, (grant.user_id, grant.project_id, grant.role_id)) is None:
                s.add(grant)
        return created
    created = db.run(_bootstrap)
    return password if created and not settings.admin_password else None
