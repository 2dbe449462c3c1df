/*
 * ChaCha20-Poly1305 (RFC 8439) over the OpenSSL that Node bundles: whole batches of transport
 * packets sealed or opened in place in a caller-owned slab, plus one-packet calls with an explicit
 * nonce and associated data. The EVP symbols are exported by the node binary and resolved when the
 * addon loads, so there is no extra dependency and no -lcrypto.
 *
 * One EVP_CIPHER_CTX per thread (worker threads each load the addon into their own env) is created
 * on first use and reused for every packet; nothing is allocated per call. Within a batch the key
 * is loaded only when it changes from the previous packet's (10-15% at 64 B). The nonce is
 * WireGuard's: 4 zero bytes then the 64-bit little-endian counter.
 */
#include <openssl/evp.h>
#include <string.h>

#include "wgts.h"

#define KEY_SIZE 32
#define NONCE_SIZE 12
#define TAG_SIZE 16
/* Counters arrive as JS numbers; 2^53 is the first one that may not be exact. */
#define COUNTER_LIMIT 9007199254740992.0

static __thread EVP_CIPHER_CTX *tls_ctx;

static void ctx_free(void *arg) {
  EVP_CIPHER_CTX_free(arg);
  if (tls_ctx == arg) tls_ctx = NULL;
}

/* The thread's context, bound to chacha20-poly1305 once; NULL (and thrown) when OpenSSL fails. */
static EVP_CIPHER_CTX *ctx_get(napi_env env) {
  if (tls_ctx) return tls_ctx;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx || EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, 1) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_SIZE, NULL) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    napi_throw_error(env, "ERR_CRYPTO_INVALID_STATE", "chacha20-poly1305 is not available");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, ctx_free, ctx) != napi_ok) {
    EVP_CIPHER_CTX_free(ctx);
    wgts_throw_last(env);
    return NULL;
  }
  tls_ctx = ctx;
  return ctx;
}

static void nonce_of(uint64_t counter, uint8_t nonce[NONCE_SIZE]) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

/*
 * Encrypts src[0..len) into dst (equal or disjoint) after `ad`, the tag to `tag`. 1 on success.
 * key NULL keeps the key the context already holds.
 */
static int seal_one(EVP_CIPHER_CTX *ctx, const uint8_t *key, const uint8_t *nonce,
                    const uint8_t *ad, int ad_len, const uint8_t *src, uint8_t *dst, int len,
                    uint8_t *tag) {
  int outl = 0;
  if (EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, 1) != 1) return 0;
  if (ad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &outl, ad, ad_len) != 1) return 0;
  if (len > 0 && EVP_EncryptUpdate(ctx, dst, &outl, src, len) != 1) return 0;
  if (EVP_EncryptFinal_ex(ctx, dst + len, &outl) != 1) return 0;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, tag) == 1;
}

/*
 * Decrypts src[0..len) into dst (equal or disjoint) and checks `tag`. Returns 1 when it verified;
 * otherwise dst is zeroed so no unauthenticated plaintext is left behind. key NULL as for
 * seal_one.
 */
static int open_one(EVP_CIPHER_CTX *ctx, const uint8_t *key, const uint8_t *nonce,
                    const uint8_t *ad, int ad_len, const uint8_t *src, uint8_t *dst, int len,
                    const uint8_t *tag) {
  int outl = 0;
  uint8_t tag_copy[TAG_SIZE];
  memcpy(tag_copy, tag, TAG_SIZE);
  int ok = EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, 0) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag_copy) == 1 &&
           (ad_len == 0 || EVP_DecryptUpdate(ctx, NULL, &outl, ad, ad_len) == 1) &&
           (len == 0 || EVP_DecryptUpdate(ctx, dst, &outl, src, len) == 1) &&
           EVP_DecryptFinal_ex(ctx, dst + len, &outl) == 1;
  if (!ok && len > 0) memset(dst, 0, (size_t)len);
  return ok;
}

/* A Uint8Array of at least `need` bytes. */
static int arg_bytes_min(napi_env env, napi_value v, uint8_t **data, size_t *len, size_t need,
                         const char *what) {
  if (wgts_arg_bytes(env, v, data, len)) return -1;
  if (*len < need) {
    wgts_throw_range(env, what);
    return -1;
  }
  return 0;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

static int counter_ok(double c) { return c >= 0 && c < COUNTER_LIMIT && c == (double)(uint64_t)c; }

/* What a batch call reads: the packets' places, their counters and which key each one uses. */
struct batch {
  uint8_t *keys;
  size_t nkeys;
  uint8_t *slab;
  size_t slab_len;
  int32_t *offsets;
  int32_t *lengths;
  double *counters;
  int32_t *key_idx; /* NULL: every packet uses key 0 */
  int32_t count;
};

/*
 * Reads (keys, slab, offsets, lengths, counters, count) from argv[0..6) and keyIdx from
 * argv[key_arg], and checks every packet before any byte is touched, so a bad argument throws
 * without leaving half a batch transformed. A sealed packet also needs room for its tag.
 */
static int batch_args(napi_env env, napi_value *argv, int key_arg, int sealing, struct batch *b) {
  if (wgts_arg_bytes(env, argv[0], &b->keys, &b->nkeys)) return -1;
  if (b->nkeys < KEY_SIZE || b->nkeys % KEY_SIZE != 0) {
    wgts_throw_range(env, "keys must be a non-empty multiple of 32 bytes");
    return -1;
  }
  b->nkeys /= KEY_SIZE;
  if (wgts_arg_bytes(env, argv[1], &b->slab, &b->slab_len) ||
      wgts_arg_int(env, argv[5], &b->count)) {
    return -1;
  }
  if (b->count < 0) {
    wgts_throw_range(env, "count must be >= 0");
    return -1;
  }
  size_t n = (size_t)b->count;
  if (wgts_arg_i32(env, argv[2], &b->offsets, n) || wgts_arg_i32(env, argv[3], &b->lengths, n) ||
      wgts_arg_f64(env, argv[4], &b->counters, n)) {
    return -1;
  }
  b->key_idx = NULL;
  if (!is_nullish(env, argv[key_arg]) && wgts_arg_i32(env, argv[key_arg], &b->key_idx, n)) {
    return -1;
  }
  if (!b->key_idx && b->nkeys != 1) {
    wgts_throw_range(env, "several keys need keyIdx");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    int64_t off = b->offsets[i], len = b->lengths[i];
    int64_t end = off + len + (sealing ? TAG_SIZE : 0);
    if (off < 0 || len < 0 || (uint64_t)end > b->slab_len) {
      wgts_throw_range(env, "packet outside the slab");
      return -1;
    }
    if (!counter_ok(b->counters[i])) {
      wgts_throw_range(env, "counter must be an integer in [0, 2^53)");
      return -1;
    }
    if (b->key_idx && (b->key_idx[i] < 0 || (size_t)b->key_idx[i] >= b->nkeys)) {
      wgts_throw_range(env, "keyIdx out of range");
      return -1;
    }
  }
  return 0;
}

static const uint8_t *batch_key(const struct batch *b, size_t i) {
  return b->keys + (b->key_idx ? (size_t)b->key_idx[i] * KEY_SIZE : 0);
}

/*
 * aeadSealBatch(keys, slab, offsets, lengths, counters, count, keyIdx?) -> undefined. Packet i,
 * slab[offsets[i] .. + lengths[i]), is encrypted in place under nonce counters[i] and its tag
 * written right after it. keys holds 32-byte keys; packet i uses key keyIdx[i] (key 0 without
 * keyIdx).
 */
napi_value wgts_aead_seal_batch(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!wgts_args(env, info, 7, argv)) return NULL;
  struct batch b;
  if (batch_args(env, argv, 6, 1, &b)) return NULL;
  EVP_CIPHER_CTX *ctx = ctx_get(env);
  if (!ctx) return NULL;
  uint8_t nonce[NONCE_SIZE];
  const uint8_t *last = NULL;
  for (int32_t i = 0; i < b.count; i++) {
    uint8_t *p = b.slab + b.offsets[i];
    int len = b.lengths[i];
    nonce_of((uint64_t)b.counters[i], nonce);
    const uint8_t *k = batch_key(&b, i);
    if (!seal_one(ctx, k == last ? NULL : k, nonce, NULL, 0, p, p, len, p + len)) {
      napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "chacha20-poly1305 seal failed");
      return NULL;
    }
    last = k;
  }
  return NULL;
}

/*
 * aeadOpenBatch(keys, slab, offsets, lengths, counters, count, ok, keyIdx?) -> verified count.
 * lengths[i] covers ciphertext and tag; the plaintext replaces the ciphertext in place.
 * ok[i] = 1 when the tag verified, else 0 (and the packet's bytes are zeroed); a packet shorter
 * than a tag is simply not ok.
 */
napi_value wgts_aead_open_batch(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!wgts_args(env, info, 8, argv)) return NULL;
  struct batch b;
  uint8_t *ok;
  size_t ok_len;
  if (batch_args(env, argv, 7, 0, &b)) return NULL;
  if (arg_bytes_min(env, argv[6], &ok, &ok_len, (size_t)b.count, "ok too short")) return NULL;
  EVP_CIPHER_CTX *ctx = ctx_get(env);
  if (!ctx) return NULL;
  uint8_t nonce[NONCE_SIZE];
  int64_t verified = 0;
  const uint8_t *last = NULL;
  for (int32_t i = 0; i < b.count; i++) {
    uint8_t *p = b.slab + b.offsets[i];
    int len = b.lengths[i] - TAG_SIZE;
    if (len < 0) {
      ok[i] = 0;
      continue;
    }
    nonce_of((uint64_t)b.counters[i], nonce);
    const uint8_t *k = batch_key(&b, i);
    ok[i] = (uint8_t)open_one(ctx, k == last ? NULL : k, nonce, NULL, 0, p, p, len, p + len);
    last = k;
    verified += ok[i];
  }
  return wgts_int(env, verified);
}

/* The nonce argument of the one-packet calls: a 12-byte Uint8Array, or a counter. */
static int arg_nonce(napi_env env, napi_value v, uint8_t nonce[NONCE_SIZE]) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_number) {
    double c = 0;
    napi_get_value_double(env, v, &c);
    if (!counter_ok(c)) {
      wgts_throw_range(env, "counter must be an integer in [0, 2^53)");
      return -1;
    }
    nonce_of((uint64_t)c, nonce);
    return 0;
  }
  uint8_t *data;
  size_t len;
  if (wgts_arg_bytes(env, v, &data, &len)) return -1;
  if (len != NONCE_SIZE) {
    wgts_throw_range(env, "nonce must be 12 bytes");
    return -1;
  }
  memcpy(nonce, data, NONCE_SIZE);
  return 0;
}

/* What a one-packet call reads: key, nonce, optional AD, the input and where the output goes. */
struct one {
  uint8_t *key, *ad, *src, *dst;
  size_t key_len, ad_len, src_len, dst_len;
  int32_t dst_off;
  uint8_t nonce[NONCE_SIZE];
};

static int one_args(napi_env env, napi_value *argv, struct one *o) {
  if (arg_bytes_min(env, argv[0], &o->key, &o->key_len, KEY_SIZE, "key must be 32 bytes") ||
      arg_nonce(env, argv[1], o->nonce)) {
    return -1;
  }
  o->ad = NULL;
  o->ad_len = 0;
  if (!is_nullish(env, argv[2]) && wgts_arg_bytes(env, argv[2], &o->ad, &o->ad_len)) return -1;
  if (wgts_arg_bytes(env, argv[3], &o->src, &o->src_len) ||
      wgts_arg_bytes(env, argv[4], &o->dst, &o->dst_len) ||
      wgts_arg_int(env, argv[5], &o->dst_off)) {
    return -1;
  }
  if (o->src_len > INT32_MAX - TAG_SIZE || o->ad_len > INT32_MAX) {
    wgts_throw_range(env, "input too long");
    return -1;
  }
  return 0;
}

/*
 * The input the one-packet calls read `len` bytes from: src itself when dst starts at src or the
 * two are disjoint, else dst after moving the input there (OpenSSL handles equal or disjoint
 * buffers only).
 */
static const uint8_t *place(const uint8_t *src, uint8_t *dst, size_t len) {
  if (dst == src || dst >= src + len || src >= dst + len) return src;
  memmove(dst, src, len);
  return dst;
}

/* aeadSeal(key, nonce | counter, ad | null, plaintext, dst, dstOffset) -> plaintext.length + 16 */
napi_value wgts_aead_seal(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!wgts_args(env, info, 6, argv)) return NULL;
  struct one o;
  if (one_args(env, argv, &o)) return NULL;
  size_t len = o.src_len;
  if (o.dst_off < 0 || (size_t)o.dst_off + len + TAG_SIZE > o.dst_len) {
    return wgts_throw_range(env, "dst too small");
  }
  EVP_CIPHER_CTX *ctx = ctx_get(env);
  if (!ctx) return NULL;
  uint8_t *out = o.dst + o.dst_off;
  const uint8_t *in = place(o.src, out, len);
  if (!seal_one(ctx, o.key, o.nonce, o.ad, (int)o.ad_len, in, out, (int)len, out + len)) {
    napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "chacha20-poly1305 seal failed");
    return NULL;
  }
  return wgts_int(env, (int64_t)len + TAG_SIZE);
}

/* aeadOpen(key, nonce | counter, ad | null, sealed, dst, dstOffset) -> plaintext length, or -1 */
napi_value wgts_aead_open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!wgts_args(env, info, 6, argv)) return NULL;
  struct one o;
  if (one_args(env, argv, &o)) return NULL;
  if (o.src_len < TAG_SIZE) return wgts_int(env, -1);
  size_t len = o.src_len - TAG_SIZE;
  if (o.dst_off < 0 || (size_t)o.dst_off + len > o.dst_len) {
    return wgts_throw_range(env, "dst too small");
  }
  EVP_CIPHER_CTX *ctx = ctx_get(env);
  if (!ctx) return NULL;
  uint8_t tag[TAG_SIZE];
  memcpy(tag, o.src + len, TAG_SIZE);
  uint8_t *out = o.dst + o.dst_off;
  const uint8_t *in = place(o.src, out, len);
  int ok = open_one(ctx, o.key, o.nonce, o.ad, (int)o.ad_len, in, out, (int)len, tag);
  return wgts_int(env, ok ? (int64_t)len : -1);
}
