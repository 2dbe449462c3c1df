/*
 * The TUN device and link queries: open /dev/net/tun (TUNSETIFF, optionally with IFF_VNET_HDR and
 * TUNSETOFFLOAD), adopt an inherited fd (TUNGETIFF), batched non-blocking read/write over
 * caller-owned slabs (reads of offload frames split super-packets through gso.c), and the
 * MTU/ifindex ioctls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "offload.h"
#include "wgts.h"

/* Not in older uapi headers (Linux 6.2). */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

/* Bytes of struct virtio_net_hdr, the header size set on devices we open. */
#define VNET_HDR_LEN 10

/*
 * Asks for checksum, TSO and USO offloads, then without USO (kernels before 6.2), then none;
 * returns the TUN_F_* flags granted.
 */
static int set_offload(int fd) {
  static const unsigned int tries[] = {
      TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,
      TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
  };
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
    if (ioctl(fd, TUNSETOFFLOAD, tries[i]) == 0) return (int)tries[i];
  }
  ioctl(fd, TUNSETOFFLOAD, 0u);
  return 0;
}

/*
 * tunOpen(name, multiQueue?, vnetHdr?) -> { fd, name, offload }. offload is -1 without vnetHdr,
 * else the TUN_F_* flags the kernel granted (0: frames carry the header but nothing is offloaded).
 */
napi_value wgts_tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!wgts_args(env, info, 3, argv)) return NULL;
  char name[IFNAMSIZ + 8];
  int mq = 0, vnet = 0;
  if (wgts_arg_string(env, argv[0], name, sizeof name) || wgts_arg_bool(env, argv[1], &mq) ||
      wgts_arg_bool(env, argv[2], &vnet)) {
    return NULL;
  }
  if (strlen(name) >= IFNAMSIZ) return wgts_throw_errno(env, ENAMETOOLONG, "TUNSETIFF");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return wgts_throw_errno(env, errno, "open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0) | (vnet ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, strlen(name) + 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return wgts_throw_errno(env, err, "TUNSETIFF");
  }
  int offload = -1;
  if (vnet) {
    int sz = VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int err = errno;
      close(fd);
      return wgts_throw_errno(env, err, "TUNSETVNETHDRSZ");
    }
    offload = set_offload(fd);
  }
  return wgts_fd_name(env, fd, ifr.ifr_name, "offload", offload);
}

/*
 * tunFromFd(fd) -> { fd, name, vnetHdr }; makes the fd non-blocking and close-on-exec. vnetHdr is
 * the virtio_net_hdr size every frame carries when the device has IFF_VNET_HDR, else 0.
 */
napi_value wgts_tun_from_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (wgts_arg_int(env, argv[0], &fd)) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return wgts_throw_errno(env, errno, "TUNGETIFF");
  if (!(ifr.ifr_flags & IFF_TUN) || !(ifr.ifr_flags & IFF_NO_PI)) {
    return wgts_throw_errno(env, EINVAL, "TUNGETIFF (not an IFF_TUN|IFF_NO_PI device)");
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    return wgts_throw_errno(env, errno, "fcntl");
  }
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl >= 0) fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
  int hdr = 0;
  if (ifr.ifr_flags & IFF_VNET_HDR) {
    if (ioctl(fd, TUNGETVNETHDRSZ, &hdr) < 0) {
      return wgts_throw_errno(env, errno, "TUNGETVNETHDRSZ");
    }
    if (hdr < VNET_HDR_LEN || hdr > 64) return wgts_throw_errno(env, EINVAL, "TUNGETVNETHDRSZ");
  }
  return wgts_fd_name(env, fd, ifr.ifr_name, "vnetHdr", hdr);
}

/*
 * tunRead(fd, slab, slotSize, maxCount, lengths, offset = 0) -> count, or -errno when the first
 * read fails with something other than EAGAIN. Packet i lands at i * slotSize + offset.
 */
napi_value wgts_tun_read(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!wgts_args(env, info, 6, argv)) return NULL;
  int32_t fd, slot, max, offset = 0;
  uint8_t *slab;
  size_t slab_len;
  int32_t *lengths;
  napi_valuetype t;
  if (wgts_arg_int(env, argv[0], &fd) || wgts_arg_bytes(env, argv[1], &slab, &slab_len) ||
      wgts_arg_int(env, argv[2], &slot) || wgts_arg_int(env, argv[3], &max)) {
    return NULL;
  }
  napi_typeof(env, argv[5], &t);
  if (t != napi_undefined && wgts_arg_int(env, argv[5], &offset)) return NULL;
  if (slot <= 0 || max < 0 || offset < 0 || offset >= slot ||
      (size_t)slot * (size_t)max > slab_len) {
    return wgts_throw_range(env, "slab too small for slotSize * maxCount");
  }
  if (wgts_arg_i32(env, argv[4], &lengths, (size_t)max)) return NULL;
  int32_t n = 0;
  while (n < max) {
    ssize_t r = read(fd, slab + (size_t)n * slot + offset, (size_t)(slot - offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n == 0) return wgts_int(env, -errno);
      break; /* the error repeats on the next call, after these packets are handled */
    }
    lengths[n++] = (int32_t)r;
  }
  return wgts_int(env, n);
}

/* Int32 slots of tunReadVnet's `state` (see LinuxTun). */
enum {
  RV_HDR_SIZE,    /* in: the virtio_net_hdr size */
  RV_PENDING_LEN, /* in/out: length of a super-packet in scratch not fully split yet (0: none) */
  RV_PENDING_NEXT, /* in/out: its next segment */
  RV_FRAMES,      /* counters, wrapping */
  RV_GSO_FRAMES,
  RV_GSO_SEGMENTS,
  RV_MALFORMED,
  RV_CSUM_COMPLETED,
  RV_STATE_SIZE
};

/*
 * tunReadVnet(fd, slab, slotSize, maxCount, lengths, scratch, state, offset = 0) -> count, or
 * -errno when nothing was delivered and the first read failed with something other than EAGAIN.
 * Reads frames (virtio_net_hdr + packet) of an IFF_VNET_HDR device; packet i lands at
 * i * slotSize + offset as a complete IP packet: super-packets are split in place into
 * consecutive slots, and one that does not fit in the slots left is parked in `scratch`
 * (>= hdrSize + slotSize bytes) and its remaining segments start the next call.
 */
napi_value wgts_tun_read_vnet(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!wgts_args(env, info, 8, argv)) return NULL;
  int32_t fd, slot, max, offset = 0;
  uint8_t *slab, *scratch;
  size_t slab_len, scratch_len;
  int32_t *lengths, *st;
  napi_valuetype t;
  if (wgts_arg_int(env, argv[0], &fd) || wgts_arg_bytes(env, argv[1], &slab, &slab_len) ||
      wgts_arg_int(env, argv[2], &slot) || wgts_arg_int(env, argv[3], &max) ||
      wgts_arg_bytes(env, argv[5], &scratch, &scratch_len) ||
      wgts_arg_i32(env, argv[6], &st, RV_STATE_SIZE)) {
    return NULL;
  }
  napi_typeof(env, argv[7], &t);
  if (t != napi_undefined && wgts_arg_int(env, argv[7], &offset)) return NULL;
  int32_t hs = st[RV_HDR_SIZE];
  if (slot <= 0 || max < 0 || offset < 0 || offset >= slot ||
      (size_t)slot * (size_t)max > slab_len) {
    return wgts_throw_range(env, "slab too small for slotSize * maxCount");
  }
  if (hs < VNET_HDR_LEN || hs > 64 || scratch_len < (size_t)hs + (size_t)slot) {
    return wgts_throw_range(env, "bad vnet header size or scratch too small");
  }
  /* The state is JavaScript's to write: a parked frame must lie inside scratch and its next
   * segment be a real index, or the split below would read past scratch or compute a huge
   * offset from a negative one. */
  int32_t pending = st[RV_PENDING_LEN], next = st[RV_PENDING_NEXT];
  if (pending < 0 || (size_t)pending > scratch_len - (size_t)hs || (pending > 0 && next < 0)) {
    return wgts_throw_range(env, "bad pending length or next segment in state");
  }
  if (wgts_arg_i32(env, argv[4], &lengths, (size_t)max)) return NULL;
  size_t room = (size_t)(slot - offset);
  int32_t n = 0;
  wgts_vnet v;
  if (pending > 0 && max > 0) {
    size_t len = (size_t)pending;
    if (wgts_vnet_parse(&v, scratch, scratch + hs, len, room) <= 0 || v.gso == 0) {
      st[RV_PENDING_LEN] = 0; /* only if JavaScript changed scratch: it parsed when parked */
    } else {
      n = wgts_gso_split(&v, scratch + hs, len, next, slab + offset, (size_t)slot, max, lengths);
      next += n;
      st[RV_PENDING_NEXT] = next;
      if (next >= v.segments) st[RV_PENDING_LEN] = 0;
      if (next < v.segments) return wgts_int(env, n);
    }
  }
  uint8_t hdr[64];
  while (n < max) {
    uint8_t *pkt = slab + (size_t)n * slot + offset;
    struct iovec iov[2] = {{hdr, (size_t)hs}, {pkt, room}};
    ssize_t r = readv(fd, iov, 2);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n == 0) return wgts_int(env, -errno);
      break; /* the error repeats on the next call, after these packets are handled */
    }
    if (r == 0) break; /* end of file: not a TUN device, and reading again would spin */
    st[RV_FRAMES]++;
    size_t len = (size_t)r > (size_t)hs ? (size_t)r - (size_t)hs : 0;
    if (len == 0 || wgts_vnet_parse(&v, hdr, pkt, len, room) <= 0) {
      st[RV_MALFORMED]++;
      continue;
    }
    if (v.gso == 0) {
      if (v.csum_completed) st[RV_CSUM_COMPLETED]++;
      lengths[n++] = (int32_t)len;
      continue;
    }
    st[RV_GSO_FRAMES]++;
    st[RV_GSO_SEGMENTS] += v.segments;
    if (v.segments <= max - n) {
      n += wgts_gso_split(&v, pkt, len, 0, pkt, (size_t)slot, v.segments, lengths + n);
      continue;
    }
    memcpy(scratch, hdr, (size_t)hs);
    memcpy(scratch + hs, pkt, len);
    int k = wgts_gso_split(&v, scratch + hs, len, 0, pkt, (size_t)slot, max - n, lengths + n);
    n += k;
    st[RV_PENDING_LEN] = (int32_t)len;
    st[RV_PENDING_NEXT] = k;
    break;
  }
  return wgts_int(env, n);
}

/*
 * tunWrite(fd, slab, offsets, lengths, count, vnetHdr = 0, coalesce = 0) -> written. A packet the
 * kernel refuses is skipped (counted as not written); EAGAIN stops the batch. With vnetHdr > 0
 * each packet goes out behind that many zero bytes (a virtio_net_hdr saying: no GSO, checksum
 * complete) through writev, so the caller's bytes before the packet are neither needed nor
 * touched. With coalesce bits (and a 10-byte header), runs of consecutive packets of one TCP
 * (WGTS_COALESCE_TCP) or UDP (WGTS_COALESCE_UDP) flow go out as one super-packet (gso.c
 * wgts_tcp_coalesce, wgts_udp_coalesce); they count as that many packets written.
 */
static __thread uint8_t coalesce_buf[65536];

napi_value wgts_tun_write(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!wgts_args(env, info, 7, argv)) return NULL;
  static const uint8_t zero_hdr[64];
  int32_t fd, count, hs = 0, coalesce = 0;
  napi_valuetype t;
  napi_typeof(env, argv[5], &t);
  if (t != napi_undefined && wgts_arg_int(env, argv[5], &hs)) return NULL;
  napi_typeof(env, argv[6], &t);
  if (t != napi_undefined && wgts_arg_int(env, argv[6], &coalesce)) return NULL;
  if (hs < 0 || hs > 64) return wgts_throw_range(env, "bad vnet header size");
  uint8_t *slab;
  size_t slab_len;
  int32_t *offsets, *lengths;
  if (wgts_arg_int(env, argv[0], &fd) || wgts_arg_bytes(env, argv[1], &slab, &slab_len) ||
      wgts_arg_int(env, argv[4], &count)) {
    return NULL;
  }
  if (count < 0) return wgts_throw_range(env, "negative count");
  if (wgts_arg_i32(env, argv[2], &offsets, (size_t)count) ||
      wgts_arg_i32(env, argv[3], &lengths, (size_t)count)) {
    return NULL;
  }
  for (int32_t i = 0; i < count; i++) {
    if (offsets[i] < 0 || lengths[i] < 0 || (size_t)offsets[i] + (size_t)lengths[i] > slab_len) {
      return wgts_throw_range(env, "packet outside the slab");
    }
  }
  int32_t written = 0;
  for (int32_t i = 0; i < count; i++) {
    ssize_t r;
    if (coalesce && hs == 10) {
      uint8_t vnet[10];
      size_t len = 0;
      int n = 1;
      if (coalesce & WGTS_COALESCE_TCP) {
        n = wgts_tcp_coalesce(slab, offsets, lengths, i, count, coalesce_buf, sizeof coalesce_buf,
                              vnet, &len);
      }
      if (n == 1 && (coalesce & WGTS_COALESCE_UDP)) {
        n = wgts_udp_coalesce(slab, offsets, lengths, i, count, coalesce_buf, sizeof coalesce_buf,
                              vnet, &len);
      }
      if (n > 1) {
        struct iovec gv[2] = {{vnet, 10}, {coalesce_buf, len}};
        do {
          r = writev(fd, gv, 2);
        } while (r < 0 && errno == EINTR);
        int err = r < 0 ? errno : 0;
        /* The merged plaintext must not outlive the write (the buffer lives as long as the
         * thread). */
        explicit_bzero(coalesce_buf, len);
        if (r >= 0) {
          written += n;
        } else if (err == EAGAIN || err == EWOULDBLOCK) {
          break;
        }
        i += n - 1;
        continue;
      }
    }
    struct iovec iov[2] = {{(void *)zero_hdr, (size_t)hs},
                           {slab + offsets[i], (size_t)lengths[i]}};
    do {
      r = hs ? writev(fd, iov, 2) : write(fd, slab + offsets[i], (size_t)lengths[i]);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) {
      written++;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    }
  }
  return wgts_int(env, written);
}

static int ifreq_for(napi_env env, napi_value v, struct ifreq *ifr) {
  char name[IFNAMSIZ + 8];
  if (wgts_arg_string(env, v, name, sizeof name)) return -1;
  if (strlen(name) >= IFNAMSIZ) {
    wgts_throw_errno(env, ENAMETOOLONG, "ifreq");
    return -1;
  }
  memset(ifr, 0, sizeof *ifr);
  memcpy(ifr->ifr_name, name, strlen(name) + 1);
  return 0;
}

/* Runs one SIOC* ioctl on a throwaway AF_INET socket; returns 0 or a positive errno. */
static int link_ioctl(unsigned long req, struct ifreq *ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  int r = ioctl(s, req, ifr);
  int err = r < 0 ? errno : 0;
  close(s);
  return err;
}

/* ifMtu(name) -> mtu */
napi_value wgts_if_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  struct ifreq ifr;
  if (ifreq_for(env, argv[0], &ifr)) return NULL;
  int err = link_ioctl(SIOCGIFMTU, &ifr);
  if (err) return wgts_throw_errno(env, err, "SIOCGIFMTU");
  return wgts_int(env, ifr.ifr_mtu);
}

/* setIfMtu(name, mtu) */
napi_value wgts_set_if_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!wgts_args(env, info, 2, argv)) return NULL;
  struct ifreq ifr;
  int32_t mtu;
  if (ifreq_for(env, argv[0], &ifr) || wgts_arg_int(env, argv[1], &mtu)) return NULL;
  ifr.ifr_mtu = mtu;
  int err = link_ioctl(SIOCSIFMTU, &ifr);
  if (err) return wgts_throw_errno(env, err, "SIOCSIFMTU");
  return NULL;
}

/* ifIndex(name) -> ifindex */
napi_value wgts_if_index(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  struct ifreq ifr;
  if (ifreq_for(env, argv[0], &ifr)) return NULL;
  int err = link_ioctl(SIOCGIFINDEX, &ifr);
  if (err) return wgts_throw_errno(env, err, "SIOCGIFINDEX");
  return wgts_int(env, ifr.ifr_ifindex);
}

/* closeFd(fd) -> 0 or -errno (stop the fd's poll first). */
napi_value wgts_close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (wgts_arg_int(env, argv[0], &fd)) return NULL;
  return wgts_int(env, close(fd) < 0 ? -errno : 0);
}

/*
 * coalesceProbe() -> how many bytes of this thread's coalescing buffer are not zero. For tests:
 * tunWrite wipes what it merged there once the write is done, so this is 0 after any call.
 */
napi_value wgts_coalesce_probe(napi_env env, napi_callback_info info) {
  (void)info;
  int64_t dirty = 0;
  for (size_t i = 0; i < sizeof coalesce_buf; i++) dirty += coalesce_buf[i] != 0;
  return wgts_int(env, dirty);
}
