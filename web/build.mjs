// Builds the dashboard into ../src/trademk/web/dist: index.html plus content-hashed
// assets (one JavaScript bundle with lightweight-charts inside, one stylesheet).
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, "../src/trademk/web/dist");
const assetsDir = path.join(outDir, "assets");
const publicPrefix = "/app/assets/";

await rm(outDir, { recursive: true, force: true });
await mkdir(assetsDir, { recursive: true });

const result = await esbuild.build({
  entryPoints: [path.join(here, "src/main.js")],
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: true,
  legalComments: "linked",
  outdir: assetsDir,
  entryNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
const script = outputs.find((name) => name.endsWith(".js"));
const style = outputs.find((name) => name.endsWith(".css"));
if (!script || !style) {
  throw new Error(`the build produced no script or no stylesheet: ${outputs.join(", ")}`);
}
const template = await readFile(path.join(here, "src/index.html"), "utf8");
const page = template
  .replace("{{script}}", publicPrefix + script)
  .replace("{{style}}", publicPrefix + style);
await writeFile(path.join(outDir, "index.html"), page);
console.log(`dashboard built into ${path.relative(process.cwd(), outDir)}: ${outputs.join(", ")}`);
