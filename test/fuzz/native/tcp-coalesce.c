/*
 * libFuzzer harness: a batch of packets through wgts_tcp_coalesce, as tunWrite with coalescing
 * runs it: from every start index, into an output buffer of fuzzed capacity. Input: count (1
 * byte), first (1), capacity (2), then packets, each a 2-byte length and its bytes.
 * Checks: a merge stays within the capacity and 64 KiB, and the super-packet it builds parses
 * back (wgts_vnet_parse, with the virtio_net_hdr it wrote) into exactly the packets merged, whose
 * payloads split out again (wgts_gso_split) byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "offload.h"

#define MAX_PKTS 72

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  int want = data[0] % MAX_PKTS + 1;
  size_t cap = (size_t)(data[2] << 8 | data[3]) + 1;
  if (data[1] & 1) cap = 65536; /* tun.c's coalesce_buf, half the time */
  data += 4;
  size -= 4;
  int32_t offsets[MAX_PKTS], lengths[MAX_PKTS];
  int count = 0;
  size_t at = 0;
  while (count < want && size - at >= 2) {
    size_t len = (size_t)(data[at] << 8 | data[at + 1]);
    at += 2;
    if (len > size - at) len = size - at;
    offsets[count] = (int32_t)at;
    lengths[count] = (int32_t)len;
    at += len;
    count++;
  }
  if (count == 0) return 0;
  uint8_t *slab = malloc(at ? at : 1); /* exact size: AddressSanitizer sees overreads */
  memcpy(slab, data, at);
  uint8_t *out = malloc(cap);
  for (int first = 0; first < count; first++) {
    uint8_t vnet[10];
    size_t out_len = 0;
    int n = wgts_tcp_coalesce(slab, offsets, lengths, first, count, out, cap, vnet, &out_len);
    check(n >= 1 && first + n <= count);
    if (n == 1) continue;
    check(out_len <= cap && out_len <= 0xffff);
    size_t sum = (size_t)lengths[first];
    wgts_vnet v;
    uint8_t *copy = malloc(out_len);
    memcpy(copy, out, out_len);
    int segs = wgts_vnet_parse(&v, vnet, copy, out_len, 65535);
    check(segs == n);
    for (int k = 1; k < n; k++) sum += (size_t)lengths[first + k] - v.hdr_len;
    check(sum == out_len);
    uint8_t *split = malloc((size_t)n * 65535);
    int32_t sl[MAX_PKTS];
    check(wgts_gso_split(&v, copy, out_len, 0, split, 65535, n, sl) == n);
    for (int k = 0; k < n; k++) {
      check(sl[k] == lengths[first + k]);
      check(memcmp(split + (size_t)k * 65535 + v.hdr_len, slab + offsets[first + k] + v.hdr_len,
                   (size_t)sl[k] - v.hdr_len) == 0);
    }
    free(split);
    free(copy);
  }
  free(out);
  free(slab);
  return 0;
}
