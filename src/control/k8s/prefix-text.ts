/**
 * The text form of a prefix, computed once per prefix object: the planner reuses the same
 * objects from one pass to the next (see pod-index.ts), and diffs of 55,000 addresses would
 * otherwise format every one of them on every pod event.
 */
import { formatPrefix, type IpPrefix } from '../../tunnel/ip.js';

const cache = new WeakMap<IpPrefix, string>();

export function prefixText(p: IpPrefix): string {
  let t = cache.get(p);
  if (t === undefined) cache.set(p, (t = formatPrefix(p)));
  return t;
}
