// Types of scripts/build-node.mjs (for its test).
export interface BundleTarget {
  /** Directory the entry and the manifest's paths are relative to. */
  root: string;
  entry: string;
  /** Output file (…mjs); its manifest is written beside it (….inputs.json). */
  bundle: string;
}
export function isFresh(target?: BundleTarget): boolean;
export function buildNode(target?: BundleTarget): Promise<string>;
export function freshBundle(target?: BundleTarget): Promise<string | undefined>;
