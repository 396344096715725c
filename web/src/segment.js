// The bundle's pre- and postprocessing (configs/inference.yaml, commands/onnx_segment.py) on
// plain typed arrays, so that the page's masks are the bundle's masks:
//   1. decode at a reduced scale as scripts/image_io.py's ShrinkOnLoad does for large images
//      (JPEG: DCT scaling by 2, 4 or 8, emulated here by box averaging; other 8-bit images:
//      Pillow's Image.reduce, a box average);
//   2. 3 channels (alpha dropped), bilinear resize to the model's size with the arithmetic of
//      torch's interpolate(mode="bilinear", align_corners=False), no anti-aliasing (MONAI's Resized);
//   3. min-max over the whole image to [0, 255] (ScaleIntensityd; a constant image becomes 0);
//   4. sigmoid of the logits, resized back to the ORIGINAL size bilinearly (columns first, then
//      rows, as scripts/resampling.py), lesion where the probability is > 0.5.
// Resizing is done here, never by a canvas: canvas scaling filters differently.

/** Pixels of a decoded image: RGBA bytes, row-major, as a canvas's getImageData gives them. */
export class Pixels {
  constructor(width, height, rgba) {
    this.width = width;
    this.height = height;
    this.rgba = rgba;
  }
}

/** What the bundle's reader would do with the file, from its first bytes: whether Pillow
 * decodes it at a reduced scale (JPEG) and whether Image.reduce may average it (8-bit images;
 * Pillow leaves 16-bit grayscale PNGs at full size). */
export function fileKind(head) {
  const isJpeg = head.length > 2 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  const isPng = head.length > 25 && head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47;
  const gray16Png = isPng && head[24] === 16 && head[25] === 0; // IHDR bit depth, colour type: Pillow's "I;16"
  return { isJpeg, reducible: !gray16Png };
}

/** Averages factor x factor boxes (partial boxes at the right and bottom edges over the pixels
 * they have), rounding to bytes as Pillow's Image.reduce does. */
export function boxReduce(image, factor) {
  const { width, height, rgba } = image;
  const outW = Math.ceil(width / factor);
  const outH = Math.ceil(height / factor);
  const out = new Uint8ClampedArray(outW * outH * 4);
  const sums = new Float64Array(outW * 4);
  const counts = new Float64Array(outW);
  for (let oy = 0; oy < outH; oy++) {
    sums.fill(0);
    counts.fill(0);
    for (let y = oy * factor; y < Math.min(height, (oy + 1) * factor); y++) {
      const row = y * width * 4;
      for (let x = 0; x < width; x++) {
        const ox = (x / factor) | 0;
        const i = row + x * 4;
        const o = ox * 4;
        sums[o] += rgba[i];
        sums[o + 1] += rgba[i + 1];
        sums[o + 2] += rgba[i + 2];
        sums[o + 3] += rgba[i + 3];
        counts[ox] += 1;
      }
    }
    for (let ox = 0; ox < outW; ox++) {
      for (let c = 0; c < 4; c++) out[(oy * outW + ox) * 4 + c] = Math.round(sums[ox * 4 + c] / counts[ox]);
    }
  }
  return new Pixels(outW, outH, out);
}

/** scripts/image_io.py's shrink_on_load for a network input of minSize: the image the bundle's
 * network actually sees for a large photo. */
export function shrinkOnLoad(image, kind, minSize) {
  if (kind.isJpeg) {
    // Pillow's JpegImageFile.draft: the largest of 8, 4, 2 not above min(w // size, h // size)
    const scale = Math.min(Math.floor(image.width / minSize), Math.floor(image.height / minSize));
    const dct = [8, 4, 2].find((s) => scale >= s);
    if (dct) image = boxReduce(image, dct);
  }
  const factor = Math.min(Math.floor(image.width / minSize), Math.floor(image.height / minSize));
  return factor > 1 && kind.reducible ? boxReduce(image, factor) : image;
}

/** Source positions of torch's bilinear interpolation (align_corners=False) along one axis. */
function samplingAxis(inLen, outLen) {
  const low = new Int32Array(outLen);
  const high = new Int32Array(outLen);
  const weight = new Float32Array(outLen);
  const scale = Math.fround(inLen / outLen);
  for (let i = 0; i < outLen; i++) {
    const source = Math.max(Math.fround(Math.fround(scale * (i + 0.5)) - 0.5), 0);
    const l = Math.min(Math.floor(source), inLen - 1);
    low[i] = l;
    high[i] = Math.min(l + 1, inLen - 1);
    weight[i] = source - l;
  }
  return { low, high, weight };
}

/** (channels, h, w) planar float32 -> (channels, outH, outW), bilinear as torch's interpolate. */
export function resizeBilinear(planes, channels, h, w, outH, outW) {
  const cols = samplingAxis(w, outW);
  const rows = samplingAxis(h, outH);
  const wide = new Float32Array(channels * h * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      const src = (c * h + y) * w;
      const dst = (c * h + y) * outW;
      for (let x = 0; x < outW; x++) {
        const a = planes[src + cols.low[x]];
        wide[dst + x] = a + cols.weight[x] * (planes[src + cols.high[x]] - a);
      }
    }
  }
  const out = new Float32Array(channels * outH * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outH; y++) {
      const top = (c * h + rows.low[y]) * outW;
      const bottom = (c * h + rows.high[y]) * outW;
      const t = rows.weight[y];
      const dst = (c * outH + y) * outW;
      for (let x = 0; x < outW; x++) out[dst + x] = wide[top + x] + t * (wide[bottom + x] - wide[top + x]);
    }
  }
  return out;
}

/** The model's input, (1, 3, size, size) float32: RGB of the (shrunk) image, resized, min-max
 * scaled to [0, 255]. */
export function modelInput(image, size) {
  const { width, height, rgba } = image;
  const planes = new Float32Array(3 * width * height);
  const n = width * height;
  for (let i = 0; i < n; i++) {
    planes[i] = rgba[i * 4];
    planes[n + i] = rgba[i * 4 + 1];
    planes[2 * n + i] = rgba[i * 4 + 2];
  }
  const input = width === size && height === size ? planes : resizeBilinear(planes, 3, height, width, size, size);
  let low = Infinity;
  let high = -Infinity;
  for (const v of input) {
    if (v < low) low = v;
    if (v > high) high = v;
  }
  const range = high - low;
  for (let i = 0; i < input.length; i++) input[i] = range === 0 ? 0 : ((input[i] - low) / range) * 255;
  return input;
}

/** Logits (h, w) -> mask bytes (height, width), 255 for lesion: sigmoid, then bilinear back to
 * the original size (columns first, then each output row), then > 0.5. Only the mask is
 * full-size. */
export function logitsToMask(logits, h, w, height, width) {
  const probability = new Float32Array(h * w);
  for (let i = 0; i < probability.length; i++) probability[i] = 1 / (1 + Math.exp(-logits[i]));
  const wide = resizeBilinear(probability, 1, h, w, h, width); // (h, width)
  const rows = samplingAxis(h, height);
  const mask = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    const top = rows.low[y] * width;
    const bottom = rows.high[y] * width;
    const t = rows.weight[y];
    const dst = y * width;
    for (let x = 0; x < width; x++) {
      const p = wide[top + x] + t * (wide[bottom + x] - wide[top + x]);
      mask[dst + x] = p > 0.5 ? 255 : 0;
    }
  }
  return mask;
}
