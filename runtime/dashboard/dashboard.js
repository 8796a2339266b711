// gdlua's dashboard: reads /status.json and /history.json every
// REFRESH_MS and draws a table of the jobs, a chart per job (dygraphs) and
// the last errors. Every text from the server goes in as textContent.
// With --http_token, open the page as /#token=TOKEN: the fragment never
// leaves the browser, and the token is sent as "Authorization: Bearer".
"use strict";

const REFRESH_MS = 2000;
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const charts = new Map(); // job name -> { div, graph }
let updates = 0;

async function get(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + r.statusText);
  return r.json();
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function jobRows(status) {
  return status.jobs.map((j) => {
    const tr = document.createElement("tr");
    tr.dataset.job = j.name;
    const restarts = Object.values(j.restarts).reduce((a, b) => a + b, 0);
    cell(tr, j.name);
    [j.processes, j.min_processes, j.max_processes, j.busy, j.processes - j.busy, j.queue, j.done,
     j.failed, j.timeouts, j.poisoned, restarts, j.mean_ms.toFixed(1), j.p99_ms.toFixed(1)]
      .forEach((v) => cell(tr, String(v)));
    return tr;
  });
}

function errorRows(status) {
  return status.jobs.filter((j) => j.last_error_message !== "")
    .sort((a, b) => (a.last_error < b.last_error ? 1 : -1))
    .map((j) => {
      const tr = document.createElement("tr");
      cell(tr, j.name);
      cell(tr, j.last_error, "text");
      cell(tr, j.last_error_message, "text bad");
      return tr;
    });
}

function attemptRows(status) {
  return status.attempts.map((a) => {
    const tr = document.createElement("tr");
    cell(tr, a.handle);
    cell(tr, String(a.deaths));
    cell(tr, a.last, "text");
    cell(tr, a.reason, "text bad");
    return tr;
  });
}

// One job's samples as dygraphs rows: [time, processes, busy, queue, jobs/s].
function points(history, job) {
  const rows = [];
  for (let i = 0; i < history.times.length; i++) {
    const dt = i ? (history.times[i] - history.times[i - 1]) / 1000 : 0;
    const rate = i && dt > 0 ? (job.jobs[i] - job.jobs[i - 1]) / dt : 0;
    rows.push([new Date(history.times[i]), job.processes[i], job.busy[i], job.queue[i], rate]);
  }
  return rows;
}

function drawCharts(history) {
  const box = document.getElementById("charts");
  const jobs = [...history.jobs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const job of jobs) {
    const data = points(history, job);
    if (data.length === 0) continue;
    let c = charts.get(job.name);
    if (!c) {
      const card = document.createElement("div");
      card.className = "job";
      const h = document.createElement("h3");
      h.textContent = job.name;
      const div = document.createElement("div");
      div.className = "chart";
      div.dataset.job = job.name;
      const legend = document.createElement("div");
      legend.className = "legend";
      card.append(h, div, legend);
      box.appendChild(card);
      const graph = new Dygraph(div, data, {
        labels: ["time", "processes", "busy", "queue", "jobs/s"],
        series: { "jobs/s": { axis: "y2" } },
        axes: { y2: { independentTicks: true } },
        ylabel: "processes, queue",
        y2label: "jobs/s",
        includeZero: true,
        legend: "always",
        labelsDiv: legend,
        labelsUTC: true,
      });
      c = { div, graph };
      charts.set(job.name, c);
    } else {
      c.graph.updateOptions({ file: data });
    }
    // For tests and scripts: what the chart shows now.
    const last = data[data.length - 1];
    c.div.dataset.samples = String(data.length);
    c.div.dataset.last = String(last[0].getTime());
    c.div.dataset.jobs = String(job.jobs[job.jobs.length - 1]);
  }
}

async function refresh() {
  try {
    // Both asked at once; a failure is reported in this order, whichever
    // answer came first (Promise.all's would be the first to arrive).
    const answers = await Promise.allSettled([get("/status.json"), get("/history.json")]);
    const failed = answers.find((a) => a.status === "rejected");
    if (failed) throw failed.reason;
    const [status, history] = answers.map((a) => a.value);
    document.getElementById("meta").textContent =
      "gdlua " + status.version + ", master pid " + status.pid + ", " + status.jobs.length + " job(s); updated " +
      new Date().toISOString().slice(11, 19) + " UTC";
    fill(document.querySelector("#jobs tbody"), jobRows(status));
    fill(document.querySelector("#errors tbody"), errorRows(status));
    fill(document.querySelector("#attempts tbody"), attemptRows(status));
    drawCharts(history);
    document.getElementById("error").textContent = "";
    document.body.dataset.updates = String(++updates);
  } catch (e) {
    document.getElementById("error").textContent = String(e);
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
