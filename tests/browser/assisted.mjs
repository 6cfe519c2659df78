// The assisted portal (provider-assisted recording, PRODUCT.md §8) in a real browser: hand-off
// links that a provider's system made over mutual TLS are opened in Debian's headless Chromium
// (playwright-core) and walked end to end.
//
//   node assisted.mjs --samen URL --holder URL [--emergency URL] --bsn 900100023
//                     --provider "Huisartsenpraktijk De Linde" --screenshots DIR
//
// Run by crates/otv/tests/e2e/browser.rs, which starts otv and makes the links. Each link is
// opened in a fresh browser context (as the professional's screen would); then:
// - Samen-naar-MijnMitz: the overview, the wizard (certain providers, per option, the EU
//   question) and the saved page;
// - dossierhoudersknop: yes or no per consulting category for this provider, saved;
// - raadplegersknop (when given): the confirm page and the recorded emergency consent;
// - on every page, in Dutch and in English: axe-core finds no violation (WCAG 2.0/2.1 A and AA,
//   best practices), no JavaScript, <html lang> set, exactly one <h1>, no horizontal scrolling
//   at 390, 820 and 1280 px, no full BSN, the banner names the provider, and the navigation
//   links to none of the citizen's own pages (history, download, deletion, e-mail, lock,
//   minors); the history page answers 404 in an assisted session; a link opened a second
//   time does not work.
// Exits 1 after collecting every finding.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    samen: { type: 'string' },
    holder: { type: 'string' },
    emergency: { type: 'string' },
    bsn: { type: 'string', multiple: true, default: [] },
    provider: { type: 'string' },
    screenshots: { type: 'string', default: 'target/browser-screenshots' },
  },
});
if (!args.samen || !args.holder || !args.provider) {
  console.error('assisted.mjs: --samen, --holder and --provider are required');
  process.exit(2);
}
fs.mkdirSync(args.screenshots, { recursive: true });

const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];
const VIEWPORTS = {
  phone: { width: 390, height: 844 },
  tablet: { width: 820, height: 1180 },
  desktop: { width: 1280, height: 900 },
};
/** The citizen's own pages: never linked, never reachable in an assisted session. */
const OWN_PAGES = [
  '/geschiedenis',
  '/mijn-gegevens',
  '/profiel-verwijderen',
  '/meldingen',
  '/vergrendelen',
  '/ouder-en-kind',
  '/noodtoestemmingen',
];

const failures = [];
let checks = 0;
function check(ok, where, what) {
  checks += 1;
  if (!ok) {
    failures.push(`${where}: ${what}`);
    console.log(`FAIL ${where}: ${what}`);
  }
  return ok;
}

const axeSource = fs.readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

/** Every check of the page as the browser shows it now. */
async function checkPage(page, where, { lang = 'nl', banner = true } = {}) {
  const shownLang = await page.evaluate(() => document.documentElement.lang);
  check(shownLang === lang, where, `<html lang="${shownLang}">, not ${lang}`);
  check((await page.locator('h1').count()) === 1, where, 'not exactly one <h1>');
  const scripts = await page.evaluate(() => document.querySelectorAll('script').length);
  check(scripts === 0, where, 'JavaScript on the page');
  await page.evaluate(axeSource);
  const result = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }),
    AXE_TAGS,
  );
  for (const v of result.violations) {
    for (const node of v.nodes) {
      check(false, where, `axe ${v.id} (${v.impact}) at ${node.target.join(' ')}: ${v.help}`);
    }
  }
  checks += 1;
  for (const [name, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    const { scroll, client } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    check(scroll <= client, where, `horizontal scrolling at ${name} width (${scroll} > ${client})`);
  }
  await page.setViewportSize(VIEWPORTS.desktop);
  const html = await page.content();
  for (const b of args.bsn) check(!html.includes(b), where, 'a full BSN in the page');
  if (banner) {
    const text = await page.locator('.assisted').innerText().catch(() => '');
    check(text.includes(args.provider), where, `the banner does not name ${args.provider}: "${text}"`);
    const links = await page.evaluate(() => [...document.querySelectorAll('a[href]')].map((a) => new URL(a.href).pathname));
    for (const own of OWN_PAGES) check(!links.includes(own), where, `links to ${own}`);
  }
}

/** Checks the page in Dutch, then in English (the language switch), and back. */
async function checkBothLanguages(page, where) {
  await checkPage(page, `${where} (nl)`);
  const url = new URL(page.url());
  url.searchParams.set('lang', 'en');
  await page.goto(url.toString());
  await checkPage(page, `${where} (en)`, { lang: 'en' });
  url.searchParams.set('lang', 'nl');
  await page.goto(url.toString());
}

async function shot(page, name) {
  for (const width of ['phone', 'desktop']) {
    await page.setViewportSize(VIEWPORTS[width]);
    await page.screenshot({ path: path.join(args.screenshots, `assisted-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(VIEWPORTS.desktop);
}

async function submit(page, action) {
  await Promise.all([
    page.waitForNavigation(),
    page.locator(`form[action="${action}"] button[type=submit]`).first().click(),
  ]);
}

const pathOf = (page) => new URL(page.url()).pathname;

async function step(page, where, fn) {
  try {
    await fn();
  } catch (e) {
    const file = path.join(args.screenshots, `FAILED-assisted-${where.replace(/[^a-z0-9]+/gi, '-')}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    check(false, where, `${e.message.split('\n')[0]} (at ${page.url()}; screenshot ${file})`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.OTV_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const fresh = async () => {
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'nl-NL' });
  return context.newPage();
};

// --- Samen-naar-MijnMitz ---------------------------------------------------------------------
{
  const page = await fresh();
  await step(page, 'samen-naar-mijnmitz', async () => {
    await page.goto(args.samen);
    check(pathOf(page) === '/keuzes', 'samen: opened', `landed on ${page.url()}`);
    await checkBothLanguages(page, '/keuzes (samen)');
    await shot(page, 'samen-keuzes');
    await page.goto(new URL('/keuzes/wijzigen', page.url()).toString());
    await checkPage(page, '/keuzes/wijzigen (samen)');
    await page.locator('input[name=choice][value=certain]').check();
    await submit(page, '/keuzes/wijzigen');
    await checkPage(page, 'per option (samen)');
    const options = page.locator('fieldset.option');
    const n = await options.count();
    check(n > 0, 'per option (samen)', 'no questions');
    for (let i = 0; i < n; i += 1) {
      await options.nth(i).locator(`input[value=${i % 3 ? 'yes' : 'no'}]`).check();
    }
    await submit(page, '/keuzes/wijzigen/per-soort');
    await checkPage(page, 'EU question (samen)');
    await page.locator('form[action="/keuzes/wijzigen/europa"] input[name=eu][value=no]').check();
    await submit(page, '/keuzes/wijzigen/europa');
    check(pathOf(page) === '/keuzes/opgeslagen', 'samen: saved', `at ${page.url()}`);
    await checkBothLanguages(page, '/keuzes/opgeslagen (samen)');
    await shot(page, 'samen-opgeslagen');
    const body = await page.locator('main').innerText();
    check(body.includes('bericht'), 'samen: saved', 'does not say the citizen gets a message');
    const history = await page.goto(new URL('/geschiedenis', page.url()).toString());
    check(history.status() === 404, '/geschiedenis (samen)', `HTTP ${history.status()}`);
    await checkPage(page, '/geschiedenis (samen, 404)', { banner: false });
    // The link works once.
    const again = await (await fresh()).goto(args.samen);
    check(again.status() === 410, 'samen: second open', `HTTP ${again.status()}`);
  });
}

// --- Dossierhoudersknop ----------------------------------------------------------------------
{
  const page = await fresh();
  await step(page, 'dossierhoudersknop', async () => {
    await page.goto(args.holder);
    check(pathOf(page) === '/dossierhoudersknop', 'holder: opened', `landed on ${page.url()}`);
    await checkBothLanguages(page, '/dossierhoudersknop');
    await shot(page, 'dossierhoudersknop');
    const options = page.locator('fieldset.option');
    const n = await options.count();
    check(n > 0, '/dossierhoudersknop', 'no questions');
    for (let i = 0; i < n; i += 1) {
      await options.nth(i).locator(`input[value=${i === n - 1 ? 'no' : 'yes'}]`).check();
    }
    await submit(page, '/dossierhoudersknop');
    check(pathOf(page) === '/dossierhoudersknop/opgeslagen', 'holder: saved', `at ${page.url()}`);
    await checkBothLanguages(page, '/dossierhoudersknop/opgeslagen');
    await shot(page, 'dossierhoudersknop-opgeslagen');
    const keuzes = await page.goto(new URL('/keuzes', page.url()).toString());
    check(keuzes.status() === 404, '/keuzes (holder)', `HTTP ${keuzes.status()}: the overview is not for this mode`);
    const used = await page.goto(args.holder);
    check(used.status() === 410, 'holder: second open', `HTTP ${used.status()}`);
    await checkPage(page, 'used link', { banner: false });
  });
}

// --- Raadplegersknop -------------------------------------------------------------------------
if (args.emergency) {
  const page = await fresh();
  await step(page, 'raadplegersknop', async () => {
    await page.goto(args.emergency);
    check(pathOf(page) === '/noodtoestemming-vastleggen', 'emergency: opened', `landed on ${page.url()}`);
    await checkBothLanguages(page, '/noodtoestemming-vastleggen');
    await shot(page, 'noodtoestemming');
    await submit(page, '/noodtoestemming-vastleggen');
    await checkPage(page, 'emergency recorded');
    const body = await page.locator('main').innerText();
    check(body.includes('72 uur'), 'emergency recorded', 'does not say 72 hours');
  });
}

await browser.close();
console.log(`assisted portal: ${checks} checks, ${failures.length} failures`);
process.exit(failures.length ? 1 : 0);
