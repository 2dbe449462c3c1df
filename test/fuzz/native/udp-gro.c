/*
 * libFuzzer harness: the UDP GRO control message walk (wgts_gro_size) over arbitrary control
 * data, as recvmmsg might leave it (cmsg_len values that lie, truncated headers, several
 * messages), followed by the split JavaScript does with the size (src/tun/udp.ts deliver).
 * Input: received length (2 bytes), then the control bytes.
 * Checks: the walk reads only inside the control buffer (exact-size allocation), the size is
 * never negative, and the split covers the buffer exactly with datagrams of at most that size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "offload.h"

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t len = (size_t)(data[0] << 8 | data[1]);
  data += 2;
  size -= 2;
  /* cmsghdr needs its alignment; an exact-size allocation keeps overreads visible. */
  void *ctrl = NULL;
  if (size && posix_memalign(&ctrl, sizeof(size_t), size) != 0) return 0;
  if (size) memcpy(ctrl, data, size);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_control = ctrl;
  msg.msg_controllen = size;
  int32_t seg = wgts_gro_size(&msg);
  check(seg >= 0);
  if (seg > 0 && len > (size_t)seg) {
    size_t covered = 0, n = 0;
    for (size_t off = 0; off < len; off += (size_t)seg) {
      size_t part = len - off < (size_t)seg ? len - off : (size_t)seg;
      check(part > 0 && part <= (size_t)seg);
      covered += part;
      n++;
    }
    check(covered == len && n == (len + (size_t)seg - 1) / (size_t)seg);
  }
  free(ctrl);
  return 0;
}
