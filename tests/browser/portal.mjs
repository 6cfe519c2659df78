// The otv citizen portal in a real browser (Debian's headless Chromium driven by
// playwright-core), against a running otv and a real OpenID Provider (op.mjs).
//
//   node portal.mjs --base http://127.0.0.1:PORT --screenshots DIR
//                   [--dev-base http://127.0.0.1:PORT2] [--password PW]
//
// --base is an otv whose portal logs in through the OpenID Provider; --dev-base (optional) is an
// otv with the development login on, used for the check without JavaScript. Run by
// crates/otv/tests/e2e/browser.rs, which starts all of them.
//
// What it checks, and fails on, collecting every finding before it exits 1:
// - every page in PAGES and every portal page linked from them (a crawl), logged out and logged
//   in as an adult (in Dutch and in English), a representative, a child of 14 and a parent:
//   axe-core (WCAG 2.0/2.1 A and AA, best practices) finds no violation; the HTML carries no
//   script at all; the browser reports no error (a stylesheet that does not load, something the
//   Content-Security-Policy blocked); no horizontal scrolling at phone, tablet and desktop
//   widths; <html lang> is the language chosen; one <h1>; the header names who is logged in and
//   (a representative) whose profile they manage; no full BSN on the page; no development
//   banner;
// - the login through the OpenID Provider (authorization code + PKCE, through /inloggen), the
//   session cookie's flags, the terms of use, the wizard (all three choices and the EU
//   question), a cross-site form post that must change nothing, logging out, and the pairing
//   code with which a parent confirms a child's choices;
// - without JavaScript: the development login, saving a choice, and the development banner on
//   every page.
// Screenshots of the main pages at phone and desktop widths go to --screenshots.
//
// axe-core is injected with page.evaluate (the DevTools protocol), not a <script> tag: the
// portal's Content-Security-Policy rightly refuses inline scripts, and evaluate runs beside it,
// so every page is scanned exactly as it is served, CSP and all.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

import { ACCOUNTS } from './accounts.mjs';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    'dev-base': { type: 'string' },
    screenshots: { type: 'string', default: 'target/browser-screenshots' },
    password: { type: 'string', default: 'geheim' },
  },
});
if (!args.base) {
  console.error('portal.mjs: --base is required');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// The pages. One list; add a page here. Every portal link found on a visited page is followed
// as well (crawl), so a page reachable from the navigation is scanned even before it is listed
// here, and a link to a page that does not exist fails.
//   path:   URL path (with query if needed)
//   shot:   a main page: screenshots at phone and desktop widths, named after `shot`
//   status: the HTTP status expected (200 when absent)
// ---------------------------------------------------------------------------------------------
const PAGES = [
  { path: '/inloggen', shot: 'inloggen' },
  { path: '/voorwaarden', shot: 'voorwaarden' },
  { path: '/keuzes', shot: 'keuzes' },
  { path: '/keuzes/wijzigen', shot: 'wizard' },
  { path: '/wie-volgt-mij', shot: 'wie-volgt-mij' },
  { path: '/zorgaanbieders', shot: 'zorgaanbieders' },
  { path: '/geschiedenis', shot: 'geschiedenis' },
  { path: '/noodtoestemmingen', shot: 'noodtoestemmingen' },
  { path: '/meldingen', shot: 'meldingen' },
  { path: '/vergrendelen', shot: 'vergrendelen' },
  { path: '/mijn-gegevens', shot: 'mijn-gegevens' },
  { path: '/profiel-verwijderen', shot: 'profiel-verwijderen' },
  { path: '/ouder-en-kind', shot: 'ouder-en-kind' },
  { path: '/zorgaanbieders?q=apotheek', shot: 'zorgaanbieders-zoeken' },
  { path: '/geschiedenis?van=01-01-2020&tot=31-12-2099', shot: 'geschiedenis-periode' },
  { path: '/e-mail/bevestigen?token=onbekend' },
  { path: '/bestaat-niet', shot: 'niet-gevonden', status: 404 },
];

/** Links the crawl does not follow: the language switch (its pages are the same) and files. */
const NOT_CRAWLED = [/[?&]lang=/, /^\/static\//];

/** At most this many pages per crawl (a runaway link pattern must not hang the test). */
const CRAWL_LIMIT = 80;

/**
 * The axe-core rule tags that must report nothing: WCAG 2.0 and 2.1, levels A and AA, and
 * axe's best practices (landmarks, heading order, one main; the portal met them all when this
 * was written, so they are held too).
 */
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];

const VIEWPORTS = {
  phone: { width: 390, height: 844 },
  tablet: { width: 820, height: 1180 },
  desktop: { width: 1280, height: 900 },
};

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// ---------------------------------------------------------------------------------------------
// Findings and checks
// ---------------------------------------------------------------------------------------------

const failures = [];
let checks = 0;

function fail(where, what) {
  failures.push(`${where}: ${what}`);
  console.log(`FAIL ${where}: ${what}`);
}

function check(ok, where, what) {
  checks += 1;
  if (!ok) fail(where, what);
  return ok;
}

const axeSource = fs.readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

/** Runs axe-core on the page as it is; every violation becomes a finding. */
async function axeScan(page, where) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(axeSource);
  }
  const result = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }),
    AXE_TAGS,
  );
  checks += 1;
  for (const v of result.violations) {
    for (const node of v.nodes) {
      fail(where, `axe ${v.id} (${v.impact}) at ${node.target.join(' ')}: ${v.help}`);
    }
  }
}

/** The portal has no JavaScript at all: no script element, no inline event handler. */
async function noScript(page, where) {
  const found = await page.evaluate(() => {
    const out = [...document.querySelectorAll('script')].map((s) => s.src || 'inline <script>');
    for (const el of document.querySelectorAll('*')) {
      for (const a of el.attributes) {
        if (a.name.startsWith('on')) out.push(`${el.tagName.toLowerCase()}[${a.name}]`);
      }
    }
    for (const a of document.querySelectorAll('a[href^="javascript:"]')) out.push(a.outerHTML);
    return out;
  });
  check(found.length === 0, where, `JavaScript on the page: ${found.join(', ')}`);
}

/** No horizontal scrolling at any width (WCAG 1.4.10, and simply usable on a phone). */
async function noHorizontalScroll(page, where) {
  for (const [name, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    const { scroll, client, wide } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      // The innermost elements that stick out (their children do not).
      wide: (() => {
        const limit = document.documentElement.clientWidth + 1;
        const out = (el) => el.getBoundingClientRect().right > limit;
        return [...document.querySelectorAll('body *')]
          .filter((el) => out(el) && ![...el.children].some(out))
          .slice(0, 3)
          .map((el) => `<${el.tagName.toLowerCase()}${el.className ? ` class="${el.className}"` : ''}> "${el.textContent.trim().slice(0, 40)}"`);
      })(),
    }));
    check(
      scroll <= client,
      where,
      `horizontal scrolling at ${name} width ${size.width}px (content ${scroll}px wide; ${wide.join(', ')})`,
    );
  }
  await page.setViewportSize(VIEWPORTS.desktop);
}

let shotDir = null;
async function screenshots(page, name) {
  for (const width of ['phone', 'desktop']) {
    await page.setViewportSize(VIEWPORTS[width]);
    await page.screenshot({ path: path.join(shotDir, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(VIEWPORTS.desktop);
}

/**
 * Watches a page for what the browser itself reports: errors in the console (a blocked inline
 * style, a stylesheet that did not load) and failed requests to the portal.
 */
function watch(page, base) {
  const seen = [];
  page.on('console', (m) => {
    // A resource that did not load is reported with its URL below (Chromium's own request
    // for /favicon.ico is not the portal's).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      seen.push(`console: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => seen.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.url().startsWith(base) && r.status() >= 400 && r.request().resourceType() !== 'document') {
      seen.push(`${r.status()} for ${r.url()}`);
    }
  });
  page.on('requestfailed', (r) => {
    // Only the portal's own requests: the OpenID Provider's pages are not ours to judge, and a
    // portal page that asks a third party is refused by its CSP (a console error above).
    if (r.url().startsWith(base)) seen.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  return {
    flush(where) {
      checks += 1;
      for (const s of seen.splice(0)) fail(where, s);
    },
  };
}

/** The portal links on the page (path and query), for the crawl. */
async function portalLinks(page, base) {
  const hrefs = await page.evaluate(() => [...document.querySelectorAll('a[href]')].map((a) => a.href));
  return hrefs
    .filter((h) => h.startsWith(base + '/'))
    .map((h) => h.slice(base.length).split('#')[0])
    .filter((h) => h && !NOT_CRAWLED.some((re) => re.test(h)));
}

/**
 * Every check of one page, as the browser shows it now. axe-core needs JavaScript timers, so
 * in a context without JavaScript it is skipped (the same pages are scanned with it).
 */
async function checkPage(page, watcher, where, extra) {
  check(
    (await page.evaluate(() => document.documentElement.lang)).length > 0,
    where,
    'no <html lang>',
  );
  check((await page.locator('h1').count()) === 1, where, 'not exactly one <h1>');
  await noScript(page, where);
  if (page.context().javaScriptOn !== false) await axeScan(page, where);
  await noHorizontalScroll(page, where);
  if (extra) await extra(page, where);
  watcher.flush(where);
}

/**
 * Opens a page and runs every per-page check on it; returns false when it is not HTML (a
 * download, only checked for its status) or has no body.
 */
async function visit(page, watcher, base, entry, state, extra) {
  const where = `${entry.path} (${state})`;
  const head = await page.context().request.get(base + entry.path, { maxRedirects: 0 });
  const type = head.headers()['content-type'] ?? '';
  if (head.status() < 300 && !type.startsWith('text/html')) {
    check(head.status() === 200, where, `HTTP ${head.status()}`);
    return false;
  }
  if (head.status() >= 400 && (await head.body()).length === 0) {
    fail(where, `HTTP ${head.status()} with an empty body: no readable page`);
    return false;
  }
  const response = await page.goto(base + entry.path);
  const status = response?.status() ?? 0;
  check(status === (entry.status ?? 200), where, `HTTP ${status} at ${page.url()}`);
  await checkPage(page, watcher, where, extra);
  return true;
}

/**
 * Visits every page in PAGES and every portal link found on the way (once each);
 * `shots` names the screenshots (`<shot>-<shots>-<width>.png`) or is null.
 */
async function visitAll(tab, state, { shots = null, extra = null, lang = 'nl' } = {}) {
  const { page, watcher, base } = tab;
  // The language link sets a cookie; every page after it is in that language.
  await page.goto(`${base}/voorwaarden?lang=${lang}`);
  const inLang = async (p, where) => {
    const shown = await p.evaluate(() => document.documentElement.lang);
    check(shown === lang, where, `<html lang="${shown}">, not ${lang}`);
    if (extra) await extra(p, where);
  };
  const queue = PAGES.map((p) => ({ ...p }));
  const seen = new Set(queue.map((p) => p.path));
  let visited = 0;
  while (queue.length && visited < CRAWL_LIMIT) {
    const entry = queue.shift();
    visited += 1;
    try {
      if (!(await visit(page, watcher, base, entry, state, inLang))) continue;
      // A page that sent the visitor elsewhere (to the login) is not photographed again.
      const landed = new URL(page.url());
      if (entry.shot && shots && landed.pathname + landed.search === entry.path) {
        await screenshots(page, `${entry.shot}-${shots}`);
      }
      for (const link of await portalLinks(page, base)) {
        if (!seen.has(link)) {
          seen.add(link);
          queue.push({ path: link });
        }
      }
    } catch (e) {
      await failed(page, `${entry.path} (${state})`, e);
    }
  }
  check(queue.length === 0, state, `more than ${CRAWL_LIMIT} pages: ${queue.map((q) => q.path)}`);
  console.log(`${state}: ${visited} pages`);
  if (lang !== 'nl') await page.goto(`${base}/voorwaarden?lang=nl`);
}

/** A step that threw: the finding, with the URL and a screenshot of where it stopped. */
async function failed(page, where, error) {
  const file = path.join(shotDir, `FAILED-${where.replace(/[^a-z0-9]+/gi, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true }).catch(() => {});
  fail(where, `${error.message.split('\n')[0]} (at ${page.url()}; screenshot ${file})`);
}

/** Runs one flow; a failure is a finding and the next flow still runs. */
async function step(page, where, fn) {
  try {
    await fn();
    checks += 1;
    return true;
  } catch (e) {
    await failed(page, where, e);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Flows
// ---------------------------------------------------------------------------------------------

/** A browser tab on one otv: its page, what the browser reported, the otv's base URL. */
async function openTab(context, base) {
  const page = await context.newPage();
  return { page, watcher: watch(page, base), base };
}

const pathOf = (page) => new URL(page.url()).pathname;

/** Submits the form with `action` by its (first) submit button and waits for the answer. */
async function submit(page, action, button = 'button[type=submit]') {
  await Promise.all([
    page.waitForNavigation(),
    page.locator(`form[action="${action}"] ${button}`).first().click(),
  ]);
}

/**
 * Logs in through the OpenID Provider as `account` (a login name of accounts.mjs): otv's
 * login button, the provider's login form and consent screen, back to otv.
 */
async function loginOidc({ page, base }, account) {
  await page.goto(base + '/inloggen');
  await submit(page, '/inloggen/start');
  check(!page.url().startsWith(base), `login as ${account}`, `/inloggen/start did not lead to the provider: ${page.url()}`);
  const op = new URL(page.url()).origin;
  await page.locator('input[name=login]').fill(account);
  await page.locator('input[name=password]').fill(args.password);
  await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').click()]);
  if (page.url().startsWith(op)) {
    // The provider's consent screen.
    await page.locator('button[type=submit]').click();
  }
  await page.waitForURL((u) => u.href.startsWith(base));
}

/** The development login: the form on /inloggen (works without JavaScript). */
async function loginDev({ page, base }, account) {
  const a = ACCOUNTS[account];
  await page.goto(base + '/inloggen');
  const form = page.locator('form[action="/inloggen/ontwikkel"]');
  await form.locator('#bsn').fill(a.bsn);
  await form.locator('#name').fill(a.name);
  await form.locator('#birth_date').fill(a.birthdate);
  if (a.acting_for) await form.locator('#acting_for').fill(a.acting_for);
  await submit(page, '/inloggen/ontwikkel');
}

/** The terms of use: shown first after a login; accepting leads to the overview. */
async function acceptTerms(tab, where, shot) {
  const { page } = tab;
  if (!check(pathOf(page) === '/voorwaarden', where, `after login at ${page.url()}, not the terms`)) return;
  if (shot) {
    await checkPage(page, tab.watcher, `${where}: terms to accept`);
    await screenshots(page, shot);
  }
  await submit(page, '/voorwaarden');
  check(pathOf(page) === '/keuzes', where, `after accepting the terms at ${page.url()}`);
}

/**
 * The wizard: `choice` is all, certain or none; for certain, the answers per option alternate
 * yes and no; the EU question is answered `eu`. Every step is checked like a page (they are
 * reached by forms, not links) and photographed when `shots` is given.
 */
async function wizard(tab, where, { choice, eu = 'no', shots = null }) {
  const { page, watcher, base } = tab;
  const stepDone = async (name) => {
    await checkPage(page, watcher, `${where}: ${name}`);
    if (shots) await screenshots(page, `${name}-${shots}`);
  };
  await page.goto(base + '/keuzes/wijzigen');
  await page.locator(`input[name=choice][value=${choice}]`).check();
  await submit(page, '/keuzes/wijzigen');
  if (choice === 'certain') {
    await stepDone('wizard-per-soort');
    const options = page.locator('form[action="/keuzes/wijzigen/per-soort"] fieldset');
    const n = await options.count();
    check(n > 0, where, 'no questions per kind of care provider');
    for (let i = 0; i < n; i += 1) {
      await options.nth(i).locator(`input[value=${i % 2 ? 'no' : 'yes'}]`).check();
    }
    await submit(page, '/keuzes/wijzigen/per-soort');
  }
  if (choice !== 'none') {
    await stepDone('wizard-europa');
    await page.locator(`form[action="/keuzes/wijzigen/europa"] input[name=eu][value=${eu}]`).check();
    await submit(page, '/keuzes/wijzigen/europa');
  }
  check(pathOf(page) === '/keuzes/opgeslagen', where, `the wizard ended at ${page.url()}`);
  await stepDone('wizard-opgeslagen');
}

/**
 * A form on another site (the provider's origin, served by the browser itself) posts "no to
 * everything" to the wizard, even with the session's own CSRF token: otv must refuse it and
 * the choices must stay as they were.
 */
async function crossSitePost({ page, base }, where) {
  await page.goto(base + '/keuzes');
  const before = await page.locator('main').innerText();
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const attacker = 'http://127.0.0.2:9/aanval';
  await page.context().route(attacker, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<!DOCTYPE html><title>x</title><form method="post" action="${base}/keuzes/wijzigen">
        <input name="csrf" value="${csrf}"><input name="choice" value="none">
        <button type="submit">go</button></form>`,
    }));
  await page.goto(attacker);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.locator('button').click(),
  ]);
  await page.waitForLoadState();
  // Refused: a 403 page, or (the SameSite=Lax cookie not sent along) treated as logged out.
  const location = response.headers().location ?? '';
  const refused = response.status() === 403 || (response.status() === 303 && location.endsWith('/inloggen'));
  check(refused, where, `a cross-site post was answered ${response.status()} ${location}`);
  await page.goto(base + '/keuzes');
  check((await page.locator('main').innerText()) === before, where, 'a cross-site post changed the choices');
}

/** The session cookie: Secure, HttpOnly, SameSite=Lax. */
async function checkSessionCookie(context, where) {
  const cookie = (await context.cookies()).find((c) => c.name === 'otv_session');
  if (!check(cookie, where, 'no otv_session cookie after login')) return;
  check(cookie.secure && cookie.httpOnly && cookie.sameSite === 'Lax', where,
    `otv_session is not Secure; HttpOnly; SameSite=Lax: ${JSON.stringify(cookie)}`);
}

/** What the header says about who is logged in and whose profile they manage. */
async function checkWho(page, where, account) {
  const a = ACCOUNTS[account];
  const header = await page.locator('header').innerText();
  check(header.includes(a.name), where, `the header does not name ${a.name}: ${header}`);
  const representing = await page.locator('.representing').count();
  check(Boolean(a.acting_for) === (representing > 0), where,
    a.acting_for ? 'a representative does not see whose profile they manage' : 'a representing note for someone acting for themself');
  const html = await page.content();
  for (const b of [a.bsn, a.acting_for].filter(Boolean)) {
    check(!html.includes(b), where, 'a full BSN in the page');
  }
}

async function logout({ page, base }, where) {
  await submit(page, '/uitloggen');
  const after = await page.goto(base + '/keuzes');
  check(pathOf(page) === '/inloggen', where,
    `after logging out, /keuzes shows ${page.url()} (HTTP ${after?.status()})`);
}

/**
 * A child of 14 asks for a pairing code; the parent logs in with their own identity, enters
 * it, reviews the child's choices and confirms them. Each page on the way is checked.
 */
async function pairing(childTab, parentTab) {
  const where = 'parent and child';
  const { page: child } = childTab;
  await child.goto(childTab.base + '/ouder-en-kind');
  await submit(child, '/ouder-en-kind/koppelcode');
  await checkPage(child, childTab.watcher, `${where}: the child's code`);
  await screenshots(child, 'koppelcode-kind');
  const code = (await child.locator('.pairing-code').innerText()).trim();
  check(code.length > 0, where, 'no pairing code shown');

  const { page: parent } = parentTab;
  await parent.goto(parentTab.base + '/ouder-en-kind');
  await parent.locator('#code').fill(code);
  await submit(parent, '/ouder-en-kind/code');
  check(pathOf(parent).startsWith('/ouder-en-kind/kind/'), where, `after the code, the parent is at ${parent.url()}`);
  await checkPage(parent, parentTab.watcher, `${where}: the parent reviews`);
  await screenshots(parent, 'koppelcode-ouder');
  await submit(parent, pathOf(parent), 'button[value=bevestigen]');
  await checkPage(parent, parentTab.watcher, `${where}: confirmed`);
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

shotDir = path.resolve(args.screenshots);
fs.rmSync(shotDir, { recursive: true, force: true });
fs.mkdirSync(shotDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.OTV_CHROMIUM ?? '/usr/bin/chromium',
  args: CHROMIUM_ARGS,
});
const newContext = async (options = {}) => {
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'nl-NL', ...options });
  context.setDefaultTimeout(15000);
  context.javaScriptOn = options.javaScriptEnabled;
  return context;
};
const base = args.base;
const noDevBanner = async (page, where) =>
  check((await page.locator('.dev-banner').count()) === 0, where, 'a development banner without the development login');

/** Logs `account` in through the provider, accepts the terms; returns the tab, or null. */
async function loggedIn(context, account, shot = null) {
  const tab = await openTab(context, base);
  const where = `login as ${account}`;
  const ok = await step(tab.page, where, async () => {
    await loginOidc(tab, account);
    await checkSessionCookie(context, where);
    await acceptTerms(tab, where, shot);
    await checkWho(tab.page, where, account);
  });
  return ok ? tab : null;
}

const whoAndNoBanner = (account) => async (p, w) => {
  await noDevBanner(p, w);
  await checkWho(p, w, account);
};

try {
  // Logged out: every page (the ones that need a login send the visitor to /inloggen).
  {
    const context = await newContext();
    const tab = await openTab(context, base);
    await visitAll(tab, 'logged out', { shots: 'uitgelogd', extra: noDevBanner });
    await visitAll(tab, 'logged out, in English', { shots: 'uitgelogd-en', extra: noDevBanner, lang: 'en' });
    await context.close();
  }

  // Logged in through the OpenID Provider: an adult (with screenshots) and a representative.
  // Each answers the wizard, then every page is visited, then they log out.
  for (const [account, choice, shots] of [
    ['volwassene', 'certain', 'ingelogd'],
    ['vertegenwoordiger', 'all', null],
  ]) {
    const context = await newContext();
    const tab = await loggedIn(context, account, shots && `voorwaarden-accepteren-${shots}`);
    if (tab) {
      await step(tab.page, `${account}: the wizard`, () =>
        wizard(tab, `${account}: the wizard`, { choice, shots }));
      await step(tab.page, `${account}: cross-site post`, () =>
        crossSitePost(tab, `${account}: cross-site post`));
      await visitAll(tab, `logged in as ${account}`, { shots, extra: whoAndNoBanner(account) });
      if (shots) {
        await visitAll(tab, `logged in as ${account}, in English`, {
          shots: `${shots}-en`,
          extra: whoAndNoBanner(account),
          lang: 'en',
        });
      }
      await step(tab.page, `${account}: log out`, () => logout(tab, `${account}: log out`));
    }
    await context.close();
  }

  // A child of 14 answers (pending until a parent confirms), every page is visited, and the
  // parent confirms with the pairing code.
  {
    const childContext = await newContext();
    const parentContext = await newContext();
    const child = await loggedIn(childContext, 'kind14');
    const parent = await loggedIn(parentContext, 'ouder');
    if (child && parent) {
      await step(child.page, 'kind14: the wizard', () =>
        wizard(child, 'kind14: the wizard', { choice: 'all', eu: 'yes', shots: 'kind' }));
      await visitAll(child, 'logged in as kind14', { extra: whoAndNoBanner('kind14') });
      await step(parent.page, 'parent and child', () => pairing(child, parent));
      await visitAll(parent, 'logged in as ouder', { extra: whoAndNoBanner('ouder') });
    }
    await childContext.close();
    await parentContext.close();
  }

  // Without JavaScript, with the development login: log in, accept the terms, save a choice,
  // and every page says that the development login is on.
  if (args['dev-base']) {
    const context = await newContext({ javaScriptEnabled: false });
    const tab = await openTab(context, args['dev-base']);
    const where = 'without JavaScript';
    const ok = await step(tab.page, where, async () => {
      await loginDev(tab, 'volwassene');
      await acceptTerms(tab, where);
      await checkWho(tab.page, where, 'volwassene');
      const before = await tab.page.locator('main').innerText();
      await wizard(tab, `${where}: the wizard`, { choice: 'none' });
      await tab.page.goto(tab.base + '/keuzes');
      const after = await tab.page.locator('main').innerText();
      check(after !== before, where, `the overview did not change after saving a choice: ${after}`);
    });
    if (ok) {
      const banner = async (p, w) =>
        check((await p.locator('.dev-banner').count()) === 1, w, 'no development-login banner');
      await visitAll(tab, 'development login, no JavaScript', { extra: banner });
    }
    await context.close();
  }
} finally {
  await browser.close();
}

console.log(`\nportal.mjs: ${checks} checks, ${failures.length} findings; screenshots in ${shotDir}`);
if (failures.length) {
  console.log(`\n${failures.length} findings:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  process.exit(1);
}
