// Builds the static page into dist/: the page's own files, the onnxruntime-web files it loads
// (two builds: WebGPU and plain WASM, the lighter one where WebGPU is missing) and the bundle's
// ONNX model. Nothing is fetched from elsewhere at run time.
//     npm ci && npm run build
import { cpSync, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const ort = join(here, "node_modules", "onnxruntime-web", "dist");
const model = join(here, "..", "bundle", "models", "model.onnx");

const ortFiles = [
  "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", // WASM
  "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm", // WebGPU
];

function need(path, fix) {
  if (!existsSync(path)) {
    console.error(`error: ${path}: no such file (${fix})`);
    process.exit(1);
  }
}

need(ort, "run `npm ci` in web/ first");
need(model, "the bundle's ONNX model; rebuild it from bundle/ with `python commands/export_onnx.py`");
for (const name of ortFiles) need(join(ort, name), "onnxruntime-web's files changed: check the version in package.json");

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
cpSync(join(here, "src"), dist, { recursive: true });
for (const name of ortFiles) cpSync(join(ort, name), join(dist, name));
cpSync(model, join(dist, "model.onnx"));
const size = ortFiles.concat("model.onnx").reduce((sum, name) => sum + statSync(join(dist, name)).size, 0);
console.log(`built ${dist} (onnxruntime-web and model: ${(size / 1e6).toFixed(1)} MB)`);
