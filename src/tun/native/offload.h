/*
 * The packet-shaping functions of the addon that touch no N-API: virtio_net_hdr parsing, TSO/USO
 * splitting and TCP coalescing (gso.c), the UDP GRO control message (gro.c) and the AEAD batch
 * checks (aead-slab.c). They compile without Node, so the libFuzzer harnesses in test/fuzz/native
 * call them directly.
 */
#ifndef WGTS_OFFLOAD_H
#define WGTS_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* TUN offload frames (gso.c): a parsed virtio_net_hdr and the super-packet split. */
typedef struct {
  int gso;            /* 0 = a plain packet, else the VIRTIO_NET_HDR_GSO_* type (ECN bit off) */
  int segments;       /* packets the frame becomes */
  int is_v6;
  int csum_completed; /* a plain packet whose partial checksum was completed in place */
  uint8_t proto;
  uint16_t ip_len, csum_start, hdr_len, gso_size;
} wgts_vnet;
/* Parses hdr (and completes a partial checksum of a plain packet); segments, or -1 if malformed. */
int wgts_vnet_parse(wgts_vnet *v, const uint8_t *hdr, uint8_t *pkt, size_t len, size_t max_seg);
/* Writes segments first.. (at most max) at out + k * stride; out may be in (first == 0). */
int wgts_gso_split(const wgts_vnet *v, const uint8_t *in, size_t len, int first, uint8_t *out,
                   size_t stride, int max, int32_t *lengths);
int wgts_tcp_coalesce(const uint8_t *slab, const int32_t *offsets, const int32_t *lengths,
                      int first, int count, uint8_t *out, size_t cap, uint8_t vnet[10],
                      size_t *out_len);
/* UDP receive coalescing: the GSO_UDP_L4 counterpart of wgts_tcp_coalesce. */
int wgts_udp_coalesce(const uint8_t *slab, const int32_t *offsets, const int32_t *lengths,
                      int first, int count, uint8_t *out, size_t cap, uint8_t vnet[10],
                      size_t *out_len);

/* The UDP_GRO segment size in a received message's control data, or 0 when there is none. */
int32_t wgts_gro_size(const struct msghdr *msg);

/* One packet of an AEAD batch, read once from the caller's (possibly shared) arrays. */
typedef struct {
  uint64_t counter;
  int32_t off, len, key;
} wgts_aead_pkt;
/*
 * Copies packet i's offset, length, counter and key index (0 without keyIdx) to out[i], reading
 * each element once, and checks them against the slab (room for a tag when sealing) and the key
 * count. NULL when all are fine, else the message of the RangeError to throw.
 */
const char *wgts_aead_check(const int32_t *offsets, const int32_t *lengths, const double *counters,
                            const int32_t *key_idx, size_t n, size_t nkeys, size_t slab_len,
                            int sealing, wgts_aead_pkt *out);

#endif
