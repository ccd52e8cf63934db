"""The Keystone v3 subset over HTTP, shaped as Keystone answers it (so `openstack project/user/role ...` work
unmodified). This module is the URL map only: it assembles `router` (mounted by neutrino.api.app) from the modules
that hold the handlers; every failure is answered in Keystone's error shape (errors.KeystoneRoute)."""
from __future__ import annotations

from fastapi import APIRouter

from neutrino.identity import assignments, auth_routes, discovery, users
from neutrino.identity.domains import DOMAINS
from neutrino.identity.errors import KeystoneRoute
from neutrino.identity.projects import PROJECTS
from neutrino.identity.roles import ROLES

GRANTS = "/projects/{project_id}/users/{user_id}/roles"
GRANT = GRANTS + "/{role_id}"

router = APIRouter(prefix="/v3", route_class=KeystoneRoute)
for path, method, handler, status in (
        ("", "GET", discovery.version, None),
        ("/", "GET", discovery.version, None),
        ("/auth/tokens", "POST", auth_routes.create_token, None),
        ("/auth/tokens", "GET", auth_routes.validate_token, None),
        ("/auth/tokens", "HEAD", auth_routes.check_token, None),
        ("/auth/tokens", "DELETE", auth_routes.revoke_token, None),
        ("/auth/catalog", "GET", auth_routes.auth_catalog, None),
        ("/auth/projects", "GET", auth_routes.auth_projects, None),
        ("/services", "GET", discovery.services, None),
        ("/endpoints", "GET", discovery.endpoints, None),
        ("/regions", "GET", discovery.regions, None),
        ("/users/{user_id}/password", "POST", users.change_password, 204),
        ("/users/{user_id}/projects", "GET", users.list_user_projects, None),
        (GRANTS, "GET", assignments.list_grants, None),
        (GRANT, "PUT", assignments.create_grant, 204),
        (GRANT, "HEAD", assignments.check_grant, None),
        (GRANT, "DELETE", assignments.revoke_grant, 204),
        ("/role_assignments", "GET", assignments.list_role_assignments, None)):
    router.add_api_route(path, handler, methods=[method], status_code=status)
for resource in (DOMAINS, PROJECTS, users.USERS, ROLES):
    resource.routes(router)
