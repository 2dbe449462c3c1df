/*
 * libFuzzer harness: the AEAD batch checks (wgts_aead_check) with arbitrary offsets, lengths,
 * counters and key indexes against a slab of fuzzed size. Input: slab size (3 bytes), key count
 * (1), flags (1: sealing, key indexes given), then per packet offset (4), length (4), counter
 * (8, a raw double) and key index (4).
 * Checks: an accepted batch touches only bytes inside the slab (each packet, and its tag when
 * sealing, is written over in an exact-size allocation), keys in range, counters exact integers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "offload.h"

#define REC 20

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5) return 0;
  size_t slab_len = (size_t)data[0] << 16 | (size_t)data[1] << 8 | data[2];
  size_t nkeys = (size_t)data[3] % 8 + 1;
  int sealing = data[4] & 1, with_keys = (data[4] >> 1) & 1;
  data += 5;
  size -= 5;
  size_t n = size / REC;
  int32_t *offsets = malloc((n ? n : 1) * 4), *lengths = malloc((n ? n : 1) * 4);
  int32_t *keys = malloc((n ? n : 1) * 4);
  double *counters = malloc((n ? n : 1) * 8);
  for (size_t i = 0; i < n; i++) {
    memcpy(&offsets[i], data + i * REC, 4);
    memcpy(&lengths[i], data + i * REC + 4, 4);
    memcpy(&counters[i], data + i * REC + 8, 8);
    memcpy(&keys[i], data + i * REC + 16, 4);
  }
  wgts_aead_pkt *pkts = malloc((n ? n : 1) * sizeof *pkts);
  const char *bad = wgts_aead_check(offsets, lengths, counters, with_keys ? keys : NULL, n, nkeys,
                                    slab_len, sealing, pkts);
  if (!bad) {
    uint8_t *slab = malloc(slab_len ? slab_len : 1);
    for (size_t i = 0; i < n; i++) {
      check(pkts[i].off == offsets[i] && pkts[i].len == lengths[i]);
      check(pkts[i].key >= 0 && (size_t)pkts[i].key < nkeys);
      check((double)pkts[i].counter == counters[i] && pkts[i].counter < (1ULL << 53));
      memset(slab + pkts[i].off, 0xa5, (size_t)pkts[i].len + (sealing ? 16 : 0));
    }
    free(slab);
  }
  free(pkts);
  free(offsets);
  free(lengths);
  free(keys);
  free(counters);
  return 0;
}
