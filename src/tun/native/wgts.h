/*
 * Shared declarations of the wgts_native addon: argument helpers over N-API and the functions each
 * file exports. The addon only makes the OS calls JavaScript cannot (or cannot batch); every
 * decision is taken in TypeScript.
 */
#ifndef WGTS_H
#define WGTS_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* Most packets moved by one native call; callers loop for more. Bounds the stack arrays. */
#define WGTS_MAX_BATCH 128
/* Bytes per raw address slot: family(1) pad(1) port BE(2) addr(16). */
#define WGTS_ADDR_SIZE 20
/*
 * Bytes per local-address slot (where a datagram arrived, the source to answer from):
 * family(1, 0 = unknown) pad(3) ifindex(4, host order) addr(16).
 */
#define WGTS_LOCAL_SIZE 24

/* Returns NULL from the enclosing napi_callback when a call fails (an exception is pending). */
#define WGTS_CHECK(env, call)                                                                      \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      wgts_throw_last(env);                                                                        \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

void wgts_throw_last(napi_env env);
/* Fills argv[0..want) (missing ones are undefined); returns NULL when it threw. */
napi_value wgts_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
/* Throws an Error with code ('EBUSY'...), errno (negative, as Node does) and syscall. */
napi_value wgts_throw_errno(napi_env env, int err, const char *syscall);
napi_value wgts_throw_type(napi_env env, const char *msg);
napi_value wgts_throw_range(napi_env env, const char *msg);

/* Argument readers: each returns 0 on success, or throws and returns -1. */
int wgts_arg_int(napi_env env, napi_value v, int32_t *out);
int wgts_arg_uint32(napi_env env, napi_value v, uint32_t *out);
int wgts_arg_bool(napi_env env, napi_value v, int *out);
int wgts_arg_string(napi_env env, napi_value v, char *buf, size_t size);
/* Any Uint8Array/Buffer (also over a SharedArrayBuffer) or ArrayBuffer. */
int wgts_arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len);
/* An Int32Array with at least `need` elements. */
int wgts_arg_i32(napi_env env, napi_value v, int32_t **data, size_t need);
int wgts_arg_f64(napi_env env, napi_value v, double **data, size_t need);

napi_value wgts_int(napi_env env, int64_t v);
napi_value wgts_fd_name(napi_env env, int fd, const char *name, const char *key, int64_t extra);

/* Exported functions, grouped by file. */
napi_value wgts_tun_open(napi_env env, napi_callback_info info);
napi_value wgts_tun_from_fd(napi_env env, napi_callback_info info);
napi_value wgts_tun_read(napi_env env, napi_callback_info info);
napi_value wgts_tun_write(napi_env env, napi_callback_info info);
napi_value wgts_if_mtu(napi_env env, napi_callback_info info);
napi_value wgts_set_if_mtu(napi_env env, napi_callback_info info);
napi_value wgts_if_index(napi_env env, napi_callback_info info);
napi_value wgts_close_fd(napi_env env, napi_callback_info info);

napi_value wgts_udp_open(napi_env env, napi_callback_info info);
napi_value wgts_udp_set_mark(napi_env env, napi_callback_info info);
napi_value wgts_udp_get_mark(napi_env env, napi_callback_info info);
napi_value wgts_udp_drops(napi_env env, napi_callback_info info);
napi_value wgts_blake2s_mac(napi_env env, napi_callback_info info);
napi_value wgts_udp_recv(napi_env env, napi_callback_info info);
napi_value wgts_udp_send(napi_env env, napi_callback_info info);
napi_value wgts_udp_offload(napi_env env, napi_callback_info info);
napi_value wgts_route_watch_open(napi_env env, napi_callback_info info);
napi_value wgts_route_watch_drain(napi_env env, napi_callback_info info);
napi_value wgts_route_oifs(napi_env env, napi_callback_info info);
napi_value wgts_route_mtus(napi_env env, napi_callback_info info);

napi_value wgts_poll_start(napi_env env, napi_callback_info info);
napi_value wgts_poll_stop(napi_env env, napi_callback_info info);

/* The N-API glue of gso.c (gso-js.c). */
napi_value wgts_gso_split_js(napi_env env, napi_callback_info info);
napi_value wgts_tcp_coalesce_js(napi_env env, napi_callback_info info);
napi_value wgts_udp_coalesce_js(napi_env env, napi_callback_info info);
/* tunWrite's coalesce bits: which protocols' runs become super-packets. */
#define WGTS_COALESCE_TCP 1
#define WGTS_COALESCE_UDP 2
napi_value wgts_tun_read_vnet(napi_env env, napi_callback_info info);

#endif
