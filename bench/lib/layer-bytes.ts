import type { GeneratedImage } from '../../test/helpers/images.js';

/** The bytes of an image's blobs: what a pull fetches from the upstream once. */
export function layerBytes(img: GeneratedImage): number {
  return img.blobs.reduce((s, b) => s + b.size, 0);
}
