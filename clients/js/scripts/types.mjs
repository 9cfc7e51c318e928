// Emits the package's declaration files (types/*.d.ts) from the JSDoc of src/ with tsc.
//   node scripts/types.mjs           write them into types/ (commit the result)
//   node scripts/types.mjs --check   fail when types/ is not what src/ gives (forgotten after an API change)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "kf-client-types-")) : join(root, "types");
if (!check) rmSync(out, { recursive: true, force: true });
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.types.json"), "--outDir", out], { stdio: "inherit" });
if (check) {
  const committed = join(root, "types");
  const list = (dir) => {
    try {
      return readdirSync(dir).sort();
    } catch {
      return [];
    }
  };
  const fresh = list(out);
  const stale = [];
  if (JSON.stringify(fresh) !== JSON.stringify(list(committed))) stale.push(`files: ${list(committed).join(", ")} != ${fresh.join(", ")}`);
  else for (const name of fresh) if (readFileSync(join(out, name), "utf8") !== readFileSync(join(committed, name), "utf8")) stale.push(name);
  rmSync(out, { recursive: true, force: true });
  if (stale.length) {
    console.error(`types/ is out of date (${stale.join("; ")}): run \`npm run types\` and commit it`);
    process.exit(1);
  }
}
