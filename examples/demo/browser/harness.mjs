// What the browser checks share (check.mjs: the demo pages; widget.mjs: the embeddable widget): Chromium's flags,
// the log and the tally of checks, and the demo server started as a child process.
import { spawn } from "node:child_process";

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

export const log = (...args) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The tally of a run: `check(condition, what)` logs each check; `passes` and `failures` count them. */
export const tally = { passes: 0, failures: 0 };
export function check(condition, what) {
  if (condition) {
    tally.passes++;
    log("ok  ", what);
  } else {
    tally.failures++;
    log("FAIL", what);
  }
}

/**
 * The demo binary as a child process. The first start binds port 0 and reads the port from the banner (no window
 * in which another process can take a port picked in advance); restarts reuse that port, which the pages
 * reconnect to.
 */
export class DemoServer {
  constructor(binary, dataDir, extraArgs = []) {
    this.binary = binary;
    this.dataDir = dataDir;
    this.extraArgs = extraArgs;
    this.port = 0;
    this.base = "";
    this.child = null;
  }

  async start() {
    for (let attempt = 1; ; attempt++) {
      const args = ["--addr", `127.0.0.1:${this.port}`, "--data", this.dataDir, ...this.extraArgs];
      const child = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
      this.child = child;
      let output = "";
      let exited = false;
      child.once("exit", () => (exited = true));
      const collect = (d) => {
        output += d;
        process.stdout.write(`  [server] ${d}`);
      };
      child.stdout.on("data", collect);
      child.stderr.on("data", collect);
      for (let i = 0; i < 400 && !exited; i++) {
        if (!this.port) {
          const banner = output.match(/visitor page:\s+http:\/\/127\.0\.0\.1:(\d+)\//);
          if (banner) {
            this.port = Number(banner[1]);
            this.base = `http://127.0.0.1:${this.port}`;
          }
        }
        if (this.port) {
          try {
            const response = await fetch(`${this.base}/healthz`);
            if (response.ok) return;
          } catch {
            // not yet
          }
        }
        await sleep(50);
      }
      // A restart can find the port briefly taken (another process's outgoing connection): try again.
      if (exited && output.includes("Address already in use") && attempt < 40) {
        this.child = null;
        await sleep(250);
        continue;
      }
      throw new Error(`the demo did not start: ${output.slice(-800)}`);
    }
  }

  /** SIGTERM, and waits for the exit (the demo commits what is queued and ends its connections). */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }

  /** The child process (to kill it hard). */
  get process() {
    return this.child;
  }
}
