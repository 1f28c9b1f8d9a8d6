// pyorchestrate dashboard: live updates over server-sent events. Every value goes
// into the page as text (textContent), never as HTML.
(function () {
  "use strict";
  var body = document.body;
  var page = body.dataset.page;
  var agentName = body.dataset.agent;
  var SEVERITY = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

  // ---------------------------------------------------------------- theme
  var themeButton = document.getElementById("theme");
  if (themeButton) {
    themeButton.addEventListener("click", function () {
      var root = document.documentElement;
      var dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("pyorchestrate-theme", root.dataset.theme);
    });
  }

  // ---------------------------------------------------------------- formatting
  function duration(seconds) {
    if (seconds === null || seconds === undefined || seconds === "" || isNaN(seconds)) return "";
    var s = Math.floor(Number(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), r = s % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + r + "s";
    return r + "s";
  }
  function nextRun(seconds) {
    if (seconds === null || seconds === undefined) return "";
    return "in " + Number(seconds).toFixed(1) + "s";
  }
  function exitText(agent) {
    if (agent.signal) return String(agent.signal);
    if (agent.exit_code === null || agent.exit_code === undefined) return "";
    return String(agent.exit_code);
  }
  function clock(iso) {
    if (!iso) return "";
    var t = String(iso);
    var i = t.indexOf("T");
    return i >= 0 ? t.slice(i + 1, i + 13) : t;
  }
  function details(data) {
    if (!data) return "";
    return Object.keys(data).sort().filter(function (k) {
      return k !== "traceback" && k !== "output_tail";
    }).map(function (k) { return k + "=" + data[k]; }).join(" ");
  }
  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }
  function stateBadge(state) {
    var span = document.createElement("span");
    span.className = "state state-" + String(state).replace(/[^A-Z_]/g, "");
    span.textContent = String(state);
    return span;
  }

  // ---------------------------------------------------------------- connection
  var connection = document.getElementById("connection");
  var banner = document.getElementById("banner");
  var wasConnected = connection && connection.classList.contains("connected");
  function setConnected(connected, error) {
    if (!connection) return;
    connection.classList.toggle("connected", connected);
    connection.classList.toggle("disconnected", !connected);
    connection.textContent = connected ? "live" : "disconnected";
    banner.hidden = connected;
    if (!connected) {
      banner.textContent = "Disconnected from the orchestrator" +
        (error ? ": " + error : "") + ". Reconnecting by itself…";
    }
    if (connected && !wasConnected && page !== "overview" && page !== "events") {
      // A page rendered while disconnected has nothing to update: fetch it anew.
      window.location.reload();
    }
    wasConnected = connected;
  }

  // ---------------------------------------------------------------- agents
  function agentUrl(name) {
    return "/agents/" + encodeURIComponent(name).replace(/%2F/g, "/");
  }
  function renderOverview(ps) {
    var tbody = document.querySelector("#agents tbody");
    if (!tbody) return;
    var rows = document.createDocumentFragment();
    var failing = 0;
    (ps.agents || []).forEach(function (agent) {
      var tr = document.createElement("tr");
      tr.dataset.agent = agent.name;
      var link = document.createElement("a");
      link.href = agentUrl(agent.name);
      link.textContent = agent.name;
      cell(tr, "").appendChild(link);
      cell(tr, "").appendChild(stateBadge(agent.lifecycle_state));
      cell(tr, agent.alive ? agent.pid : "");
      cell(tr, duration(agent.uptime));
      cell(tr, agent.restarts || 0);
      cell(tr, exitText(agent));
      cell(tr, nextRun(agent.next_start_in));
      cell(tr, agent.last_error || "", "error");
      if (["FAILED", "FATAL", "BACKOFF", "QUARANTINED"].indexOf(agent.lifecycle_state) >= 0) failing++;
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
    var counters = {
      total: (ps.agents || []).length, running: ps.running_count,
      max_workers: ps.max_workers === null ? "∞" : ps.max_workers,
      waiting: ps.waiting_count, failing: failing
    };
    Object.keys(counters).forEach(function (key) {
      var el = document.querySelector('[data-counter="' + key + '"]');
      if (el) el.textContent = String(counters[key]);
    });
  }
  function renderAgent(ps) {
    var agent = (ps.agents || []).filter(function (a) { return a.name === agentName; })[0];
    if (!agent) return;
    var badge = document.getElementById("agent-state");
    if (badge) badge.replaceWith(Object.assign(stateBadge(agent.lifecycle_state), { id: "agent-state" }));
    var fields = {
      pid: agent.alive ? agent.pid : "", uptime: duration(agent.uptime), restarts: agent.restarts || 0,
      next_start_in: nextRun(agent.next_start_in), exit: exitText(agent),
      fatal_reason: agent.fatal_reason || "", last_error: agent.last_error || ""
    };
    Object.keys(fields).forEach(function (key) {
      var el = document.querySelector('[data-field="' + key + '"]');
      if (el) el.textContent = fields[key] === null || fields[key] === undefined ? "" : String(fields[key]);
    });
  }

  // ---------------------------------------------------------------- events
  var follow = document.getElementById("follow");
  var minimum = document.getElementById("severity");
  function appendEvent(event) {
    var tbody = document.querySelector("#events tbody");
    if (!tbody) return;
    if (page === "events" && follow && !follow.checked) return;
    if (minimum && (SEVERITY[event.severity] || 0) < (SEVERITY[minimum.value] || 0)) return;
    var tr = document.createElement("tr");
    tr.className = "sev-" + String(event.severity).replace(/[^A-Z]/g, "");
    cell(tr, event.seq);
    cell(tr, clock(event.timestamp));
    cell(tr, event.agent || "");
    cell(tr, event.event_name);
    cell(tr, event.severity);
    cell(tr, details(event.data), "details");
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.children.length > 500) tbody.removeChild(tbody.lastChild);
  }

  // ---------------------------------------------------------------- actions
  // The token is asked once and kept in this tab's sessionStorage: never in a URL
  // or a cookie. Every action is a POST with "Authorization: Bearer".
  function token() {
    var value = sessionStorage.getItem("pyorchestrate-token");
    if (!value) {
      value = window.prompt("Dashboard token (kept in this tab only):");
      if (!value) return null;
      sessionStorage.setItem("pyorchestrate-token", value);
    }
    return value;
  }
  function post(url, body, label, done) {
    var bearer = token();
    if (!bearer) return;
    var result = document.getElementById("action-result");
    if (result) result.textContent = label + "…";
    var headers = { "Authorization": "Bearer " + bearer };
    if (body !== null) headers["Content-Type"] = "application/json";
    fetch(url, {
      method: "POST", headers: headers, credentials: "omit",
      body: body === null ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (response.status === 401) sessionStorage.removeItem("pyorchestrate-token");
        var text = response.ok ? (data.message || "done")
          : (data.detail && data.detail.map ? data.detail.map(function (d) {
              return d.loc[d.loc.length - 1] + ": " + d.msg;
            }).join("; ") : (data.detail || data.error || response.status));
        if (result) result.textContent = String(text);
        if (response.ok && done) done(data);
      });
    }).catch(function (err) { if (result) result.textContent = String(err); });
  }
  var actions = document.getElementById("actions");
  if (actions) {
    actions.addEventListener("click", function (e) {
      var button = e.target.closest("button[data-action]");
      if (button) {
        post("/api/agents/" + encodeURIComponent(agentName) + "/" + button.dataset.action,
          null, button.dataset.action);
        return;
      }
      var alert = e.target.closest("button[data-alert-action]");
      if (!alert) return;
      var body = { kind: "agent", value: agentName };
      if (alert.dataset.alertAction === "mute") body.seconds = Number(alert.dataset.seconds);
      post("/api/alerts/" + alert.dataset.alertAction, body, alert.dataset.alertAction,
        function () { window.location.reload(); });
    });
  }
  var muteForm = document.getElementById("mute-form");
  if (muteForm) {
    muteForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var form = new FormData(muteForm);
      post("/api/alerts/mute", {
        kind: form.get("kind"), value: form.get("value"),
        seconds: Number(form.get("seconds")), reason: form.get("reason") || null
      }, "mute", function () { window.location.reload(); });
    });
  }
  var mutes = document.getElementById("mutes");
  if (mutes) {
    mutes.addEventListener("click", function (e) {
      var button = e.target.closest("button[data-alert-action]");
      if (!button) return;
      var row = button.closest("tr");
      post("/api/alerts/unmute", { kind: row.dataset.kind, value: row.dataset.value },
        "unmute", function () { window.location.reload(); });
    });
  }

  // ---------------------------------------------------------------- alerts
  function stamp(epoch) {
    if (epoch === null || epoch === undefined) return "";
    var d = new Date(epoch * 1000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }
  function count(value) { return value === null || value === undefined ? "–" : value; }
  function emptyRow(tbody, columns, text) {
    var tr = document.createElement("tr");
    cell(tr, text, "muted").colSpan = columns;
    tbody.appendChild(tr);
  }
  function renderAlerts(data) {
    var problem = document.getElementById("alerts-live-error");
    if (problem) {
      problem.hidden = !data.error;
      problem.textContent = data.error || "";
    }
    if (data.error) return;
    var detail = document.getElementById("alerts-detail");
    if (detail) detail.textContent = data.detail || "";
    var channels = document.querySelector("#channels tbody");
    if (channels) {
      channels.replaceChildren();
      (data.channels || []).forEach(function (c) {
        var tr = document.createElement("tr");
        tr.dataset.channel = c.channel;
        cell(tr, c.channel);
        [["sent"], ["failed"], ["retried"], ["queued"], ["dropped"], ["suppressed"]].forEach(function (k) {
          var td = cell(tr, count(c[k[0]]), k[0] === "failed" && c.failed ? "error" : "");
          td.dataset.count = k[0];
        });
        var o = c.outbox || {};
        cell(tr, (o.pending || 0) + " pending, " + (o.failed || 0) + " failed, " + (o.dead || 0) + " dead")
          .dataset.count = "outbox";
        cell(tr, stamp(c.last_success));
        cell(tr, c.last_error || "", "error");
        cell(tr, c.running ? "running" : (c.running === false ? "stopped" : ""));
        channels.appendChild(tr);
      });
      if (!channels.children.length) emptyRow(channels, 11, "No channel has saved its counters yet.");
    }
    var mutes = document.querySelector("#mutes tbody");
    if (mutes) {
      var canUnmute = !!document.getElementById("mute-form");
      var now = Date.now() / 1000;
      mutes.replaceChildren();
      (data.mutes || []).forEach(function (m) {
        var tr = document.createElement("tr");
        tr.dataset.kind = m.kind;
        tr.dataset.value = m.value;
        cell(tr, m.kind);
        cell(tr, m.value);
        var until = cell(tr, m.until === null ? "unmuted" : stamp(m.until) + " ");
        if (m.until !== null) {
          var left = document.createElement("span");
          left.className = "muted";
          left.textContent = "(" + duration(Math.max(0, m.until - now)) + " left)";
          until.appendChild(left);
        }
        cell(tr, stamp(m.created));
        cell(tr, m.reason || "");
        if (canUnmute) {
          var button = document.createElement("button");
          button.type = "button";
          button.className = "unmute";
          button.dataset.alertAction = "unmute";
          button.textContent = "Unmute";
          cell(tr, "").appendChild(button);
        }
        mutes.appendChild(tr);
      });
      if (!mutes.children.length) emptyRow(mutes, 6, "Nothing is muted.");
    }
    var outbox = document.querySelector("#outbox tbody");
    if (outbox) {
      outbox.replaceChildren();
      (data.outbox || []).forEach(function (r) {
        var tr = document.createElement("tr");
        tr.className = "outbox-" + String(r.state).replace(/[^a-z]/g, "");
        [r.id, r.channel, r.state, r.attempts, r.agent || "", r.event || "", r.title || "",
          stamp(r.created)].forEach(function (v) { cell(tr, v); });
        cell(tr, r.last_error || "", "error");
        outbox.appendChild(tr);
      });
      if (!outbox.children.length) emptyRow(outbox, 9, "The outbox is empty: everything was delivered.");
      var total = data.outbox_total || 0, shown = (data.outbox || []).length;
      var heading = document.getElementById("outbox-count");
      if (heading) {
        heading.textContent = "(" + total + " row" + (total === 1 ? "" : "s") +
          (total > shown ? ", the oldest " + shown + " shown" : "") + ")";
      }
    }
  }

  // ---------------------------------------------------------------- stream
  var url = body.dataset.stream;
  if (url && window.EventSource) {
    var source = new EventSource(url);
    source.addEventListener("status", function (e) {
      var data = JSON.parse(e.data);
      setConnected(data.connected, data.error);
    });
    source.addEventListener("agents", function (e) {
      var data = JSON.parse(e.data);
      if (page === "overview") renderOverview(data);
      else if (page === "agent") renderAgent(data);
    });
    source.addEventListener("event", function (e) { appendEvent(JSON.parse(e.data)); });
    source.addEventListener("alerts", function (e) { renderAlerts(JSON.parse(e.data)); });
    source.onerror = function () {
      setConnected(false, "the dashboard server does not answer");
    };
  }
})();
