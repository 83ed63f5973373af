// Drives the web console in headless Chromium (Debian's, through playwright-core)
// for test_console.py. Usage: node console.js <endpoint> <screenshot.png> <region/cluster/node to stop>
// Prints one JSON object of what the page showed.
const { chromium } = require("playwright-core");

const [endpoint, screenshot, stopNode] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

async function rows(page) {
  return page.$$eval("tr[data-node]", trs => trs.map(tr => ({
    node: tr.dataset.node,
    role: tr.querySelector(".role").textContent.trim(),
    status: tr.querySelector(".status").textContent.trim(),
    endpoint: tr.querySelector(".endpoint").textContent.trim(),
    sparklines: tr.querySelectorAll("svg.spark polyline").length,
  })));
}

(async () => {
  const browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const out = {};
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    page.on("pageerror", e => errors.push(String(e)));
    // A browser opening the API endpoint is sent to the console.
    const resp = await page.goto(endpoint + "/", { waitUntil: "load" });
    out.url = page.url();
    out.status = resp.status();
    out.title = await page.title();
    await page.waitForSelector(`tr[data-node="${stopNode}"]`, { timeout: 15000 });
    // Let a few polls fill the charts.
    await page.waitForFunction(() => document.querySelectorAll("svg.spark polyline").length > 0, null, { timeout: 15000 });
    out.before = await rows(page);
    out.groups = await page.$$eval("[data-group]", gs => gs.map(g => g.dataset.group));
    out.events = await page.$$eval("#events li .msg", ls => ls.map(l => l.textContent));
    await page.screenshot({ path: screenshot, fullPage: true });

    await page.click(`tr[data-node="${stopNode}"] button.stop`);
    await page.waitForSelector(`tr[data-node="${stopNode}"][data-status="stopped"]`, { timeout: 15000 });
    out.afterStop = await rows(page);
    await page.click(`tr[data-node="${stopNode}"] button.start`);
    await page.waitForSelector(`tr[data-node="${stopNode}"][data-status="available"]`, { timeout: 15000 });
    out.afterStart = await rows(page);

    // TestFailover through the page: the group's primary moves.
    const group = stopNode.split("/").slice(0, 2).join("/").replace(/-\d+$/, "");
    const primary = await page.$eval(`[data-group="${group}"] tr[data-role="primary"]`, tr => tr.dataset.node);
    out.primaryBefore = primary;
    await page.click(`[data-group="${group}"] button.failover`);
    // Done when the old primary is a replica and another member is the primary.
    await page.waitForFunction(
      ([g, n]) => {
        const tr = document.querySelector(`tr[data-node="${n}"]`);
        return tr && tr.dataset.role === "replica"
          && document.querySelectorAll(`[data-group="${g}"] tr[data-role="primary"]`).length === 1;
      },
      [group, primary], { timeout: 30000 });
    out.afterFailover = await rows(page);
    out.eventsAfter = await page.$$eval("#events li .msg", ls => ls.map(l => l.textContent));
    out.errors = errors;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch(e => {
  console.error(e);
  process.exit(1);
});
