/*
 * The checks of an AEAD batch (aead.c) before any byte is touched. The offsets, lengths, counters
 * and key indexes live in JavaScript-owned arrays that another thread may write (a
 * SharedArrayBuffer): each element is read exactly once, through a volatile access the compiler
 * cannot repeat, and the batch then runs from the checked copy only.
 */
#include "offload.h"

#define TAG_SIZE 16
/* Counters arrive as JS numbers; 2^53 is the first one that may not be exact. */
#define COUNTER_LIMIT 9007199254740992.0

static int32_t once_i32(const int32_t *p) { return *(const volatile int32_t *)p; }
static double once_f64(const double *p) { return *(const volatile double *)p; }

const char *wgts_aead_check(const int32_t *offsets, const int32_t *lengths, const double *counters,
                            const int32_t *key_idx, size_t n, size_t nkeys, size_t slab_len,
                            int sealing, wgts_aead_pkt *out) {
  for (size_t i = 0; i < n; i++) {
    int32_t off = once_i32(offsets + i), len = once_i32(lengths + i);
    double c = once_f64(counters + i);
    int32_t key = key_idx ? once_i32(key_idx + i) : 0;
    int64_t end = (int64_t)off + len + (sealing ? TAG_SIZE : 0);
    if (off < 0 || len < 0 || (uint64_t)end > slab_len) return "packet outside the slab";
    /* The negated form also refuses NaN. */
    if (!(c >= 0 && c < COUNTER_LIMIT) || c != (double)(uint64_t)c) {
      return "counter must be an integer in [0, 2^53)";
    }
    if (key < 0 || (size_t)key >= nkeys) return "keyIdx out of range";
    out[i].off = off;
    out[i].len = len;
    out[i].counter = (uint64_t)c;
    out[i].key = key;
  }
  return NULL;
}
