"""Who is asking: the request context every core function receives (project scope, roles)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Context:
    project_id: str | None = None
    user_id: str | None = None
    roles: list[str] = field(default_factory=list)
    is_admin: bool = False
    project_name: str | None = None
    user_name: str | None = None

    @property
    def is_reader_only(self) -> bool:
        """A `reader` with no member/admin role may read but not write."""
        return not self.is_admin and "reader" in self.roles and not ({"member", "admin"} & set(self.roles))

    @classmethod
    def admin(cls, project_id: str | None = None) -> "Context":
        return cls(project_id=project_id, roles=["admin", "member", "reader"], is_admin=True)
