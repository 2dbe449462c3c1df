/*
 * The N-API side of gso.c, for tests: gsoSplit and tcpCoalesce check their arguments and call the
 * pure functions, which compile without Node (the libFuzzer harnesses in test/fuzz/native).
 */
#include <string.h>

#include "offload.h"
#include "wgts.h"

/*
 * gsoSplit(frame, slab, slotSize, maxCount, lengths, first = 0, hdrSize = 10) -> count, or -1
 * when the frame is malformed. `frame` is what a read returned: the virtio_net_hdr, then the
 * packet (a NEEDS_CSUM packet is completed in place). Segments first.. land at k * slotSize.
 */
napi_value wgts_gso_split_js(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!wgts_args(env, info, 7, argv)) return NULL;
  uint8_t *frame, *slab;
  size_t frame_len, slab_len;
  int32_t slot, max, first = 0, hs = 10;
  int32_t *lengths;
  napi_valuetype t;
  if (wgts_arg_bytes(env, argv[0], &frame, &frame_len) ||
      wgts_arg_bytes(env, argv[1], &slab, &slab_len) || wgts_arg_int(env, argv[2], &slot) ||
      wgts_arg_int(env, argv[3], &max)) {
    return NULL;
  }
  napi_typeof(env, argv[5], &t);
  if (t != napi_undefined && wgts_arg_int(env, argv[5], &first)) return NULL;
  napi_typeof(env, argv[6], &t);
  if (t != napi_undefined && wgts_arg_int(env, argv[6], &hs)) return NULL;
  if (slot <= 0 || max < 0 || first < 0 || hs < 10 || (size_t)slot * (size_t)max > slab_len) {
    return wgts_throw_range(env, "bad slotSize/maxCount/first/hdrSize");
  }
  if (wgts_arg_i32(env, argv[4], &lengths, (size_t)max)) return NULL;
  if (frame_len < (size_t)hs) return wgts_int(env, -1);
  wgts_vnet v;
  uint8_t *pkt = frame + hs;
  size_t len = frame_len - (size_t)hs;
  if (wgts_vnet_parse(&v, frame, pkt, len, (size_t)slot) < 0) return wgts_int(env, -1);
  if (v.gso == 0) {
    if (max < 1 || first > 0) return wgts_int(env, 0);
    if (len > (size_t)slot) return wgts_int(env, -1);
    memcpy(slab, pkt, len);
    lengths[0] = (int32_t)len;
    return wgts_int(env, 1);
  }
  return wgts_int(env, wgts_gso_split(&v, pkt, len, first, slab, (size_t)slot, max, lengths));
}

typedef int (*coalesce_fn)(const uint8_t *, const int32_t *, const int32_t *, int, int,
                           uint8_t *, size_t, uint8_t *, size_t *);

/*
 * tcpCoalesce / udpCoalesce(slab, offsets, lengths, first, count, out, vnet, outLen) -> packets
 * merged (tests). When more than 1, `out` holds the super-packet (outLen[0] bytes) and `vnet`
 * its 10-byte virtio_net_hdr, as tunWrite with coalesce would write them.
 */
static napi_value coalesce_js(napi_env env, napi_callback_info info, coalesce_fn fn) {
  napi_value argv[8];
  if (!wgts_args(env, info, 8, argv)) return NULL;
  uint8_t *slab, *out, *vnet;
  size_t slab_len, out_len_cap, vnet_len;
  int32_t first, count, *offsets, *lengths, *out_len;
  if (wgts_arg_bytes(env, argv[0], &slab, &slab_len) || wgts_arg_int(env, argv[3], &first) ||
      wgts_arg_int(env, argv[4], &count) || wgts_arg_bytes(env, argv[5], &out, &out_len_cap) ||
      wgts_arg_bytes(env, argv[6], &vnet, &vnet_len)) {
    return NULL;
  }
  if (count < 0 || first < 0 || first >= count || vnet_len < 10) {
    return wgts_throw_range(env, "bad first/count or vnet buffer");
  }
  if (wgts_arg_i32(env, argv[1], &offsets, (size_t)count) ||
      wgts_arg_i32(env, argv[2], &lengths, (size_t)count) ||
      wgts_arg_i32(env, argv[7], &out_len, 1)) {
    return NULL;
  }
  for (int32_t i = 0; i < count; i++) {
    if (offsets[i] < 0 || lengths[i] < 0 || (size_t)offsets[i] + (size_t)lengths[i] > slab_len) {
      return wgts_throw_range(env, "packet outside the slab");
    }
  }
  size_t len = 0;
  int n = fn(slab, offsets, lengths, first, count, out, out_len_cap, vnet, &len);
  out_len[0] = (int32_t)len;
  return wgts_int(env, n);
}

napi_value wgts_tcp_coalesce_js(napi_env env, napi_callback_info info) {
  return coalesce_js(env, info, wgts_tcp_coalesce);
}

napi_value wgts_udp_coalesce_js(napi_env env, napi_callback_info info) {
  return coalesce_js(env, info, wgts_udp_coalesce);
}
