/*
 * Keyed BLAKE2s (RFC 7693) over the OpenSSL that Node bundles (EVP_MAC "BLAKE2SMAC"): WireGuard's
 * MAC, used for mac1, mac2 and cookies. Node exposes BLAKE2s only unkeyed, and the pure
 * JavaScript one costs ~8 us a message, which made the cookie path the bottleneck under a
 * handshake flood (PERF.md, docs/security.md).
 *
 * One EVP_MAC_CTX per thread, re-keyed by every call; nothing is allocated per call.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#include "wgts.h"

#define BLAKE2S_MAX_KEY 32
#define BLAKE2S_MAX_OUT 32

static __thread EVP_MAC_CTX *tls_mac;

static void mac_free(void *arg) {
  EVP_MAC_CTX_free(arg);
  if (tls_mac == arg) tls_mac = NULL;
}

static EVP_MAC_CTX *mac_get(napi_env env) {
  if (tls_mac) return tls_mac;
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
  EVP_MAC_free(mac); /* the context keeps its own reference */
  if (!ctx) {
    napi_throw_error(env, "ERR_CRYPTO_INVALID_STATE", "BLAKE2SMAC is not available");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, mac_free, ctx) != napi_ok) {
    EVP_MAC_CTX_free(ctx);
    wgts_throw_last(env);
    return NULL;
  }
  tls_mac = ctx;
  return ctx;
}

/* blake2sMac(key, data, out): out.length (1..32) bytes of BLAKE2s keyed with key (1..32 bytes). */
napi_value wgts_blake2s_mac(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!wgts_args(env, info, 3, argv)) return NULL;
  uint8_t *key, *data, *out;
  size_t key_len, data_len, out_len;
  if (wgts_arg_bytes(env, argv[0], &key, &key_len) ||
      wgts_arg_bytes(env, argv[1], &data, &data_len) ||
      wgts_arg_bytes(env, argv[2], &out, &out_len)) {
    return NULL;
  }
  if (key_len < 1 || key_len > BLAKE2S_MAX_KEY || out_len < 1 || out_len > BLAKE2S_MAX_OUT) {
    return wgts_throw_range(env, "key must be 1..32 bytes, out 1..32 bytes");
  }
  EVP_MAC_CTX *ctx = mac_get(env);
  if (!ctx) return NULL;
  size_t size = out_len, written = 0;
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                          OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx, key, key_len, params) != 1 ||
      (data_len > 0 && EVP_MAC_update(ctx, data, data_len) != 1) ||
      EVP_MAC_final(ctx, out, &written, out_len) != 1 || written != out_len) {
    napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "BLAKE2SMAC failed");
    return NULL;
  }
  return NULL;
}
