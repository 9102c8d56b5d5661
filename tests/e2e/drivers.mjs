// The browser drivers the engine tests share (tests/e2e/engines.mjs, tests/e2e/collect-engines.mjs):
// Firefox ESR through puppeteer-core (WebDriver BiDi), WebKitGTK through selenium-webdriver with
// WebKitWebDriver and MiniBrowser under xvfb-run, an `eval` of an async function of one JSON
// argument over WebDriver classic, and a poll of such a function until it answers.
// What differs between the tests (MiniBrowser's settings, Firefox's prefs, the process
// environment, timeouts) is a parameter.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { freePort } from './serve.mjs';

/** A step that failed as the test checks it (the others are also printed with their stack). */
export class Failure extends Error {}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The page's console and uncaught errors, kept in `lines`: shown when a step fails. */
export function keepPageLog(page, lines) {
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${e.message || e}`));
}

/** Firefox ESR (puppeteer-core over WebDriver BiDi), headless, with `prefs` added if given. */
export async function launchFirefox(prefs) {
  const { default: puppeteer } = await import('puppeteer-core');
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
    headless: true,
    ...(prefs ? { extraPrefsFirefox: prefs } : {}),
  });
}

/**
 * WebKitGTK: WebKitWebDriver under xvfb-run (in `env`, the process's own if not given) on a free
 * port, and a selenium-webdriver session for MiniBrowser with `--automation` and `args`, tried for
 * 10 s while the driver starts; `timeouts` are the session's (script, pageLoad).
 * Resolves to `{ driver, open, eval, screenshot, close }`: `eval` as `webdriverEval`, `screenshot`
 * of the page to a PNG file, `close` quits the session and stops the driver and its X server.
 */
export async function launchWebKit({ args = [], env, timeouts }) {
  const { Builder } = await import('selenium-webdriver');
  const port = await freePort();
  const wd = spawn('xvfb-run', ['-a', process.env.WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver', `--port=${port}`], { env, detached: true, stdio: 'ignore' });
  const stop = () => { try { process.kill(-wd.pid, 'SIGTERM'); } catch { /* gone */ } };
  const caps = {
    browserName: 'MiniBrowser',
    'webkitgtk:browserOptions': {
      binary: process.env.MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
      args: ['--automation', ...args],
    },
  };
  let driver = null;
  for (let i = 0; i < 50 && !driver; i += 1) {
    try {
      driver = await new Builder().withCapabilities(caps).usingServer(`http://127.0.0.1:${port}`).build();
    } catch (e) {
      if (i === 49) { stop(); throw e; }
      await sleep(200);
    }
  }
  await driver.manage().setTimeouts(timeouts);
  return {
    driver,
    open: (url) => driver.get(url),
    eval: webdriverEval(driver),
    screenshot: async (path) => writeFileSync(path, Buffer.from(await driver.takeScreenshot(), 'base64')),
    async close() {
      try { await driver.quit(); } finally { stop(); }
    },
  };
}

/**
 * `(fn, arg) => value` over WebDriver classic, as `page.evaluate` in playwright and puppeteer:
 * `fn` (self-contained: it is sent as source) is called with `arg` (JSON) in the page and awaited;
 * its value comes back (undefined as null), its error is thrown here.
 */
export function webdriverEval(driver) {
  return async (fn, arg) => {
    const r = await driver.executeAsyncScript(
      `const done = arguments[arguments.length - 1];
       Promise.resolve().then(() => (${fn.toString()})(arguments[0]))
         .then((v) => done({ ok: true, v: v === undefined ? null : v }), (e) => done({ ok: false, e: String((e && e.stack) || e) }));`,
      arg ?? null,
    );
    if (!r.ok) throw new Error(r.e);
    return r.v;
  };
}

/**
 * A `waitFor(d, fn, arg, { timeout, what })` that evaluates `fn(arg)` in the driver's page every
 * `interval` ms until it answers something truthy (and returns that), an error counting as not yet
 * (the page may be navigating); after `timeout` ms (default `timeout`) it throws a Failure that
 * names `what` and the page's last error.
 */
export function waitForEvery(interval, { timeout: defaultTimeout }) {
  return async function waitFor(d, fn, arg, { timeout = defaultTimeout, what = 'condition' } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      let v = null;
      let error = null;
      try { v = await d.eval(fn, arg); } catch (e) { error = e; /* navigating */ }
      if (v) return v;
      if (Date.now() > end) throw new Failure(`timed out waiting for ${what}${error ? ` (the page's last answer: ${String(error.message || error).split('\n')[0]})` : ''}`);
      await sleep(interval);
    }
  };
}
