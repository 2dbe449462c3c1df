/* Module registration of wgts_native: the table of exported functions. */
#include "wgts.h"

/* ChaCha20-Poly1305 over Node's OpenSSL (aead.c). */
napi_value wgts_aead_seal_batch(napi_env env, napi_callback_info info);
napi_value wgts_aead_open_batch(napi_env env, napi_callback_info info);
napi_value wgts_aead_seal(napi_env env, napi_callback_info info);
napi_value wgts_aead_open(napi_env env, napi_callback_info info);
napi_value wgts_aead_engine(napi_env env, napi_callback_info info);
napi_value wgts_aead_key_probe(napi_env env, napi_callback_info info);
napi_value wgts_mac_key_probe(napi_env env, napi_callback_info info);
/* Test hooks (tun.c, poll.c). */
napi_value wgts_coalesce_probe(napi_env env, napi_callback_info info);
napi_value wgts_foreign_external(napi_env env, napi_callback_info info);

#define EXPORT(js, c) {js, NULL, c, NULL, NULL, NULL, napi_enumerable, NULL}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      EXPORT("tunOpen", wgts_tun_open),     EXPORT("tunFromFd", wgts_tun_from_fd),
      EXPORT("tunRead", wgts_tun_read),     EXPORT("tunWrite", wgts_tun_write),
      EXPORT("ifMtu", wgts_if_mtu),         EXPORT("setIfMtu", wgts_set_if_mtu),
      EXPORT("ifIndex", wgts_if_index),     EXPORT("closeFd", wgts_close_fd),
      EXPORT("udpOpen", wgts_udp_open),     EXPORT("udpSetMark", wgts_udp_set_mark),
      EXPORT("udpGetMark", wgts_udp_get_mark), EXPORT("udpDrops", wgts_udp_drops), EXPORT("blake2sMac", wgts_blake2s_mac), EXPORT("udpRecv", wgts_udp_recv),
      EXPORT("udpSend", wgts_udp_send),     EXPORT("pollStart", wgts_poll_start),
      EXPORT("pollStop", wgts_poll_stop),   EXPORT("udpOffload", wgts_udp_offload),
      EXPORT("routeWatchOpen", wgts_route_watch_open),
      EXPORT("routeWatchDrain", wgts_route_watch_drain), EXPORT("routeOifs", wgts_route_oifs),
      EXPORT("routeMtus", wgts_route_mtus),
      EXPORT("aeadSealBatch", wgts_aead_seal_batch), EXPORT("aeadOpenBatch", wgts_aead_open_batch),
      EXPORT("aeadSeal", wgts_aead_seal),   EXPORT("aeadOpen", wgts_aead_open),
      EXPORT("aeadEngine", wgts_aead_engine),
      EXPORT("aeadKeyProbe", wgts_aead_key_probe), EXPORT("macKeyProbe", wgts_mac_key_probe),
      EXPORT("coalesceProbe", wgts_coalesce_probe), EXPORT("foreignExternal", wgts_foreign_external),
      EXPORT("tunReadVnet", wgts_tun_read_vnet), EXPORT("gsoSplit", wgts_gso_split_js), EXPORT("tcpCoalesce", wgts_tcp_coalesce_js),
      EXPORT("udpCoalesce", wgts_udp_coalesce_js),
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    return NULL;
  }
  return exports;
}
