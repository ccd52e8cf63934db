"""Hood and trace inside the server: views from the server's own database, kernels read where they are local.

A lab's emulated hosts are network namespaces on the server's machine, so the server reads their kernels as
`neutrino hood` does; outside a lab only a host that is this machine (agent and server side by side) can be read.
Every object the answer is about must be visible to the caller through the API's own policy (get as the caller).
"""
from __future__ import annotations

import socket

from sqlalchemy import select

from neutrino.core import floatingips, networks, ports, routers, views
from neutrino.db import models as m
from neutrino.errors import NotFound, ServiceUnavailable
from neutrino.hood.where import Where, api_summary
from neutrino.lab.paths import Lab

CORE = {"port": ports, "router": routers, "network": networks}


class ServerWhere(Where):
    """Where, as seen from inside the server for one caller (ctx)."""

    def __init__(self, db, settings, ctx):
        self.db, self.settings, self.ctx = db, settings, ctx
        self.lab = Lab(settings.state_dir)
        self._host_ns, self._ovs_rundir, self._views, self._agent = None, None, {}, None
        if self.lab.exists():
            self.hosts = [self.lab.host_name(i) for i in range(1, self.lab.load().hosts + 1)]
        else:
            t = m.Agent.__table__
            self.hosts = db.run(lambda s: sorted({r.host for r in s.execute(select(t.c.host)).all()}))

    def bridge_mappings(self, host: str) -> dict[str, str] | None:
        """What the host's agent reported (Neutron's `configurations` of its L2 agent row)."""
        t = m.Agent.__table__
        rows = self.db.run(lambda s: s.execute(select(t.c.configurations).where(t.c.host == host)).all())
        found = [r.configurations["bridge_mappings"] for r in rows if (r.configurations or {}).get("bridge_mappings")]
        return dict(found[0]) if found else None

    def fetch_view(self, host: str) -> dict:
        return self.db.run(views.compile_view, host, self.settings)

    def host_ns(self, host: str) -> str | None:
        if self.lab.exists():
            return self.lab.host_ns(host)
        if host != socket.gethostname():
            raise ServiceUnavailable(f"the kernel of host {host} is not on this server's machine; run "
                                     f"`neutrino hood` or `neutrino trace` on {host}")
        return None

    def named_port(self, name: str) -> tuple[str, str] | None:
        t = ports.T
        rows = self.db.run(lambda s: [r for r in s.execute(select(t).where(t.c.name == name)).all()
                                      if ports.visible(self.ctx, r)])
        return (rows[0].id, rows[0].host_id) if len(rows) == 1 else None

    def api_object(self, kind: str, ident: str) -> dict:
        """The object as the API renders it to the caller; NotFound when the caller may not see it."""
        core = CORE[kind]
        return api_summary(self.db.run(lambda s: core.render(s, self.ctx, [core.get(s, self.ctx, ident)])[0]))

    def check_address(self, address: str) -> None:
        """Non-admins may trace to their own addresses (a fixed IP of a port or a floating IP they may see) and to
        addresses outside the cloud, never to another project's."""
        if self.ctx.is_admin:
            return
        alloc, fips = m.IPAllocation.__table__, floatingips.T

        def others(s) -> bool:
            fip = s.execute(select(fips).where(fips.c.floating_ip_address == address)).all()
            if fip:                             # its own internal port is nobody's to see
                return any(r.project_id != self.ctx.project_id for r in fip)
            owners = s.execute(select(ports.T).join(alloc, alloc.c.port_id == ports.T.c.id)
                               .where(alloc.c.ip_address == address)).all()
            return not all(self._sees(s, r) for r in owners)

        if self.db.run(others):
            raise NotFound(f"no port or floating IP {address!r}")

    def _sees(self, s, port) -> bool:
        """The caller sees the port, or the router it belongs to (a gateway port on the external network)."""
        for kind, ident in (("port", port.id), ("router", port.device_id)):
            try:
                CORE[kind].get(s, self.ctx, ident)
                return True
            except NotFound:
                pass
        return False

    def find(self, ref: str) -> tuple[str, str, dict]:
        """As Where.find, for objects the caller may see; a miss says nothing of hosts or other projects."""
        try:
            host, kind, obj = super().find(ref)
            self.api_object(kind, obj["id"])
        except NotFound:
            raise NotFound(f"no port, router or network {ref!r}") from None
        return host, kind, obj
