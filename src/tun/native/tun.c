/*
 * The TUN device and link queries: open /dev/net/tun (TUNSETIFF), adopt an inherited fd
 * (TUNGETIFF), batched non-blocking read/write over caller-owned slabs, and the MTU/ifindex ioctls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wgts.h"

/* tunOpen(name, multiQueue?) -> { fd, name } */
napi_value wgts_tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!wgts_args(env, info, 2, argv)) return NULL;
  char name[IFNAMSIZ + 8];
  int mq = 0;
  if (wgts_arg_string(env, argv[0], name, sizeof name) || wgts_arg_bool(env, argv[1], &mq)) {
    return NULL;
  }
  if (strlen(name) >= IFNAMSIZ) return wgts_throw_errno(env, ENAMETOOLONG, "TUNSETIFF");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return wgts_throw_errno(env, errno, "open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0);
  memcpy(ifr.ifr_name, name, strlen(name) + 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return wgts_throw_errno(env, err, "TUNSETIFF");
  }
  return wgts_fd_name(env, fd, ifr.ifr_name, NULL, 0);
}

/* tunFromFd(fd) -> { fd, name }; makes the fd non-blocking and close-on-exec. */
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
  return wgts_fd_name(env, fd, ifr.ifr_name, NULL, 0);
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

/*
 * tunWrite(fd, slab, offsets, lengths, count) -> written. A packet the kernel refuses is skipped
 * (counted as not written); EAGAIN stops the batch.
 */
napi_value wgts_tun_write(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!wgts_args(env, info, 5, argv)) return NULL;
  int32_t fd, count;
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
    do {
      r = write(fd, slab + offsets[i], (size_t)lengths[i]);
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
