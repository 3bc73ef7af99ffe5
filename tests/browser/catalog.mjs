// The catalog web page in a real browser (Debian's chromium, headless, driven by
// playwright-core). Run by tests/python/test_web_browser.py:
//
//   node tests/browser/catalog.mjs <http_uri> <flight_uri> <screenshot.png>
//
// with MESHGATE_BROWSER_PASSWORDS='{"ana": "...", ...}'. Prints one line per check;
// exits non-zero naming the first check that failed.
import { chromium } from "playwright-core";

const [base, flightUri, screenshot] = process.argv.slice(2);
const passwords = JSON.parse(process.env.MESHGATE_BROWSER_PASSWORDS || "{}");
if (!base || !flightUri || !screenshot) {
  console.error("usage: node catalog.mjs <http_uri> <flight_uri> <screenshot.png>");
  process.exit(2);
}

const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const TIMEOUT = 20_000;

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`ok: ${message}`);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

/** A fresh browser context (its own cookies) with a page that records console errors. */
async function open(viewport = LAPTOP, colorScheme = "light") {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.problems = [];
  page.on("console", (message) => { if (message.type() === "error") page.problems.push(message.text()); });
  page.on("pageerror", (error) => page.problems.push(String(error)));
  await page.goto(base);
  return { context, page };
}

async function login(page, user) {
  await page.locator("#login-form").waitFor();
  await page.fill("#login-user", user);
  await page.fill("#login-password", passwords[user]);
  await page.click("#login-submit");
  await page.locator('[data-testid="product-list"]').waitFor();
}

async function products(page) {
  await page.goto(`${base}/#/`);
  await page.locator('[data-testid="product-list"]').waitFor();
  return page.locator(".product-card").evaluateAll((cards) => cards.map((card) => card.dataset.product));
}

async function productPage(page, domain, name) {
  await page.goto(`${base}/#/p/${domain}/${name}`);
  await page.locator("#product-title", { hasText: `${domain}.${name}` }).waitFor();
  await page.locator('[data-testid="columns"]').waitFor();
}

const columns = (page) => page.locator('[data-testid="columns"] tbody tr').evaluateAll(
  (rows) => rows.map((row) => row.dataset.column));
const fact = (page, label) => page.locator(".fact", { hasText: label }).locator("dd").textContent();

try {
  // ---- the page, and logging in as ana -------------------------------------------
  const { context: anaContext, page } = await open();
  await page.locator("#login-form").waitFor();
  check(await page.locator("#login-user").isVisible(), "the page loads and shows the login form");
  await page.fill("#login-user", "ana");
  await page.fill("#login-password", "not-her-password");
  await page.click("#login-submit");
  await page.locator("#login-error", { hasText: "not accepted" }).waitFor();
  check(true, "a wrong password is refused on the form");
  await login(page, "ana");
  const [cookie] = (await anaContext.cookies()).filter((c) => c.name === "meshgate_session");
  check(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === "Strict",
    "chromium keeps the HttpOnly, Secure, SameSite=Strict session cookie on http://127.0.0.1");
  check(await page.evaluate(() => !document.cookie.includes("meshgate_session")),
    "the page's script cannot read the session cookie");

  // ---- keyboard search --------------------------------------------------------------
  await page.evaluate(() => document.activeElement.blur());
  await page.keyboard.press("/");
  check(await page.evaluate(() => document.activeElement.id === "search"), "'/' focuses the search box");
  await page.keyboard.type("ps_supplycost");
  const first = page.locator("#search-results li").first();
  await first.waitFor();
  check(await first.getAttribute("data-product") === "supply.partsupp"
    && (await first.textContent()).includes("column ps_supplycost"),
  "search finds supply.partsupp by its column ps_supplycost");
  await page.keyboard.press("Enter");
  await page.locator("#product-title", { hasText: "supply.partsupp" }).waitFor();
  check(page.url().endsWith("#/p/supply/partsupp"), "Enter opens the product found");

  await page.keyboard.press("/");
  await page.keyboard.type("nation");
  await page.locator("#search-results li").nth(1).waitFor();
  const second = await page.locator("#search-results li").nth(1).getAttribute("data-product");
  await page.keyboard.press("ArrowDown");
  check(await page.locator("#search-results li").nth(1).getAttribute("aria-selected") === "true",
    "ArrowDown moves to the next result");
  await page.keyboard.press("Enter");
  await page.locator("#product-title", { hasText: second }).waitFor();
  check(true, `Enter opens the selected result (${second})`);
  await page.keyboard.press("/");
  await page.keyboard.type("orders");
  await page.locator("#search-results").waitFor();
  await page.keyboard.press("Escape");
  check(await page.inputValue("#search") === "" && await page.locator("#search-results").isHidden(),
    "Escape clears the search");

  // ---- a product page, as ana ---------------------------------------------------------
  await productPage(page, "sales", "orders");
  const badge = page.locator('.product-head [data-testid="quality-badge"]');
  check((await badge.textContent()) === "quality: warning" && (await badge.getAttribute("data-level")) === "warn",
    "sales.orders shows its quality badge (warning: its freshness check fails)");
  check((await page.locator('.product-head [data-testid="freshness-badge"]').textContent()) === "freshness: stale",
    "and its freshness badge");
  const anaOrders = await columns(page);
  check(anaOrders.includes("o_orderkey") && !anaOrders.includes("o_comment"),
    "ana's sales.orders schema lacks o_comment (stewards only)");
  const snippet = await page.locator('[data-testid="snippet"]').textContent();
  check(snippet.includes(`"${flightUri}"`) && snippet.includes("SELECT * FROM sales.orders"),
    "the ADBC snippet reads sales.orders from the advertised Flight URI");
  await page.click('[role="tab"]:has-text("polars")');
  check((await page.locator('[data-testid="snippet"]').textContent()).includes("pl.read_database"),
    "the polars snippet is one tab away");
  await productPage(page, "customers", "customer");
  check(!(await columns(page)).includes("c_comment"), "ana's customers.customer schema lacks c_comment");
  check((await fact(page, "Rows")) === "—", "ana, who reads one market segment, is not told the row count");

  // ---- phone width, dark ------------------------------------------------------------------
  const { page: phone } = await open(PHONE, "dark");
  await login(phone, "ana");
  const fits = () => phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  check(await fits(), "the product list fits a 390 px wide phone");
  await productPage(phone, "sales", "orders");
  check(await fits(), "a product page fits a 390 px wide phone (wide tables scroll inside their card)");
  const background = (p) => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check((await background(phone)) !== (await background(page)), "prefers-color-scheme: dark gives the dark theme");

  // ---- carl and stella --------------------------------------------------------------------
  const { page: carl } = await open();
  await login(carl, "carl");
  const carlProducts = await products(carl);
  check(carlProducts.includes("sales.orders") && !carlProducts.includes("customers.customer"),
    "carl (contractor) is not shown customers.customer");
  await carl.goto(`${base}/#/p/customers/customer`);
  await carl.locator('[role="alert"]', { hasText: "no product customers.customer that you may read" }).waitFor();
  check(true, "and opening it by its address says he may not read it");

  const { page: stella } = await open();
  await login(stella, "stella");
  const stellaProducts = await products(stella);
  check(stellaProducts.includes("customers.customer") && stellaProducts.length > carlProducts.length,
    `stella sees every product (${stellaProducts.length})`);
  await productPage(stella, "customers", "customer");
  check((await columns(stella)).includes("c_comment"), "stella's customers.customer schema has c_comment");
  check(/^\d[\d,.\s]*$/.test(await fact(stella, "Rows")), "stella is told the row count");
  await productPage(stella, "sales", "orders");
  check((await columns(stella)).includes("o_comment"), "stella's sales.orders schema has o_comment");
  await stella.locator('[data-testid="quality"]').waitFor();
  await stella.screenshot({ path: screenshot, fullPage: true });
  check(true, `screenshot of stella's sales.orders page saved to ${screenshot}`);

  // ---- logging out ------------------------------------------------------------------------
  await page.click("#logout");
  await page.locator("#login-form").waitFor();
  await page.reload();
  await page.locator("#login-form").waitFor();
  check((await anaContext.cookies()).every((c) => c.name !== "meshgate_session"),
    "logging out removes the cookie; after a reload the login form shows");

  // Expected: the 401 of the first /api call before logging in, and carl's 404.
  const answered = (status) => `the server responded with a status of ${status}`;
  for (const [name, p, statuses] of [["ana", page, [401]], ["ana on a phone", phone, [401]],
    ["carl", carl, [401, 404]], ["stella", stella, [401]]]) {
    const problems = p.problems.filter((text) => !statuses.some((status) => text.includes(answered(status))));
    check(problems.length === 0, `no script errors or CSP violations for ${name} (${problems.join(" | ") || "none"})`);
  }
} catch (error) {
  console.error(error.stack || String(error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
