/**
 * The host's routes as the UDP bind needs them (over the addon's rtnetlink calls): a watch that
 * reports route changes, and the routes of a link that carry their own MTU. Without rtnetlink (a
 * sandbox) the watch is absent and there are no route MTUs: sticky sources then only fall over
 * on send errors, and padding uses the link MTU.
 */
import type { RouteMtu } from '../tunnel/io.js';
import type { NativeAddon, PollHandle } from './native.js';

/** Bytes per routeMtus record (see NativeAddon.routeMtus) and how many routes are read. */
const ROUTE_MTU_SIZE = 24;
const ROUTE_MTU_RECORDS = 4096;

export interface RouteWatch {
  close(): void;
}

/** Calls `onChange` after each wake-up that read route changes; null without rtnetlink. */
export function watchRoutes(addon: NativeAddon, onChange: () => void): RouteWatch | null {
  if (typeof addon.routeWatchOpen !== 'function') return null;
  let fd: number;
  try {
    fd = addon.routeWatchOpen();
  } catch {
    return null;
  }
  let poll: PollHandle | null = addon.pollStart(fd, (status) => {
    if (addon.routeWatchDrain(fd) > 0) onChange();
    if (status < 0 && poll) {
      addon.pollStop(poll);
      poll = null;
    }
  });
  return {
    close() {
      if (poll) addon.pollStop(poll);
      poll = null;
      addon.closeFd(fd);
    },
  };
}

/** Routes (every table, both families) leaving by `ifindex` with an MTU metric. */
export function readRouteMtus(addon: NativeAddon, ifindex: number): RouteMtu[] {
  if (ifindex <= 0 || typeof addon.routeMtus !== 'function') return [];
  const out = new Uint8Array(ROUTE_MTU_RECORDS * ROUTE_MTU_SIZE);
  const n = addon.routeMtus(ifindex, out);
  const words = new Int32Array(out.buffer);
  const routes: RouteMtu[] = [];
  for (let i = 0; i < n; i++) {
    const o = i * ROUTE_MTU_SIZE;
    const family = out[o] === 4 ? 4 : 6;
    const bytes = out.slice(o + 8, o + (family === 4 ? 12 : 24));
    routes.push({ prefix: { family, bytes, cidr: out[o + 1]! }, mtu: words[(o + 4) >> 2]! });
  }
  return routes;
}
