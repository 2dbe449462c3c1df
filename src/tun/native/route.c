/*
 * Route queries for the UDP bind over rtnetlink (no library): a watch on route changes, the
 * output interface of an endpoint's route (sticky sources, routing loops) and the routes of a
 * link that carry an MTU (padding).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wgts.h"

/*
 * Route changes, for sticky sources: the kernel's WireGuard drops a peer's source when the route
 * to the peer now leaves by another interface than the one the source was received on, and
 * wireguard-go watches rtnetlink for the same (device/sticky_linux.go). routeWatchOpen gives a
 * non-blocking rtnetlink socket in the IPv4 and IPv6 route groups, routeWatchDrain empties it, and
 * routeOifs asks the kernel which interface each endpoint's route leaves by.
 */

/* routeWatchOpen() -> fd */
napi_value wgts_route_watch_open(napi_env env, napi_callback_info info) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return wgts_throw_errno(env, errno, "socket NETLINK_ROUTE");
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return wgts_throw_errno(env, err, "bind NETLINK_ROUTE");
  }
  return wgts_int(env, fd);
}

/*
 * routeWatchDrain(fd) -> route messages read (an overrun, ENOBUFS, counts as one: something
 * changed), or -errno.
 */
napi_value wgts_route_watch_drain(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (wgts_arg_int(env, argv[0], &fd)) return NULL;
  static char buf[1 << 16];
  int changes = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOBUFS) {
      changes++;
      continue;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return wgts_int(env, -errno);
    }
    if (n == 0) break;
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == RTM_NEWROUTE || h->nlmsg_type == RTM_DELROUTE) changes++;
    }
  }
  return wgts_int(env, changes);
}

/* Appends a route attribute; returns the new message length. */
static size_t put_rta(struct nlmsghdr *h, size_t cap, int type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(h->nlmsg_len);
  if (at + RTA_SPACE(len) > cap) return h->nlmsg_len;
  struct rtattr *a = (struct rtattr *)((char *)h + at);
  a->rta_type = (unsigned short)type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = (uint32_t)(at + RTA_SPACE(len));
  return h->nlmsg_len;
}

/*
 * The output interface of the route to `dst` (family 4|6) with `mark`, from `src` (NULL: any
 * source), or -errno.
 */
static int route_oif(int fd, uint32_t seq, int family, const uint8_t *dst, const uint8_t *src,
                     uint32_t mark) {
  union {
    struct nlmsghdr h;
    char buf[NLMSG_SPACE(sizeof(struct rtmsg)) + 3 * RTA_SPACE(16)];
  } req;
  memset(&req, 0, sizeof req);
  size_t alen = family == 4 ? 4 : 16;
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  req.h.nlmsg_type = RTM_GETROUTE;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.h.nlmsg_seq = seq;
  struct rtmsg *r = NLMSG_DATA(&req.h);
  r->rtm_family = family == 4 ? AF_INET : AF_INET6;
  r->rtm_dst_len = (unsigned char)(alen * 8);
  r->rtm_src_len = src ? (unsigned char)(alen * 8) : 0;
  put_rta(&req.h, sizeof req, RTA_DST, dst, alen);
  if (src) put_rta(&req.h, sizeof req, RTA_SRC, src, alen);
  if (mark != 0) put_rta(&req.h, sizeof req, RTA_MARK, &mark, sizeof mark);
  if (send(fd, &req, req.h.nlmsg_len, 0) < 0) return -errno;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return e->error < 0 ? e->error : -EINVAL;
      }
      if (h->nlmsg_type != RTM_NEWROUTE) continue;
      const struct rtmsg *rm = NLMSG_DATA(h);
      int alen_left = (int)RTM_PAYLOAD(h);
      for (const struct rtattr *a = RTM_RTA(rm); RTA_OK(a, alen_left); a = RTA_NEXT(a, alen_left)) {
        if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int)) {
          int oif;
          memcpy(&oif, RTA_DATA(a), sizeof oif);
          return oif;
        }
      }
      return 0;
    }
  }
}

/*
 * routeOifs(records, count, mark, out) -> 0: for each endpoint record (a 20-byte address and its
 * WGTS_LOCAL_SIZE local record, WGTS_ADDR_SIZE + WGTS_LOCAL_SIZE bytes apart), out[i] is the
 * interface the route from the local address (any, when the record has none) to the remote one
 * leaves by, or -errno (the kernel refuses that source, or has no route). One netlink socket.
 */
napi_value wgts_route_oifs(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!wgts_args(env, info, 4, argv)) return NULL;
  uint8_t *recs;
  size_t recs_len;
  int32_t count;
  uint32_t mark;
  int32_t *out;
  if (wgts_arg_bytes(env, argv[0], &recs, &recs_len) || wgts_arg_int(env, argv[1], &count) ||
      wgts_arg_uint32(env, argv[2], &mark)) {
    return NULL;
  }
  const size_t stride = WGTS_ADDR_SIZE + WGTS_LOCAL_SIZE;
  if (count < 0 || (size_t)count * stride > recs_len) {
    return wgts_throw_range(env, "records too small for count");
  }
  if (wgts_arg_i32(env, argv[3], &out, (size_t)count)) return NULL;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return wgts_throw_errno(env, errno, "socket NETLINK_ROUTE");
  /* The kernel answers at once; the timeout only guards against a lost reply. */
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (int32_t i = 0; i < count; i++) {
    const uint8_t *rec = recs + (size_t)i * stride;
    const uint8_t *local = rec + WGTS_ADDR_SIZE;
    if ((rec[0] != 4 && rec[0] != 6) || (local[0] != 0 && local[0] != rec[0])) {
      out[i] = -EINVAL;
      continue;
    }
    out[i] = route_oif(fd, (uint32_t)i + 1, rec[0], rec + 4, local[0] ? local + 8 : NULL, mark);
  }
  close(fd);
  return wgts_int(env, 0);
}

/* Bytes per routeMtus record: family(1) prefix length(1) pad(2) mtu(4, host order) addr(16). */
#define ROUTE_MTU_SIZE 24

/* Reads one dump's routes with an MTU metric leaving by `ifindex` into out; returns the count. */
static int dump_route_mtus(int fd, int family, int ifindex, uint8_t *out, int max, int have) {
  struct {
    struct nlmsghdr h;
    struct rtmsg r;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  req.h.nlmsg_type = RTM_GETROUTE;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = (uint32_t)family;
  req.r.rtm_family = (unsigned char)family;
  if (send(fd, &req, req.h.nlmsg_len, 0) < 0) return have;
  static char buf[1 << 16];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return have;
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) return have;
      if (h->nlmsg_type != RTM_NEWROUTE) continue;
      const struct rtmsg *rm = NLMSG_DATA(h);
      int oif = 0;
      uint32_t mtu = 0;
      const void *dst = NULL;
      int left = (int)RTM_PAYLOAD(h);
      for (const struct rtattr *a = RTM_RTA(rm); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int)) {
          memcpy(&oif, RTA_DATA(a), sizeof oif);
        } else if (a->rta_type == RTA_DST) {
          dst = RTA_DATA(a);
        } else if (a->rta_type == RTA_METRICS) {
          int mleft = (int)RTA_PAYLOAD(a);
          for (const struct rtattr *m = RTA_DATA(a); RTA_OK(m, mleft); m = RTA_NEXT(m, mleft)) {
            if (m->rta_type == RTAX_MTU && RTA_PAYLOAD(m) >= sizeof(uint32_t)) {
              memcpy(&mtu, RTA_DATA(m), sizeof mtu);
            }
          }
        }
      }
      if (oif != ifindex || mtu == 0 || have >= max) continue;
      uint8_t *rec = out + (size_t)have * ROUTE_MTU_SIZE;
      memset(rec, 0, ROUTE_MTU_SIZE);
      rec[0] = family == AF_INET ? 4 : 6;
      rec[1] = rm->rtm_dst_len;
      memcpy(rec + 4, &mtu, 4);
      if (dst) memcpy(rec + 8, dst, family == AF_INET ? 4 : 16);
      have++;
    }
  }
}

/*
 * routeMtus(ifindex, out) -> count: the routes (every table, both families) that leave by
 * `ifindex` and carry an MTU metric, as ROUTE_MTU_SIZE records, at most out.length / 24. The
 * kernel's WireGuard pads to the route's MTU, not the link's; a user-space tunnel only sees the
 * packet, so it looks the destination up in these.
 */
napi_value wgts_route_mtus(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!wgts_args(env, info, 2, argv)) return NULL;
  int32_t ifindex;
  uint8_t *out;
  size_t out_len;
  if (wgts_arg_int(env, argv[0], &ifindex) || wgts_arg_bytes(env, argv[1], &out, &out_len)) {
    return NULL;
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return wgts_throw_errno(env, errno, "socket NETLINK_ROUTE");
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int max = (int)(out_len / ROUTE_MTU_SIZE);
  int n = dump_route_mtus(fd, AF_INET, ifindex, out, max, 0);
  n = dump_route_mtus(fd, AF_INET6, ifindex, out, max, n);
  close(fd);
  return wgts_int(env, n);
}
