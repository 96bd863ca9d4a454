"""The live status page served by the metrics exporter: its data (`document`) and its HTML (`page`).

The data is ftpwho's JSON for each session (proftpy/who.py, shared with `ftpwho -o json`) plus what a live view
needs: server uptime and configuration file, sessions per class, totals and transfer rates, and one section per
module that declares a `status` reader (mod_ban's bans, mod_delay's table). The page is plain HTML with a little
script: the first data is embedded, so the table is there as soon as the page loads (and in a DOM dump), and the
script fetches `status.json` again every few seconds.
"""
from __future__ import annotations

import html
import json
import time
from typing import Callable

from .. import who
from ..scoreboard import Entry, format_uptime

REFRESH_MS = 2000


def document(entries: list[Entry], server: dict, sections: dict[str, Callable[[], list[dict]]],
             now: float | None = None) -> dict:
    """Everything the page shows, as one JSON-able dict."""
    now = time.time() if now is None else now
    conns = [who.live_connection(e, now) for e in entries]
    moving = [c for c in conns if c["downloading"] or c["uploading"]]
    extra = {}
    for name, reader in sections.items():
        try:
            extra[name] = reader()
        except Exception as e:              # one module's table failing leaves the rest of the page
            extra[name] = [{"error": f"{type(e).__name__}: {e}"}]
    return {
        "server": dict(server, uptime=format_uptime(int(server["started"]), now), now_ms=int(now * 1000)),
        "connections": conns,
        "classes": [{"class": name or "(none)", "sessions": n} for name, n in who.class_counts(entries)],
        "totals": {"sessions": len(conns),
                   "authenticating": sum(1 for c in conns if c["authenticating"]),
                   "idle": sum(1 for c in conns if c["idling"]),
                   "downloading": sum(1 for c in conns if c["downloading"]),
                   "uploading": sum(1 for c in conns if c["uploading"]),
                   "transfer_rate_kbps": round(sum(c["transfer_rate_kbps"] for c in moving), 2)},
        "sections": extra,
    }


def page(doc: dict) -> str:
    """The HTML page with `doc` embedded (escaped for a <script> element)."""
    data = json.dumps(doc).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = html.escape(f"proftpy status - {doc['server'].get('name', '')}")
    return _TEMPLATE.replace("@TITLE@", title).replace("@DATA@", data).replace("@REFRESH@", str(REFRESH_MS))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@TITLE@</title>
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin-top: .5em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; font-size: .9em; }
th { background: #eee; } td.num { text-align: right; }
.bar { background: #ddd; width: 8em; height: .8em; display: inline-block; vertical-align: middle; }
.bar span { background: #4a8; height: 100%; display: block; }
#stamp { color: #777; font-size: .85em; }
</style>
</head>
<body>
<h1 id="title">proftpy</h1>
<p id="summary"></p>
<p id="stamp"></p>
<h2>Sessions</h2>
<table id="sessions"><thead><tr><th>PID</th><th>User</th><th>Client</th><th>Server</th><th>Protocol</th>
<th>Command</th><th>Progress</th><th>KB/s</th><th>Idle</th><th>Connected</th></tr></thead><tbody></tbody></table>
<h2>Classes</h2>
<table id="classes"><thead><tr><th>Class</th><th>Sessions</th></tr></thead><tbody></tbody></table>
<div id="sections"></div>
<script id="data" type="application/json">@DATA@</script>
<script>
"use strict";
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function age(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
  return Math.floor(s / 3600) + "h" + Math.floor(s % 3600 / 60) + "m";
}
function progress(c) {
  const td = el("td");
  if (!(c.downloading || c.uploading)) { td.textContent = ""; return td; }
  const pct = c.transfer_completed;
  let text = c.transfer_bytes + " bytes";
  if (pct !== undefined && pct !== "Inf") {
    const bar = el("span", undefined, "bar"), fill = el("span");
    fill.style.width = Math.min(100, Number(pct)) + "%";
    bar.appendChild(fill); td.appendChild(bar);
    text = " " + pct + "% (" + text + ")";
  }
  td.appendChild(document.createTextNode(text));
  return td;
}
function row(c) {
  const tr = el("tr");
  tr.className = "session"; tr.dataset.pid = c.pid;
  tr.appendChild(el("td", c.pid, "num"));
  tr.appendChild(el("td", c.authenticating ? "(authenticating)" : c.user));
  tr.appendChild(el("td", c.remote_name === c.remote_address ? c.remote_address
                          : c.remote_name + " [" + c.remote_address + "]"));
  tr.appendChild(el("td", (c.server_name || "") + " " + c.local_address));
  tr.appendChild(el("td", c.protocol || ""));
  tr.appendChild(el("td", c.idling ? "idle" : ((c.command || "") + " " + (c.command_args || "")).trim()));
  tr.appendChild(progress(c));
  tr.appendChild(el("td", c.transfer_rate_kbps !== undefined ? c.transfer_rate_kbps.toFixed(2) : "", "num"));
  tr.appendChild(el("td", c.idling ? age(c.idle_seconds) : "", "num"));
  tr.appendChild(el("td", age(c.session_seconds), "num"));
  return tr;
}
function table(rows) {
  const t = el("table");
  if (!rows.length) { t.appendChild(el("tr")).appendChild(el("td", "(empty)")); return t; }
  const keys = Object.keys(rows[0]), head = t.appendChild(el("tr"));
  keys.forEach(k => head.appendChild(el("th", k)));
  rows.forEach(r => { const tr = t.appendChild(el("tr")); keys.forEach(k => tr.appendChild(el("td", r[k]))); });
  return t;
}
function render(d) {
  const s = d.server, t = d.totals;
  document.getElementById("title").textContent = "proftpy " + s.version + " - " + s.name;
  document.getElementById("summary").textContent = "Up for " + s.uptime + " (master pid " + s.pid +
    ", configuration " + s.config_file + "). " + t.sessions + " session(s): " + t.downloading +
    " downloading, " + t.uploading + " uploading, " + t.idle + " idle, " + t.authenticating +
    " authenticating; total rate " + t.transfer_rate_kbps.toFixed(2) + " KB/s.";
  document.getElementById("stamp").textContent = "Updated " + new Date(s.now_ms).toLocaleString();
  const body = document.querySelector("#sessions tbody");
  body.replaceChildren(...d.connections.map(row));
  const classes = document.querySelector("#classes tbody");
  classes.replaceChildren(...d.classes.map(c => {
    const tr = el("tr"); tr.appendChild(el("td", c.class)); tr.appendChild(el("td", c.sessions, "num")); return tr;
  }));
  const sections = document.getElementById("sections");
  sections.replaceChildren();
  Object.keys(d.sections).forEach(name => {
    sections.appendChild(el("h2", name));
    sections.appendChild(table(d.sections[name]));
  });
}
render(JSON.parse(document.getElementById("data").textContent));
setInterval(() => {
  fetch("status.json", {credentials: "same-origin", cache: "no-store"})
    .then(r => r.ok ? r.json() : Promise.reject(r.status)).then(render)
    .catch(e => { document.getElementById("stamp").textContent = "Refresh failed: " + e; });
}, @REFRESH@);
</script>
</body>
</html>
"""
