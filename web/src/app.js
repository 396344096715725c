// The page: loads model.onnx with onnxruntime-web (WebGPU where the browser has a hardware
// adapter, WASM otherwise), segments the image the user picks or drops, shows the mask and an
// overlay, and offers the mask as a PNG at the image's original size. Test interface: the file
// input #image, <img id="mask"> (src: the mask PNG as a data URL, data-source: the file's name)
// and #status, which reads "done" or an error message (data-file: the file it is about).
import { Pixels, fileKind, logitsToMask, modelInput, shrinkOnLoad } from "./segment.js";

const SIZE = 256; // the model's input size (bundle/configs/metadata.json)
const OVERLAY_RGB = [255, 0, 0];
const OVERLAY_ALPHA = 0.45;

const $ = (id) => document.getElementById(id);
const status = $("status");

function show(message, isError = false) {
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function runModel(ort, session, input) {
  return session.run({ [session.inputNames[0]]: new ort.Tensor("float32", input, [1, 3, SIZE, SIZE]) });
}

/** A session that has run once already (the first run prepares kernels: several times slower). */
async function openSession(ort, bytes, executionProvider) {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [executionProvider] });
  await runModel(ort, session, new Float32Array(3 * SIZE * SIZE));
  return session;
}

/** Whether to try WebGPU: a hardware adapter, or any adapter when the page's address asks for
 * it with ?backend=webgpu. A software adapter (SwiftShader) runs this model hundreds of times
 * slower than WASM. ?backend=wasm skips WebGPU. */
async function useWebGpu(wanted) {
  if (wanted === "wasm" || !navigator.gpu) return false;
  const adapter = await navigator.gpu.requestAdapter();
  return Boolean(adapter) && (wanted === "webgpu" || !adapter.info?.isFallbackAdapter);
}

async function loadModel() {
  const response = await fetch("model.onnx");
  if (!response.ok) throw new Error(`model.onnx: HTTP ${response.status} (build the page: cd web && npm run build)`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const wanted = new URLSearchParams(location.search).get("backend");
  try {
    if (await useWebGpu(wanted)) {
      const ort = await import("./ort.webgpu.min.mjs");
      return { ort, session: await openSession(ort, bytes, "webgpu"), backend: "WebGPU" };
    }
  } catch (error) {
    console.warn("WebGPU failed, using WASM:", error);
  }
  const ort = await import("./ort.wasm.min.mjs");
  const session = await openSession(ort, bytes, "wasm");
  const threads = ort.env.wasm.numThreads;
  return { ort, session, backend: `WASM (${threads} thread${threads === 1 ? "" : "s"})` };
}

const model = loadModel();
model.then(
  ({ backend }) => {
    $("backend").textContent = backend;
    $("timing").textContent = `page and model ready ${performance.now().toFixed(0)} ms after opening`;
    show("ready: pick an image");
  },
  (error) => show(`error: the model did not load (${error.message ?? error})`, true),
);

async function decode(file) {
  let bitmap;
  try {
    // pixels as the bundle reads them: no colour management, alpha not premultiplied, and
    // turned by the EXIF orientation as viewers show the photo
    bitmap = await createImageBitmap(file, {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "from-image",
    });
  } catch {
    throw new Error(`${file.name} is not an image this browser can read (${file.type || "unknown type"}); pick a PNG or JPEG image`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  return new Pixels(canvas.width, canvas.height, data);
}

function maskDataUrl(mask, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const picture = new ImageData(width, height);
  for (let i = 0; i < mask.length; i++) {
    const o = i * 4;
    picture.data[o] = picture.data[o + 1] = picture.data[o + 2] = mask[i];
    picture.data[o + 3] = 255;
  }
  canvas.getContext("2d").putImageData(picture, 0, 0);
  return canvas.toDataURL("image/png");
}

function drawOverlay(image, mask) {
  const canvas = $("overlay");
  canvas.width = image.width;
  canvas.height = image.height;
  const picture = new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height);
  const d = picture.data;
  for (let i = 0; i < mask.length; i++) {
    const o = i * 4;
    d[o + 3] = 255; // shown opaque, as the network sees it
    if (mask[i]) for (let c = 0; c < 3; c++) d[o + c] = (1 - OVERLAY_ALPHA) * d[o + c] + OVERLAY_ALPHA * OVERLAY_RGB[c];
  }
  canvas.getContext("2d").putImageData(picture, 0, 0);
  canvas.hidden = false;
}

let latest = 0; // a file picked while another is being segmented replaces it

async function segment(file) {
  const run = ++latest;
  const start = performance.now();
  status.dataset.file = file.name;
  show(`segmenting ${file.name}…`);
  const maskImage = $("mask");
  maskImage.hidden = true;
  maskImage.removeAttribute("src");
  maskImage.dataset.source = "";
  $("download").hidden = true;
  $("overlay").hidden = true;
  try {
    const { ort, session } = await model;
    const head = new Uint8Array(await file.slice(0, 32).arrayBuffer());
    const image = await decode(file);
    const input = modelInput(shrinkOnLoad(image, fileKind(head), SIZE), SIZE);
    const modelStart = performance.now();
    const logits = (await runModel(ort, session, input))[session.outputNames[0]];
    const modelMs = performance.now() - modelStart;
    const mask = logitsToMask(await logits.getData(), SIZE, SIZE, image.height, image.width);
    if (run !== latest) return;
    const url = maskDataUrl(mask, image.width, image.height);
    drawOverlay(image, mask);
    const download = $("download");
    download.href = url;
    download.download = `${file.name.replace(/\.[^.]*$/, "")}_mask.png`;
    download.hidden = false;
    maskImage.src = url;
    maskImage.dataset.source = file.name;
    maskImage.hidden = false;
    const totalMs = performance.now() - start;
    $("timing").textContent = `${image.width}×${image.height}: ${totalMs.toFixed(0)} ms in all, model ${modelMs.toFixed(0)} ms`;
    show("done");
  } catch (error) {
    if (run === latest) show(`error: ${error.message ?? error}`, true);
  }
}

$("image").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) segment(file);
});

const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const [file] = event.dataTransfer.files;
  if (file) segment(file);
});
