// The report viewer of one backtest: statistics, the PNG chart and the interactive HTML
// report. Report files need the Bearer token, so they are fetched and shown from blobs.

import { formatDateTime, h, statusLine } from "../dom.js";

const BASE = "/api/v1/backtests";
const HEADLINE = ["Return [%]", "Buy & Hold Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Win Rate [%]", "# Trades", "Equity Final [$]"];

function cspNonce() {
  const meta = document.querySelector('meta[name="trademk-csp-nonce"]');
  return meta ? meta.getAttribute("content") : "";
}

/**
 * The report's HTML with this page's CSP nonce on its inline scripts: the report
 * opens in a blob: frame, which inherits the dashboard's policy.
 */
function withNonce(html) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const nonce = cspNonce();
  for (const script of doc.querySelectorAll("script")) script.setAttribute("nonce", nonce);
  return `<!doctype html>\n${doc.documentElement.outerHTML}`;
}

function formatStat(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(4);
  if (value === null || value === undefined) return "—";
  return String(value);
}

export function reportViewer(ctx) {
  const title = h("h3", { id: "report-title", text: "Report" });
  const status = statusLine("");
  const headline = h("dl", { class: "figures" });
  const allStats = h("dl", { class: "stats" });
  const image = h("img", { class: "report-chart", alt: "", hidden: true });
  const frame = h("iframe", { class: "report-frame", title: "Interactive backtest report", sandbox: "allow-scripts", hidden: true });
  const openFull = h("button", { type: "button", text: "Open interactive report", disabled: true });
  const download = h("a", { class: "button", text: "Download report", hidden: true });
  const node = h(
    "section",
    { class: "report", "aria-labelledby": "report-title", hidden: true },
    title,
    status.node,
    headline,
    h("div", { class: "actions" }, openFull, download),
    image,
    frame,
    h("details", {}, h("summary", { text: "All statistics" }), allStats),
  );
  let urls = [];
  let current = null;

  function objectUrl(blob) {
    const url = URL.createObjectURL(blob);
    urls.push(url);
    return url;
  }

  function reset() {
    for (const url of urls) URL.revokeObjectURL(url);
    urls = [];
    image.hidden = frame.hidden = download.hidden = true;
    image.removeAttribute("src");
    frame.removeAttribute("src");
    openFull.disabled = true;
    headline.replaceChildren();
    allStats.replaceChildren();
  }

  function showStats(job) {
    const stats = job.stats || {};
    headline.replaceChildren(
      ...HEADLINE.filter((key) => key in stats).map((key) =>
        h("div", {}, h("dt", { text: key }), h("dd", { text: formatStat(stats[key]) })),
      ),
    );
    allStats.replaceChildren(
      ...Object.entries(stats).flatMap(([key, value]) => [h("dt", { text: key }), h("dd", { text: formatStat(value) })]),
    );
  }

  async function showChart(job) {
    try {
      image.src = objectUrl(await ctx.api.blob(job.chart_url));
      image.alt = `Backtest chart of ${job.strategy} on ${job.symbol ?? job.data_file}: price with trades, equity and drawdown`;
      image.hidden = false;
    } catch (error) {
      status.set(`The chart is not available: ${error.message}`, "error");
    }
  }

  async function openReport() {
    if (!current) return;
    openFull.disabled = true;
    try {
      const html = await (await ctx.api.blob(current.report_url)).text();
      frame.src = objectUrl(new Blob([withNonce(html)], { type: "text/html" }));
      frame.hidden = false;
      image.hidden = true; // the interactive report has the same charts
      download.href = objectUrl(new Blob([html], { type: "text/html" }));
      download.download = `backtest-${current.id}.html`;
      download.hidden = false;
    } catch (error) {
      status.set(`The report is not available: ${error.message}`, "error");
    } finally {
      openFull.disabled = false;
    }
  }

  async function open(jobId) {
    reset();
    node.hidden = false;
    status.set("Loading the report…");
    try {
      current = await ctx.api.get(`${BASE}/${jobId}`);
    } catch (error) {
      status.set(`Could not load backtest ${jobId}: ${error.message}`, "error");
      return;
    }
    const job = current;
    title.textContent = `Report: ${job.strategy} on ${job.symbol ?? job.data_file} (${formatDateTime(job.created_at)})`;
    if (job.status === "failed") {
      status.set(`This backtest failed: ${job.error}`, "error");
      return;
    }
    const trades = job.trades ? job.trades.length : 0;
    status.set(`Ran on the ${job.ran_on ?? job.engine} engine · ${trades} closed trades`, "ok");
    showStats(job);
    openFull.disabled = false;
    await showChart(job);
    node.scrollIntoView({ block: "nearest" });
  }

  openFull.addEventListener("click", openReport);
  return { node, open };
}
