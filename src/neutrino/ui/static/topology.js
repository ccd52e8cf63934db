/* The topology as graph elements, from what the Networking API returns to the signed-in user (pure: no DOM). */
"use strict";

const Topology = (() => {
  const short = (id) => (id || "").slice(0, 8);
  const ips = (port) => (port.fixed_ips || []).map((f) => f.ip_address);
  const isInstance = (p) => (p.device_owner || "").startsWith("compute:");

  function node(id, kind, label, extra) {
    const lines = label.split("\n");          // box sized to its text (font-size 10: ~6 px a character)
    const size = { width: 16 + 6 * Math.max(...lines.map((l) => l.length)), height: 12 + 13 * lines.length };
    return { group: "nodes", data: Object.assign({ id, kind, label }, size, extra || {}) };
  }
  function edge(source, target, kind, label) {
    return { group: "edges", data: { id: `${kind}:${source}:${target}`, source, target, kind, label: label || "" } };
  }

  /* data: {networks, subnets, routers, ports, floatingips, security_groups, agents} as the API lists them, and
     hosts (admins: /ui/hosts, what each host's agent reports about itself). */
  function build(data) {
    const els = [];
    const items = [];            // the same objects as text, for the list under the graph
    const nets = new Set(data.networks.map((n) => n.id));
    const subnetsOf = {};
    for (const s of data.subnets) (subnetsOf[s.network_id] = subnetsOf[s.network_id] || []).push(s);
    const fipOf = {};
    for (const f of data.floatingips) if (f.port_id) (fipOf[f.port_id] = fipOf[f.port_id] || []).push(f);
    const hosts = {};
    for (const a of data.agents) (hosts[a.host] = hosts[a.host] || []).push(a);

    for (const n of data.networks) {
      const ext = n["router:external"];
      const cidrs = (subnetsOf[n.id] || []).map((s) => `${s.name || short(s.id)} ${s.cidr}`);
      const label = [n.name || short(n.id), ...cidrs].join("\n");
      els.push(node(n.id, "network", label, { status: n.status, external: ext, ref: n.id }));
      items.push({ id: n.id, kind: ext ? "external network" : "network", name: n.name, status: n.status,
                   text: cidrs.join(", ") });
    }
    for (const r of data.routers) {
      const gw = r.external_gateway_info;
      const gwIps = gw ? (gw.external_fixed_ips || []).map((f) => f.ip_address) : [];
      els.push(node(r.id, "router", [r.name || short(r.id), ...gwIps.map((ip) => `gw ${ip}`)].join("\n"),
                    { status: r.status, ref: r.id }));
      if (gw && nets.has(gw.network_id)) els.push(edge(r.id, gw.network_id, "gateway", gwIps.join(", ")));
      items.push({ id: r.id, kind: "router", name: r.name, status: r.status,
                   text: gwIps.length ? `gateway ${gwIps.join(", ")}` : "no gateway" });
    }
    const groups = new Set();
    for (const p of data.ports) {
      const owner = p.device_owner || "";
      const host = p["binding:host_id"];
      if (owner === "network:router_interface" || owner === "network:router_interface_distributed") {
        if (nets.has(p.network_id)) els.push(edge(p.device_id, p.network_id, "interface", ips(p).join(", ")));
        if (host && hosts[host]) els.push(edge(p.device_id, `host:${host}`, "hosted", ""));
        continue;
      }
      if (owner === "network:router_gateway" || owner === "network:floatingip") continue;
      const fips = (fipOf[p.id] || []).map((f) => f.floating_ip_address);
      const dhcp = owner === "network:dhcp";
      const name = dhcp ? "DHCP" : (p.name || short(p.id));
      const label = [name, ...ips(p), ...fips.map((ip) => `FIP ${ip}`)].join("\n");
      els.push(node(p.id, dhcp ? "dhcp" : isInstance(p) ? "instance" : "port", label,
                    { status: p.status, ref: p.id, name }));
      if (nets.has(p.network_id)) els.push(edge(p.id, p.network_id, "attached", ""));
      if (host && hosts[host]) els.push(edge(p.id, `host:${host}`, "hosted", ""));
      for (const sg of p.security_groups || []) {
        groups.add(sg);
        els.push(edge(p.id, `sg:${sg}`, "secured", ""));
      }
      items.push({ id: p.id, kind: dhcp ? "DHCP port" : isInstance(p) ? "instance" : "port", name,
                   status: p.status, text: [...ips(p), ...fips.map((ip) => `floating IP ${ip}`)].join(", ") });
    }
    for (const sg of data.security_groups) {
      if (!groups.has(sg.id)) continue;
      const rules = (sg.security_group_rules || []).filter((r) => r.direction === "ingress").map(ruleText);
      els.push(node(`sg:${sg.id}`, "secgroup", [`SG ${sg.name}`, ...rules].join("\n"), { ref: sg.id }));
      items.push({ id: sg.id, kind: "security group", name: sg.name, status: "", text: rules.join(", ") });
    }
    for (const [host, agents] of Object.entries(hosts)) {
      const alive = agents.every((a) => a.alive);
      const lines = agents.map((a) => `${a.alive ? "✓" : "✗"} ${a.agent_type}`);
      const seen = (data.hosts || {})[host];          // the agent's own report: lag behind the view, drift
      if (seen) lines.push(`view lag ${seen.lag}, drift repaired ${seen.drift}×, errors ${seen.errors}`);
      const status = !alive ? "DOWN" : seen && (seen.lag > 0 || seen.errors > 0) ? "BUILD" : "ACTIVE";
      els.push(node(`host:${host}`, "host", [host, ...lines].join("\n"), { status }));
      items.push({ id: `host:${host}`, kind: "host", name: host,
                   status: !alive ? "agent down" : status === "BUILD" ? "catching up" : "alive", text: lines.join(", ") });
    }
    const ids = new Set(els.filter((e) => e.group === "nodes").map((e) => e.data.id));
    return { elements: els.filter((e) => e.group === "nodes" || (ids.has(e.data.source) && ids.has(e.data.target))),
             items };
  }

  function ruleText(r) {
    const proto = r.protocol || "any";
    const range = r.port_range_min == null ? "" :
      r.port_range_min === r.port_range_max ? `/${r.port_range_min}` : `/${r.port_range_min}-${r.port_range_max}`;
    const from = r.remote_ip_prefix || (r.remote_group_id ? `SG ${short(r.remote_group_id)}` : "any");
    return `in ${r.ethertype} ${proto}${range} from ${from}`;
  }

  return { build };
})();
