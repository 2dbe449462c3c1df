/*
 * libFuzzer harness: a TUN offload frame (virtio_net_hdr + packet) through wgts_vnet_parse and
 * wgts_gso_split, as tunReadVnet uses them: split into separate slots, split in place, and
 * resumed from a later segment (a frame parked in scratch). Input: slot size (2 bytes), max
 * segments (1), first segment (1), then the 10-byte header and the packet.
 * Checks what the caller relies on: every segment fits its slot and carries its share of the
 * payload, the payloads together are the original, and each IPv4 header checksum verifies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "offload.h"

#define HDR 10

static void check(int ok) {
  if (!ok) abort();
}

static uint16_t ip_csum_fold(const uint8_t *p, size_t len) {
  uint32_t acc = 0;
  for (size_t i = 0; i + 1 < len; i += 2) acc += (uint32_t)(p[i] << 8 | p[i + 1]);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4 + HDR) return 0;
  size_t slot = (size_t)(data[0] << 8 | data[1]) % 65600 + 1;
  int max = data[2] % 80;
  int first = data[3] % 80;
  const uint8_t *frame = data + 4;
  size_t len = size - 4 - HDR;
  /* Exact-size copies, so AddressSanitizer sees any read past the packet. */
  uint8_t *hdr = malloc(HDR);
  uint8_t *pkt = malloc(len ? len : 1);
  memcpy(hdr, frame, HDR);
  memcpy(pkt, frame + HDR, len);
  wgts_vnet v;
  int segs = wgts_vnet_parse(&v, hdr, pkt, len, slot);
  /* A 1-byte gso_size in a 64 KiB slot would need gigabytes of slab: keep the full split to
   * 4 MiB (the partial one below still covers any frame). */
  if (segs > 0 && v.gso != 0 && (size_t)segs * slot <= (4u << 20)) {
    check(v.hdr_len < len && v.hdr_len + v.gso_size <= slot);
    int32_t *lengths = calloc((size_t)segs, sizeof *lengths);
    uint8_t *slab = malloc(slot * (size_t)segs);
    int n = wgts_gso_split(&v, pkt, len, 0, slab, slot, segs, lengths);
    check(n == segs);
    size_t payload = 0;
    for (int k = 0; k < n; k++) {
      check(lengths[k] > v.hdr_len && (size_t)lengths[k] <= slot);
      const uint8_t *seg = slab + (size_t)k * slot;
      check(memcmp(seg + v.hdr_len, pkt + v.hdr_len + payload, lengths[k] - v.hdr_len) == 0);
      payload += (size_t)lengths[k] - v.hdr_len;
      if (!v.is_v6) check(ip_csum_fold(seg, v.ip_len) == 0xffff);
    }
    check(payload == len - v.hdr_len);
    /* Resumed from `first`, at most `max`, into a slab of exactly that many slots. */
    if (max > 0) {
      uint8_t *part = malloc(slot * (size_t)max);
      int32_t *plen = calloc((size_t)max, sizeof *plen);
      int m = wgts_gso_split(&v, pkt, len, first, part, slot, max, plen);
      int want = first >= segs ? 0 : (segs - first < max ? segs - first : max);
      check(m == want);
      for (int k = 0; k < m; k++) {
        check(plen[k] == lengths[first + k]);
        check(memcmp(part + (size_t)k * slot, slab + (size_t)(first + k) * slot,
                     (size_t)plen[k]) == 0);
      }
      free(part);
      free(plen);
    }
    /* In place, as tunReadVnet splits a frame that fits: the packet is at slot 0. */
    uint8_t *inplace = malloc(slot * (size_t)segs);
    memcpy(inplace, pkt, len < slot * (size_t)segs ? len : slot * (size_t)segs);
    if (len <= slot) {
      int32_t *ilen = calloc((size_t)segs, sizeof *ilen);
      check(wgts_gso_split(&v, inplace, len, 0, inplace, slot, segs, ilen) == segs);
      for (int k = 0; k < segs; k++) {
        check(ilen[k] == lengths[k]);
        check(memcmp(inplace + (size_t)k * slot, slab + (size_t)k * slot, (size_t)ilen[k]) == 0);
      }
      free(ilen);
    }
    free(inplace);
    free(slab);
    free(lengths);
  } else if (segs > 0 && v.gso != 0 && max > 0) {
    uint8_t *part = malloc(slot * (size_t)max);
    int32_t *plen = calloc((size_t)max, sizeof *plen);
    int m = wgts_gso_split(&v, pkt, len, first, part, slot, max, plen);
    check(m == (first >= segs ? 0 : (segs - first < max ? segs - first : max)));
    for (int k = 0; k < m; k++) check(plen[k] > v.hdr_len && (size_t)plen[k] <= slot);
    free(part);
    free(plen);
  } else if (segs > 0 && v.gso == 0) {
    check(segs == 1);
  }
  free(hdr);
  free(pkt);
  return 0;
}
