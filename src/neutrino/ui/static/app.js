/* The page: Keystone sign-in, the topology drawn with cytoscape and redrawn on every revision the server streams,
   hood and trace answered by the server with the CLI's own code. */
"use strict";

const $ = (sel) => document.querySelector(sel);
const STYLE = [
  { selector: "node", style: { label: "data(label)", "text-wrap": "wrap", "text-valign": "center", "font-size": 10,
    "text-halign": "center", shape: "round-rectangle", width: "data(width)", height: "data(height)",
    "background-color": "#eef", "border-width": 3, "border-color": "#999" } },
  { selector: "node[kind='network']", style: { "background-color": "#dde8ff", shape: "rectangle" } },
  { selector: "node[?external]", style: { "background-color": "#ffe2c4" } },
  { selector: "node[kind='router']", style: { shape: "ellipse", "background-color": "#e6ffe6" } },
  { selector: "node[kind='instance']", style: { "background-color": "#fff", "font-weight": "bold" } },
  { selector: "node[kind='dhcp']", style: { "background-color": "#f4f4f4", "font-size": 9 } },
  { selector: "node[kind='secgroup']", style: { shape: "tag", "background-color": "#fff7d6", "font-size": 9 } },
  { selector: "node[kind='host']", style: { shape: "barrel", "background-color": "#eee" } },
  { selector: "node[status='ACTIVE']", style: { "border-color": "#2a9d3a" } },
  { selector: "node[status='DOWN'], node[status='ERROR']", style: { "border-color": "#d62828" } },
  { selector: "node[status='BUILD']", style: { "border-color": "#e9a100" } },
  { selector: "node:selected", style: { "overlay-opacity": 0.15, "overlay-color": "#36c" } },
  { selector: "edge", style: { width: 2, "line-color": "#888", "curve-style": "bezier", label: "data(label)",
    "font-size": 9, "text-background-color": "#fff", "text-background-opacity": 1 } },
  { selector: "edge[kind='gateway']", style: { "line-color": "#e07000", width: 3 } },
  { selector: "edge[kind='secured']", style: { "line-style": "dashed", "line-color": "#c9b000", width: 1 } },
  { selector: "edge[kind='hosted']", style: { "line-style": "dotted", "line-color": "#aaa", width: 1 } },
];
const KINDS = { network: "network", router: "router", instance: "port", port: "port", dhcp: "port" };

let token = null;
let cy = null;
let shape = "";             // the node and edge ids drawn: a new layout only when they change
let revision = null;

function signedIn(t) {
  token = t;
  sessionStorage.setItem("neutrino-token", t);
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#logout").hidden = false;
  whoami();
  refresh().then(watch);
}

function signedOut(message) {
  token = null;
  sessionStorage.removeItem("neutrino-token");
  $("#main").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function api(path) {
  const r = await fetch(path, { headers: { "X-Auth-Token": token } });
  if (r.status === 401) { signedOut("Your session ended; sign in again."); throw new Error("unauthorized"); }
  return r;
}

async function list(collection) {
  const r = await api(`/v2.0/${collection}`);
  if (r.status === 403 || r.status === 404) return [];        // e.g. agents: admin only
  if (!r.ok) throw new Error(`${collection}: HTTP ${r.status}`);
  return (await r.json())[collection.replace(/-/g, "_")];
}

async function whoami() {
  const r = await fetch("/v3/auth/tokens", { headers: { "X-Auth-Token": token, "X-Subject-Token": token } });
  if (r.ok) {
    const t = (await r.json()).token;
    $("#who").textContent = `${t.user.name} in project ${t.project ? t.project.name : "(unscoped)"}`;
  }
}

async function refresh() {
  const names = ["networks", "subnets", "routers", "ports", "floatingips", "security-groups", "agents"];
  const got = await Promise.all(names.map(list));
  const data = {};
  names.forEach((n, i) => { data[n.replace(/-/g, "_")] = got[i]; });
  data.hosts = data.agents.length ? await (await api("/ui/hosts")).json() : {};
  const { elements, items } = Topology.build(data);
  const reshaped = draw(elements);
  inventory(items);
  traceChoices(data.ports);
  if (reshaped) layout();         // after the list below the graph has its height
}

function draw(elements) {
  if (cy === null) {
    cy = cytoscape({ container: $("#graph"), style: STYLE });
    cy.on("tap", "node", (ev) => {
      const d = ev.target.data();
      if (KINDS[d.kind]) hood(d.ref, d.label.split("\n")[0]);
    });
    window.cy = cy;
  }
  const ids = elements.map((e) => e.data.id).sort().join(" ");
  if (ids === shape) {
    for (const e of elements) cy.getElementById(e.data.id).data(e.data);     // labels, status colours
    return false;
  }
  shape = ids;
  cy.elements().remove();
  cy.add(elements);
  return true;
}

/* cytoscape's breadthfirst layout: external networks on top, then routers, tenant networks, ports, groups, hosts. */
function layout() {
  cy.resize();
  const roots = cy.nodes("[?external]");
  cy.layout({ name: "breadthfirst", roots: roots.length ? roots : undefined, spacingFactor: 1.1, padding: 20,
              animate: false }).run();
}

function inventory(items) {
  const ul = $("#inventory");
  ul.replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    li.dataset.id = it.id;
    li.className = `st-${(it.status || "").replace(/\s/g, "-")}`;
    li.textContent = `${it.kind} ${it.name || it.id.slice(0, 8)} ${it.status ? `[${it.status}]` : ""} ${it.text}`;
    const node = cy.getElementById(it.id);
    if (node.length && KINDS[node.data("kind")]) li.onclick = () => hood(node.data("ref"), it.name);
    return li;
  }));
}

function traceChoices(ports) {
  const sel = $("#trace-src");
  const keep = sel.value;
  const opts = [["external", "external"], ...ports.filter((p) => (p.device_owner || "").startsWith("compute:"))
    .map((p) => [p.id, p.name || p.id.slice(0, 8)])];
  sel.replaceChildren(...opts.map(([v, label]) => Object.assign(document.createElement("option"),
                                                                { value: v, textContent: label })));
  if (opts.some(([v]) => v === keep)) sel.value = keep;
}

async function answer(path, out) {
  out.innerHTML = "<p class='hint'>asking the kernel…</p>";
  const r = await api(path);
  if (r.ok) { out.innerHTML = await r.text(); linkObjects(out); return; }
  let message = `HTTP ${r.status}`;
  try { message = (await r.json()).NeutronError.message; } catch (e) { /* not JSON */ }
  out.innerHTML = "";
  out.append(Object.assign(document.createElement("p"), { className: "error", textContent: message }));
}

/* Ids of API objects in the terminal output become links to their hood (and select them in the graph). */
function linkObjects(root) {
  const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode);
  for (const text of texts) {
    const parts = [];
    let last = 0;
    for (const m of text.data.matchAll(uuid)) {
      const node = cy.getElementById(m[0]);
      if (!node.length || !KINDS[node.data("kind")]) continue;
      const a = Object.assign(document.createElement("a"), { href: "#", textContent: m[0], className: "object" });
      a.onclick = (ev) => {
        ev.preventDefault();
        cy.elements().unselect();
        node.select();
        hood(node.data("ref"), node.data("label").split("\n")[0]);
      };
      parts.push(text.data.slice(last, m.index), a);
      last = m.index + m[0].length;
    }
    if (parts.length) text.replaceWith(...parts, text.data.slice(last));
  }
}

function hood(ref, name) {
  $("#hood-title").textContent = `Under the hood: ${name}`;
  return answer(`/ui/hood/${encodeURIComponent(ref)}?as=html`, $("#hood"));
}

function trace(ev) {
  ev.preventDefault();
  const q = new URLSearchParams({ src: $("#trace-src").value, dst: $("#trace-dst").value.trim(),
                                  proto: $("#trace-proto").value, port: $("#trace-port").value.trim(), as: "html" });
  return answer(`/ui/trace?${q}`, $("#trace-out"));
}

/* Server-sent events read with fetch (EventSource cannot send the token header); redraw on each revision. */
async function watch() {
  while (token) {
    try {
      const r = await api("/ui/events");
      if (!r.ok) throw new Error(`events: HTTP ${r.status}`);
      $("#live").className = "on";
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = block.split("\n").find((l) => l.startsWith("data: "));
          if (block.startsWith("event: revision") && data) await revised(data.slice(6));
        }
      }
    } catch (e) {
      if (!token) return;
    }
    $("#live").className = "off";
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

async function revised(rev) {
  $("#revision").textContent = `revision ${rev}`;
  if (rev !== revision) {
    revision = rev;
    await refresh();
  }
}

async function signIn(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { auth: {
    identity: { methods: ["password"], password: { user: { name: f.get("user"), password: f.get("password"),
                                                           domain: { name: f.get("domain") } } } },
    scope: { project: { name: f.get("project"), domain: { name: f.get("domain") } } } } };
  const r = await fetch("/v3/auth/tokens", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(body) });
  if (r.status !== 201) { $("#login-error").textContent = "The user, password or project is wrong."; return; }
  signedIn(r.headers.get("X-Subject-Token"));
}

function start() {
  $("#login").addEventListener("submit", signIn);
  $("#trace").addEventListener("submit", trace);
  $("#logout").addEventListener("click", () => signedOut());
  const m = location.hash.match(/token=([^&]+)/);      // the lab's link: signed in already, token kept off logs
  if (m) history.replaceState(null, "", location.pathname);
  const t = m ? decodeURIComponent(m[1]) : sessionStorage.getItem("neutrino-token");
  if (t) signedIn(t); else signedOut();
}

start();
