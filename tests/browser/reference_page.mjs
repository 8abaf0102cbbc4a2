// Opens segmentd's API reference page (GET /docs) in Debian's chromium through
// playwright-core and reports what a reader would meet, as one JSON object on stdout:
// console errors, uncaught exceptions, Content-Security-Policy violations, failed requests
// and requests that left the server, every operation the page shows (method, path,
// operationId), and the answer of one "Try it out" request made with a token. It asserts
// nothing itself: tests/browser/test_reference_browser.py compares the report with
// openapi.yaml. A full-page screenshot goes to --screenshot.
//
//   node tests/browser/reference_page.mjs --url http://127.0.0.1:8080 --token <jwt> \
//        --try listV1Segments --screenshot .data/docs-reference.png
import { chromium } from "playwright-core";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    token: { type: "string" },
    try: { type: "string" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM || "/usr/bin/chromium" },
    timeout: { type: "string", default: "30000" },
  },
});
if (!opt.url || !opt.token || !opt.try || !opt.screenshot) {
  console.error("usage: reference_page.mjs --url URL --token JWT --try OPERATION_ID --screenshot FILE");
  process.exit(2);
}
const timeout = Number(opt.timeout);
const origin = new URL(opt.url).origin;
const report = {
  console: [], pageErrors: [], cspViolations: [], failedRequests: [], foreignRequests: [],
  operations: [], title: null, tryIt: null, tryResponses: [], timings: {},
};
const t0 = Date.now();
const lap = (name) => { report.timings[name] = Date.now() - t0; };

const browser = await chromium.launch({
  executablePath: opt.chromium,
  headless: true,
  // chromium's sandbox needs an unprivileged user; CI runs these tests as root
  args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
  timeout,
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Offline by construction: a request to any other origin is refused and reported.
  await context.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + "/") || u.startsWith("data:")) return route.continue();
    report.foreignRequests.push(u);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "assert")
      report.console.push({ type: m.type(), text: m.text(), location: m.location() });
  });
  page.on("pageerror", (e) => report.pageErrors.push(String(e && e.stack || e)));
  page.on("requestfailed", (r) => report.failedRequests.push({ url: r.url(), error: r.failure()?.errorText }));
  page.on("response", (r) => {
    if (r.status() >= 400) report.failedRequests.push({ url: r.url(), status: r.status() });
  });
  // CSP violations also reach the console as errors; this catches the ones that do not.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
    });
  });

  await page.goto(opt.url + "/docs", { waitUntil: "load" });
  lap("loaded");
  await page.locator(".opblock").first().waitFor();
  await page.locator(".swagger-ui .info .title").waitFor();
  await page.waitForLoadState("networkidle");
  lap("rendered");
  report.title = (await page.locator(".swagger-ui .info .title").innerText()).trim();
  report.operations = await page.$$eval(".opblock", (blocks) => blocks.map((b) => ({
    method: b.querySelector(".opblock-summary-method")?.textContent.trim(),
    path: b.querySelector(".opblock-summary-path")?.getAttribute("data-path"),
    operationId: b.querySelector(".opblock-summary-operation-id")?.textContent.trim(),
  })));
  await page.screenshot({ path: opt.screenshot, fullPage: true });
  lap("screenshot");

  // "Authorize" with the token, then "Try it out" and "Execute" on one operation.
  await page.locator(".auth-wrapper .authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.locator("input").first().fill(opt.token);
  await dialog.locator(".auth-btn-wrapper .authorize").click();
  await dialog.locator(".auth-btn-wrapper .btn-done").click();
  const op = page.locator(".opblock", {
    has: page.locator(".opblock-summary-operation-id", { hasText: new RegExp(`^${opt.try}$`) }),
  });
  await op.locator(".opblock-summary-control").click();
  // What the expanded operation documents: each status, its media types and example.
  await op.locator(".responses-table tr.response").first().waitFor();
  report.tryResponses = await op.locator(".responses-wrapper .responses-table").first().evaluate((t) =>
    [...t.querySelectorAll(":scope > tbody > tr.response")].map((tr) => ({
      code: tr.getAttribute("data-code"),
      mediaTypes: [...tr.querySelectorAll(".response-control-media-type select option")].map((o) => o.value),
      example: tr.querySelector(".example, .highlight-code, .microlight")?.textContent.slice(0, 2000) ?? null,
    })));
  await op.locator(".try-out__btn").click();
  const answer = page.waitForResponse((r) => r.request().method() !== "OPTIONS" && r.url().startsWith(origin + "/") &&
    !r.url().includes("/docs") && !r.url().endsWith("/openapi.yaml"));
  await op.locator(".execute").click();
  const resp = await answer;
  const status = op.locator(".live-responses-table .response .response-col_status");
  await status.waitFor();
  report.tryIt = {
    operationId: opt.try,
    url: resp.url(),
    sentAuthorization: (await resp.request().allHeaders()).authorization === `Bearer ${opt.token}`,
    status: resp.status(),
    shownStatus: (await status.innerText()).trim(),
    shownBody: (await op.locator(".live-responses-table .response-col_description pre").first().innerText()).trim(),
  };
  lap("tried");
  report.cspViolations = await page.evaluate(() => window.__cspViolations);
  await context.close();
} finally {
  await browser.close();
}
lap("done");
process.stdout.write(JSON.stringify(report) + "\n");
