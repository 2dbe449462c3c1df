/*
 * The UDP GRO control message of a received buffer (udp.c): its segment size, which JavaScript
 * uses to split the buffer into datagrams. The control data is the kernel's, but the walk is
 * what a malformed length would derail, so it lives here where the fuzz harness reaches it.
 */
#include <string.h>

#include "offload.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

int32_t wgts_gro_size(const struct msghdr *msg) {
  int32_t size = 0;
  /* CMSG_NXTHDR takes a non-const header; it only reads it. */
  struct msghdr *m = (struct msghdr *)msg;
  if (!m->msg_control) return 0;
  const uint8_t *end = (const uint8_t *)m->msg_control + m->msg_controllen;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
    /* CMSG_FIRSTHDR only checks that a header fits, not the data its cmsg_len claims (found by
     * the udp-gro fuzz harness): the int must lie inside the buffer too. */
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
        c->cmsg_len >= CMSG_LEN(sizeof(int)) &&
        (size_t)(end - (const uint8_t *)c) >= CMSG_LEN(sizeof(int))) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      size = v > 0 ? v : 0; /* a segment size is positive; anything else means no split */
    }
  }
  return size;
}
