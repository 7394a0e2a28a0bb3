// Headless Chromium for the browser tests: Debian's /usr/bin/chromium (or CHROMIUM_PATH), kept
// from calling home, since the network here is closed.
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** Launches headless Chromium with CHROMIUM_ARGS and any `extraArgs`. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: [...CHROMIUM_ARGS, ...extraArgs] });
}
