/**
 * The platform switch for the OS seams: openTun/tunFromFd/openBind pick the Linux
 * implementations, and refuse elsewhere with ERR_UNSUPPORTED. The only file that checks the
 * platform; the rest of the project sees TunDevice and Bind.
 */
import { WgError } from '../errors.js';
import { LinuxTun, type LinuxTunOptions } from './linux.js';
import { UdpBind } from './udp.js';

export { LinuxTun, type LinuxTunOptions, READ_BATCH, TUN_SLOT_SIZE } from './linux.js';
export { UdpBind, RECV_BATCH, UDP_SLOT_SIZE } from './udp.js';
export { MemoryTun, MemoryNetwork, MemoryBind, type DropHook } from './memory.js';
export { native, type NativeAddon } from './native.js';

function requireLinux(what: string): void {
  if (process.platform !== 'linux') {
    throw new WgError(
      'ERR_UNSUPPORTED',
      `${what} is only implemented on Linux (this is ${process.platform})`,
    );
  }
}

/** Creates the TUN device `name` (MTU 1420 unless opts.mtu says otherwise). */
export function openTun(name: string, opts: LinuxTunOptions = {}): LinuxTun {
  requireLinux('the TUN device');
  return LinuxTun.create(name, opts);
}

/** Adopts an inherited TUN fd (WG_TUN_FD). */
export function tunFromFd(fd: number, opts: Pick<LinuxTunOptions, 'mtu'> = {}): LinuxTun {
  requireLinux('the TUN device');
  return LinuxTun.fromFd(fd, opts);
}

/** A UDP bind over the native sockets. */
export function openBind(): UdpBind {
  requireLinux('the UDP bind');
  return new UdpBind();
}
