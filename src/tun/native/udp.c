/*
 * UDP sockets for the bind: open (v4, or v6-only v6) with large buffers, SO_MARK, and batched
 * receive/send with recvmmsg/sendmmsg over caller-owned slabs, with UDP GSO (UDP_SEGMENT) on send
 * and UDP GRO on receive when the kernel has them. Addresses cross to JavaScript as 20-byte
 * records: family(1) pad(1) port BE(2) addr(16).
 *
 * Sticky sources, as the kernel's WireGuard and wireguard-go on Linux: receive reports the local
 * address and interface each datagram arrived at (IP_PKTINFO / IPV6_PKTINFO), and send can leave
 * from such an address (the same cmsg), so a peer that contacts one of several addresses gets
 * its answers from that address. Local addresses cross as WGTS_LOCAL_SIZE records.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "offload.h"
#include "wgts.h"

/* wireguard-go asks for 7 MiB socket buffers; without CAP_NET_ADMIN the sysctl maximum applies. */
#define SOCKET_BUFFER_SIZE (7 << 20)

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
/* wireguard-go's limits: the kernel's UDP_MAX_SEGMENTS was 64 before 6.x; the IPv4 payload cap. */
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 65507

/*
 * Control space for a UDP_SEGMENT (u16) or UDP_GRO (int) cmsg plus an IP_PKTINFO or
 * IPV6_PKTINFO one, aligned for cmsghdr.
 */
typedef union {
  char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
  struct cmsghdr align;
} udp_ctrl;

static void raise_buffer(int fd, int force_opt, int opt) {
  int size = SOCKET_BUFFER_SIZE;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) == 0) return;
  setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

/* udpOpen(family: 4|6, port) -> { fd, port } */
napi_value wgts_udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!wgts_args(env, info, 2, argv)) return NULL;
  int32_t family, port;
  if (wgts_arg_int(env, argv[0], &family) || wgts_arg_int(env, argv[1], &port)) return NULL;
  if ((family != 4 && family != 6) || port < 0 || port > 65535) {
    return wgts_throw_range(env, "family must be 4 or 6, port 0..65535");
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return wgts_throw_errno(env, errno, "socket");
  raise_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  raise_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
  /* Without it receive reports no local address and sends leave from the route's choice. */
  int pktinfo = 1;
  if (family == 4) {
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &pktinfo, sizeof pktinfo);
  } else {
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &pktinfo, sizeof pktinfo);
  }
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  if (family == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    sl = sizeof *a;
  } else {
    int on = 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) < 0) {
      int err = errno;
      close(fd);
      return wgts_throw_errno(env, err, "setsockopt IPV6_V6ONLY");
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    a->sin6_addr = in6addr_any;
    sl = sizeof *a;
  }
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int err = errno;
    close(fd);
    return wgts_throw_errno(env, err, "bind");
  }
  sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
    int err = errno;
    close(fd);
    return wgts_throw_errno(env, err, "getsockname");
  }
  int bound = ntohs(family == 4 ? ((struct sockaddr_in *)&ss)->sin_port
                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
  return wgts_fd_name(env, fd, NULL, "port", bound);
}

/* udpSetMark(fd, mark) */
napi_value wgts_udp_set_mark(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!wgts_args(env, info, 2, argv)) return NULL;
  int32_t fd;
  uint32_t mark;
  if (wgts_arg_int(env, argv[0], &fd) || wgts_arg_uint32(env, argv[1], &mark)) return NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
    return wgts_throw_errno(env, errno, "setsockopt SO_MARK");
  }
  return NULL;
}

/* udpGetMark(fd) -> mark (diagnostics and tests) */
napi_value wgts_udp_get_mark(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (wgts_arg_int(env, argv[0], &fd)) return NULL;
  uint32_t mark = 0;
  socklen_t len = sizeof mark;
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) < 0) {
    return wgts_throw_errno(env, errno, "getsockopt SO_MARK");
  }
  return wgts_int(env, mark);
}

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
/* SK_MEMINFO_DROPS in linux/sock_diag.h: the socket's sk_drops. */
#define WGTS_MEMINFO_DROPS 8
#define WGTS_MEMINFO_VARS 9

/*
 * udpDrops(fd) -> buffers the kernel dropped on this socket (receive queue full), or -1 when the
 * kernel has no SO_MEMINFO. A GRO-coalesced buffer counts once however many datagrams it held.
 */
napi_value wgts_udp_drops(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (wgts_arg_int(env, argv[0], &fd)) return NULL;
  uint32_t mem[WGTS_MEMINFO_VARS];
  memset(mem, 0, sizeof mem);
  socklen_t len = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
      len < (WGTS_MEMINFO_DROPS + 1) * sizeof(uint32_t)) {
    return wgts_int(env, -1);
  }
  return wgts_int(env, (int32_t)(mem[WGTS_MEMINFO_DROPS] & 0x7fffffff));
}

/*
 * udpOffload(fd, wantGso, wantGro) -> bits: 1 = the kernel takes UDP_SEGMENT on this socket,
 * 2 = UDP_GRO is now enabled. A kernel without them answers ENOPROTOOPT: the bit stays clear.
 */
napi_value wgts_udp_offload(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!wgts_args(env, info, 3, argv)) return NULL;
  int32_t fd;
  int want_gso, want_gro;
  if (wgts_arg_int(env, argv[0], &fd) || wgts_arg_bool(env, argv[1], &want_gso) ||
      wgts_arg_bool(env, argv[2], &want_gro)) {
    return NULL;
  }
  int bits = 0;
  if (want_gso) {
    int size = 0;
    socklen_t len = sizeof size;
    if (getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0) bits |= 1;
  }
  if (want_gro) {
    int on = 1;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0) bits |= 2;
  }
  return wgts_int(env, bits);
}

static void addr_to_raw(const struct sockaddr_storage *ss, uint8_t *out) {
  memset(out, 0, WGTS_ADDR_SIZE);
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    out[0] = 4;
    memcpy(out + 2, &a->sin_port, 2);
    memcpy(out + 4, &a->sin_addr, 4);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    out[0] = 6;
    memcpy(out + 2, &a->sin6_port, 2);
    memcpy(out + 4, &a->sin6_addr, 16);
  }
}

static int raw_to_addr(const uint8_t *raw, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (raw[0] == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    memcpy(&a->sin_port, raw + 2, 2);
    memcpy(&a->sin_addr, raw + 4, 4);
    *len = sizeof *a;
    return 0;
  }
  if (raw[0] == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_port, raw + 2, 2);
    memcpy(&a->sin6_addr, raw + 4, 16);
    *len = sizeof *a;
    return 0;
  }
  return -1;
}

/* Writes the local record of an IP_PKTINFO / IPV6_PKTINFO cmsg; other cmsgs are left alone. */
static void pktinfo_to_local(const struct cmsghdr *c, uint8_t *out) {
  if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
      c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
    struct in_pktinfo pi;
    memcpy(&pi, CMSG_DATA(c), sizeof pi);
    /* spec_dst, as wireguard-go: the address to answer from (the interface's for a broadcast). */
    out[0] = 4;
    memcpy(out + 4, &pi.ipi_ifindex, 4);
    memcpy(out + 8, &pi.ipi_spec_dst, 4);
  } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
             c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
    struct in6_pktinfo pi;
    memcpy(&pi, CMSG_DATA(c), sizeof pi);
    out[0] = 6;
    memcpy(out + 4, &pi.ipi6_ifindex, 4);
    memcpy(out + 8, &pi.ipi6_addr, 16);
  }
}

/* Writes one cmsg into buf; returns the bytes it takes. */
static size_t put_cmsg(char *buf, int level, int type, const void *data, size_t len) {
  struct cmsghdr *c = (struct cmsghdr *)buf;
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  memcpy(CMSG_DATA(c), data, len);
  return CMSG_SPACE(len);
}

/* Appends the pktinfo cmsg that makes a send leave from `local`; returns the bytes used. */
static size_t local_to_pktinfo(const uint8_t *local, char *buf) {
  if (local[0] == 4) {
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    memcpy(&pi.ipi_ifindex, local + 4, 4);
    memcpy(&pi.ipi_spec_dst, local + 8, 4);
    return put_cmsg(buf, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
  }
  struct in6_pktinfo pi;
  memset(&pi, 0, sizeof pi);
  memcpy(&pi.ipi6_ifindex, local + 4, 4);
  memcpy(&pi.ipi6_addr, local + 8, 16);
  return put_cmsg(buf, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
}

/*
 * udpRecv(fd, slab, slotSize, maxCount, lengths, addrs, offset = 0, groSizes?, locals?) -> count,
 * or -errno when recvmmsg fails with something other than EAGAIN. Datagram i lands at
 * i * slotSize + offset, its source in addrs[20 * i ...]. With groSizes (on a UDP_GRO socket),
 * groSizes[i] is the segment size of a coalesced buffer (the caller splits it), else 0. With
 * locals, locals[24 * i ...] is the local address and interface it arrived at (family 0 when the
 * kernel did not say); a coalesced buffer has one, shared by its segments. At most
 * WGTS_MAX_BATCH per call.
 */
napi_value wgts_udp_recv(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!wgts_args(env, info, 9, argv)) return NULL;
  int32_t fd, slot, max, offset = 0;
  uint8_t *slab, *addrs, *locals = NULL;
  size_t slab_len, addrs_len, locals_len = 0;
  int32_t *lengths, *gro = NULL;
  napi_valuetype t;
  if (wgts_arg_int(env, argv[0], &fd) || wgts_arg_bytes(env, argv[1], &slab, &slab_len) ||
      wgts_arg_int(env, argv[2], &slot) || wgts_arg_int(env, argv[3], &max) ||
      wgts_arg_bytes(env, argv[5], &addrs, &addrs_len)) {
    return NULL;
  }
  napi_typeof(env, argv[6], &t);
  if (t != napi_undefined && wgts_arg_int(env, argv[6], &offset)) return NULL;
  if (max > WGTS_MAX_BATCH) max = WGTS_MAX_BATCH;
  if (slot <= 0 || max < 0 || offset < 0 || offset >= slot ||
      (size_t)slot * (size_t)max > slab_len || (size_t)max * WGTS_ADDR_SIZE > addrs_len) {
    return wgts_throw_range(env, "slab or addrs too small for maxCount");
  }
  if (wgts_arg_i32(env, argv[4], &lengths, (size_t)max)) return NULL;
  napi_typeof(env, argv[7], &t);
  if (t != napi_undefined && wgts_arg_i32(env, argv[7], &gro, (size_t)max)) return NULL;
  napi_typeof(env, argv[8], &t);
  if (t != napi_undefined && wgts_arg_bytes(env, argv[8], &locals, &locals_len)) return NULL;
  if (locals && (size_t)max * WGTS_LOCAL_SIZE > locals_len) {
    return wgts_throw_range(env, "locals too small for maxCount");
  }
  if (max == 0) return wgts_int(env, 0);
  struct mmsghdr msgs[WGTS_MAX_BATCH];
  struct iovec iov[WGTS_MAX_BATCH];
  struct sockaddr_storage from[WGTS_MAX_BATCH];
  udp_ctrl ctrl[WGTS_MAX_BATCH];
  memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)max);
  for (int32_t i = 0; i < max; i++) {
    iov[i].iov_base = slab + (size_t)i * slot + offset;
    iov[i].iov_len = (size_t)(slot - offset);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    if (gro || locals) {
      msgs[i].msg_hdr.msg_control = ctrl[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i].buf;
    }
  }
  int r;
  do {
    r = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return wgts_int(env, (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno);
  for (int i = 0; i < r; i++) {
    lengths[i] = (int32_t)msgs[i].msg_len;
    addr_to_raw(&from[i], addrs + (size_t)i * WGTS_ADDR_SIZE);
    if (gro) gro[i] = wgts_gro_size(&msgs[i].msg_hdr);
    if (!locals) continue;
    uint8_t *local = locals + (size_t)i * WGTS_LOCAL_SIZE;
    memset(local, 0, WGTS_LOCAL_SIZE);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL;
         c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      pktinfo_to_local(c, local);
    }
  }
  return wgts_int(env, r);
}

/*
 * Whether a send from a sticky source failed because of the source: the address is gone (on
 * 6.18, IPv4 routing answers ENETUNREACH and IPv6 EINVAL; the kernel module checks for EINVAL,
 * and IPv6's cmsg check can answer EADDRNOTAVAIL), or its interface is gone (ENODEV) or down (ENETDOWN, ENETUNREACH). The kernel's
 * WireGuard and wireguard-go's bind before StdNetBind then forget the source and send again
 * without it.
 */
static int source_refused(int err) {
  return err == EINVAL || err == EADDRNOTAVAIL || err == ENODEV || err == ENETDOWN ||
         err == ENETUNREACH;
}

/*
 * One sendmmsg batch from datagram `first`: up to WGTS_MAX_BATCH messages, each a single
 * datagram or (with GSO) a run of datagrams contiguous in the slab, of equal size except a
 * shorter last, sent as one message with a UDP_SEGMENT cmsg. Adds the datagrams sent to *sent
 * and returns the next datagram to send, or -1 when the socket is full (EAGAIN/ENOBUFS: the rest
 * count as not sent). When the kernel refuses GSO (EIO: no checksum offload on the route or
 * IPsec; EINVAL), clears *gso, records the errno in *gso_err and returns the run's first datagram
 * so the caller sends it again without GSO. EMSGSIZE on a run (segment size above this route's
 * MTU) only sends that run again datagram by datagram (the kernel may fragment those): the next
 * destination may be fine. With `local`, every message leaves from that address; when the kernel
 * refuses it (see source_refused), records the errno in *src_err and returns the message's first
 * datagram, so the caller sends from there without it.
 */
static int32_t send_batch(int fd, const uint8_t *slab, const int32_t *offsets,
                          const int32_t *lengths, int32_t count, int32_t first,
                          const struct sockaddr_storage *to, socklen_t to_len,
                          const uint8_t *local, int32_t *src_err, int32_t *gso,
                          int32_t *gso_err, int32_t *plain_until, int32_t *sent) {
  struct mmsghdr msgs[WGTS_MAX_BATCH];
  struct iovec iov[WGTS_MAX_BATCH];
  udp_ctrl ctrl[WGTS_MAX_BATCH];
  int32_t start[WGTS_MAX_BATCH + 1];
  int n = 0;
  int32_t d = first;
  while (d < count && n < WGTS_MAX_BATCH) {
    int32_t seg = lengths[d];
    int32_t total = seg;
    int32_t end = offsets[d] + seg;
    int32_t j = d + 1;
    if (*gso && d >= *plain_until && seg > 0) {
      while (j < count && j - d < GSO_MAX_SEGMENTS && offsets[j] == end && lengths[j] > 0 &&
             lengths[j] <= seg && total + lengths[j] <= GSO_MAX_BYTES) {
        total += lengths[j];
        end += lengths[j];
        j++;
        if (lengths[j - 1] < seg) break; /* a shorter datagram ends the run */
      }
    }
    struct msghdr *h = &msgs[n].msg_hdr;
    memset(&msgs[n], 0, sizeof msgs[n]);
    iov[n].iov_base = (void *)(slab + offsets[d]);
    iov[n].iov_len = (size_t)total;
    h->msg_iov = &iov[n];
    h->msg_iovlen = 1;
    h->msg_name = (void *)to;
    h->msg_namelen = to_len;
    size_t clen = 0;
    if (local || j - d > 1) memset(&ctrl[n], 0, sizeof ctrl[n]);
    if (local) clen = local_to_pktinfo(local, ctrl[n].buf);
    if (j - d > 1) {
      uint16_t size = (uint16_t)seg;
      clen += put_cmsg(ctrl[n].buf + clen, SOL_UDP, UDP_SEGMENT, &size, sizeof size);
    }
    if (clen > 0) {
      h->msg_control = ctrl[n].buf;
      h->msg_controllen = clen;
    }
    start[n++] = d;
    d = j;
  }
  start[n] = d;
  int i = 0;
  while (i < n) {
    int r = sendmmsg(fd, msgs + i, (unsigned)(n - i), MSG_DONTWAIT);
    if (r > 0) {
      *sent += start[i + r] - start[i];
      i += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      return -1;
    } else if (r < 0 && local && source_refused(errno)) {
      *src_err = errno;
      return start[i];
    } else if (r < 0 && (errno == EIO || errno == EINVAL) && start[i + 1] - start[i] > 1) {
      *gso = 0;
      *gso_err = errno;
      return start[i];
    } else if (r < 0 && errno == EMSGSIZE && start[i + 1] - start[i] > 1) {
      *plain_until = start[i + 1];
      return start[i];
    } else {
      i++; /* this message was refused on its own (EMSGSIZE, unreachable...): skip it */
    }
  }
  return d;
}

/*
 * udpSend(fd, slab, offsets, lengths, count, addr, gso?, state?) -> sent. All datagrams go to
 * the one 20-byte address; when `addr` is longer, a WGTS_LOCAL_SIZE local record follows at byte
 * 20 and, unless its family is 0, the datagrams leave from that address and interface. EAGAIN/
 * ENOBUFS stop the batch (the rest count as not sent); a datagram refused for itself (EMSGSIZE,
 * unreachable...) is skipped and the batch goes on. `gso` is an optional Int32Array
 * [enabled, errno]: when enabled, contiguous runs go out as GSO messages; a kernel refusal sets it
 * to [0, errno] (the caller keeps it per socket) and the run is sent again plainly. `state` is an
 * optional Int32Array whose [0] becomes the errno with which the kernel refused the local source
 * (the rest went without it), else 0.
 */
napi_value wgts_udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!wgts_args(env, info, 8, argv)) return NULL;
  int32_t fd, count;
  uint8_t *slab, *raw;
  size_t slab_len, raw_len;
  int32_t *offsets, *lengths, *gso_state = NULL, *state = NULL;
  napi_valuetype t;
  if (wgts_arg_int(env, argv[0], &fd) || wgts_arg_bytes(env, argv[1], &slab, &slab_len) ||
      wgts_arg_int(env, argv[4], &count) || wgts_arg_bytes(env, argv[5], &raw, &raw_len)) {
    return NULL;
  }
  if (count < 0) return wgts_throw_range(env, "negative count");
  if (wgts_arg_i32(env, argv[2], &offsets, (size_t)count) ||
      wgts_arg_i32(env, argv[3], &lengths, (size_t)count)) {
    return NULL;
  }
  napi_typeof(env, argv[6], &t);
  if (t != napi_undefined && wgts_arg_i32(env, argv[6], &gso_state, 2)) return NULL;
  napi_typeof(env, argv[7], &t);
  if (t != napi_undefined && wgts_arg_i32(env, argv[7], &state, 1)) return NULL;
  struct sockaddr_storage to;
  socklen_t to_len;
  if (raw_len < WGTS_ADDR_SIZE || raw_to_addr(raw, &to, &to_len) < 0) {
    return wgts_throw_range(env, "bad address record");
  }
  const uint8_t *local = NULL;
  if (raw_len >= WGTS_ADDR_SIZE + WGTS_LOCAL_SIZE && raw[WGTS_ADDR_SIZE] != 0) {
    local = raw + WGTS_ADDR_SIZE;
    if (local[0] != raw[0]) return wgts_throw_range(env, "local address of another family");
  }
  for (int32_t i = 0; i < count; i++) {
    if (offsets[i] < 0 || lengths[i] < 0 || (size_t)offsets[i] + (size_t)lengths[i] > slab_len) {
      return wgts_throw_range(env, "datagram outside the slab");
    }
  }
  int32_t gso = gso_state ? gso_state[0] != 0 : 0;
  int32_t gso_err = 0;
  int32_t plain_until = 0;
  int32_t sent = 0;
  int32_t next = 0;
  int32_t src_err = 0;
  while (next >= 0 && next < count) {
    int32_t refused = 0;
    next = send_batch(fd, slab, offsets, lengths, count, next, &to, to_len, local, &refused, &gso,
                      &gso_err, &plain_until, &sent);
    if (refused != 0) {
      src_err = refused;
      local = NULL; /* once: the rest, and the message refused, go from the route's address */
    }
  }
  if (state) state[0] = src_err;
  if (gso_state && gso_err != 0) {
    gso_state[0] = 0;
    gso_state[1] = gso_err;
  }
  return wgts_int(env, sent);
}
