/*
 * TUN offload frames (IFF_VNET_HDR): parsing the virtio_net_hdr the kernel puts before every
 * packet, completing a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM), and splitting TCP/UDP
 * super-packets (TSO/USO) into MSS-sized IP packets, each with its own IP length, IPv4 id and
 * header checksum, TCP sequence number and flags, and full L4 checksum: what the kernel's
 * tcp_gso_segment/__udp_gso_segment would have done, so the peer sees ordinary packets.
 * A port of wireguard-go's tun/offload_linux.go (gsoSplit, gsoNoneChecksum).
 */
#include <string.h>

#include "offload.h"

/* Not in older uapi headers (virtio 1.x / Linux 6.2). */
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_TCPV6 4
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr32(uint8_t *p, uint32_t v) {
  wr16(p, (uint16_t)(v >> 16));
  wr16(p + 2, (uint16_t)v);
}
/* virtio_net_hdr fields are in the host's order (legacy header, no TUNSETVNETBE). */
static inline uint16_t rdh16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

/*
 * Ones'-complement sum of `len` bytes added to `acc`, unfolded. Summing native-order words and
 * storing the folded result natively gives the right bytes on either endianness (RFC 1071 §2B).
 */
static uint64_t csum_add(const uint8_t *p, size_t len, uint64_t acc) {
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    acc += w;
    if (acc < w) acc++;
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
    if (acc < w) acc++;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    acc += w;
    if (acc < w) acc++;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t w = 0;
    memcpy(&w, p, 1); /* the odd byte is the high-order byte of a zero-padded word */
    acc += w;
    if (acc < w) acc++;
  }
  return acc;
}

static uint16_t csum_fold(uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

/* Stores ~sum at p, natively (see csum_add); 0 becomes 0xffff, which UDP needs and TCP accepts. */
static void csum_store(uint8_t *p, uint64_t acc) {
  uint16_t c = (uint16_t)~csum_fold(acc);
  if (c == 0) c = 0xffff;
  memcpy(p, &c, 2);
}

/* A 16-bit big-endian value as csum_add would have read it from memory. */
static uint64_t csum_be16(uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  uint16_t w;
  memcpy(&w, b, 2);
  return w;
}

int wgts_vnet_parse(wgts_vnet *v, const uint8_t *hdr, uint8_t *pkt, size_t len, size_t max_seg) {
  memset(v, 0, sizeof *v);
  uint8_t flags = hdr[0];
  uint8_t type = hdr[1] & (uint8_t)~VNET_GSO_ECN;
  uint16_t gso_size = rdh16(hdr + 4);
  uint16_t csum_start = rdh16(hdr + 6);
  uint16_t csum_offset = rdh16(hdr + 8);
  if (len == 0) return -1;
  if (type == VNET_GSO_NONE) {
    v->segments = 1;
    if (flags & VNET_F_NEEDS_CSUM) {
      size_t at = (size_t)csum_start + csum_offset;
      if (at + 2 > len || csum_start > len) return -1;
      /* The field holds the pseudo-header sum (CHECKSUM_PARTIAL): summing the bytes with it in
       * place adds it in, as wireguard-go's gsoNoneChecksum does explicitly. */
      csum_store(pkt + at, csum_add(pkt + csum_start, len - csum_start, 0));
      v->csum_completed = 1;
    }
    return 1;
  }
  if (gso_size == 0) return -1;
  int version = pkt[0] >> 4;
  if (len < 20) return -1;
  size_t ip_len;
  if (version == 4) {
    if (type == VNET_GSO_TCPV6) return -1;
    ip_len = (size_t)(pkt[0] & 0x0f) * 4;
    if (ip_len < 20 || csum_start != ip_len) return -1; /* IPv4 has no extension headers */
    v->is_v6 = 0;
  } else if (version == 6) {
    if (type == VNET_GSO_TCPV4) return -1;
    if (len < 40 || csum_start < 40) return -1;
    ip_len = 40;
    v->is_v6 = 1;
  } else {
    return -1;
  }
  /* hdr_len from the kernel may cover the whole linear part; the L4 header length is reliable. */
  size_t l4_len;
  if (type == VNET_GSO_UDP_L4) {
    l4_len = 8;
    v->proto = 17;
    if (csum_offset != 6) return -1;
  } else if (type == VNET_GSO_TCPV4 || type == VNET_GSO_TCPV6) {
    if ((size_t)csum_start + 20 > len) return -1;
    l4_len = (size_t)(pkt[csum_start + 12] >> 4) * 4;
    if (l4_len < 20) return -1;
    v->proto = 6;
    if (csum_offset != 16) return -1;
  } else {
    return -1;
  }
  if (version == 4 && pkt[9] != v->proto) return -1;
  if (version == 6 && csum_start == 40 && pkt[6] != v->proto) return -1;
  size_t hdr_len = (size_t)csum_start + l4_len;
  if (hdr_len >= len || hdr_len + gso_size > max_seg || hdr_len + gso_size > 0xffff) return -1;
  v->gso = type;
  v->ip_len = (uint16_t)ip_len;
  v->csum_start = csum_start;
  v->hdr_len = (uint16_t)hdr_len;
  v->gso_size = gso_size;
  v->segments = (int)((len - hdr_len + gso_size - 1) / gso_size);
  return v->segments;
}

/* Builds segment i of the super-packet `in` at `out` (out == in only for i == 0); its length. */
static size_t build_segment(const wgts_vnet *v, const uint8_t *in, size_t len, int i,
                            uint8_t *out) {
  size_t data_at = v->hdr_len + (size_t)i * v->gso_size;
  size_t data_len = len - data_at < v->gso_size ? len - data_at : v->gso_size;
  size_t total = v->hdr_len + data_len;
  int last = data_at + data_len == len;
  if (out != in) {
    memcpy(out, in, v->hdr_len);
    memcpy(out + v->hdr_len, in + data_at, data_len);
  }
  uint8_t *l4 = out + v->csum_start;
  uint64_t pseudo;
  if (!v->is_v6) {
    wr16(out + 2, (uint16_t)total);
    /* Consecutive ids, as the kernel's segmentation does (unless the id is fixed, DF-only). */
    wr16(out + 4, (uint16_t)(rd16(in + 4) + i));
    out[10] = out[11] = 0;
    csum_store(out + 10, csum_add(out, v->ip_len, 0));
    pseudo = csum_add(out + 12, 8, 0);
  } else {
    wr16(out + 4, (uint16_t)(total - 40));
    pseudo = csum_add(out + 8, 32, 0);
  }
  size_t l4_total = total - v->csum_start;
  pseudo += csum_be16(v->proto) + csum_be16((uint16_t)l4_total);
  if (v->proto == 6) {
    wr32(l4 + 4, rd32(in + v->csum_start + 4) + (uint32_t)i * v->gso_size);
    uint8_t fl = in[v->csum_start + 13];
    if (!last) fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (i > 0) fl &= (uint8_t)~TCP_CWR;
    l4[13] = fl;
    l4[16] = l4[17] = 0;
    csum_store(l4 + 16, csum_add(l4, l4_total, pseudo));
  } else {
    wr16(l4 + 4, (uint16_t)l4_total);
    l4[6] = l4[7] = 0;
    csum_store(l4 + 6, csum_add(l4, l4_total, pseudo));
  }
  return total;
}

int wgts_gso_split(const wgts_vnet *v, const uint8_t *in, size_t len, int first, uint8_t *out,
                   size_t stride, int max, int32_t *lengths) {
  if (first < 0 || max <= 0 || first >= v->segments) return 0;
  int count = v->segments - first;
  if (count > max) count = max;
  if (count <= 0) return 0;
  /* Backwards, so that splitting in place (out == in, first == 0) reads `in` before segment 0
   * rewrites its headers. */
  for (int k = count - 1; k >= 0; k--) {
    lengths[k] = (int32_t)build_segment(v, in, len, first + k, out + (size_t)k * stride);
  }
  return count;
}

/*
 * TCP receive coalescing for TUN writes (what the kernel's tcp_gro_receive would have merged):
 * packets first.. of a batch that continue one TCP flow, in order, with equal headers (Linux
 * compares the ack, the flag word with the window, and the options), become one super-packet
 * with a virtio_net_hdr (GSO TCPV4/TCPV6, checksum partial) in `out`. Returns how many packets
 * were merged (1 = the first is not mergeable, or nothing follows it; `out` is then unused).
 * A port of the idea of wireguard-go's tcpGRO, limited to runs of consecutive packets.
 */
#define TCP_ACK 0x10
#define COALESCE_MAX_SEGMENTS 64

typedef struct {
  int v6;
  size_t ip_len, tcp_len, payload;
  const uint8_t *tcp;
} tcp_pkt;

static int parse_tcp(const uint8_t *p, size_t len, tcp_pkt *t) {
  if (len < 40) return 0;
  int version = p[0] >> 4;
  if (version == 4) {
    if ((p[0] & 0x0f) != 5 || p[9] != 6 || rd16(p + 2) != len) return 0;
    if ((rd16(p + 6) & 0x3fff) != 0) return 0; /* a fragment (MF or offset) */
    t->v6 = 0;
    t->ip_len = 20;
  } else if (version == 6) {
    if (len < 60 || p[6] != 6 || (size_t)rd16(p + 4) + 40 != len) return 0;
    t->v6 = 1;
    t->ip_len = 40;
  } else {
    return 0;
  }
  t->tcp = p + t->ip_len;
  t->tcp_len = (size_t)(t->tcp[12] >> 4) * 4;
  if (t->tcp_len < 20 || t->ip_len + t->tcp_len > len) return 0;
  uint8_t fl = t->tcp[13];
  if ((fl & TCP_ACK) == 0 || (fl & (uint8_t) ~(TCP_ACK | TCP_PSH)) != 0) return 0;
  t->payload = len - t->ip_len - t->tcp_len;
  return 1;
}

/* Same flow and mergeable headers: addresses, ports, IP fields that must not change, the TCP
 * ack, data offset, window and options (flags are checked by the caller). */
static int same_flow(const uint8_t *a, const tcp_pkt *ta, const uint8_t *b, const tcp_pkt *tb) {
  if (ta->v6 != tb->v6 || ta->tcp_len != tb->tcp_len) return 0;
  if (!ta->v6) {
    if (a[1] != b[1] || a[8] != b[8] || memcmp(a + 6, b + 6, 2) || memcmp(a + 12, b + 12, 8))
      return 0;
  } else {
    if (memcmp(a, b, 4) || a[7] != b[7] || memcmp(a + 8, b + 8, 32)) return 0;
  }
  if (memcmp(ta->tcp, tb->tcp, 4) || memcmp(ta->tcp + 8, tb->tcp + 8, 5) ||
      memcmp(ta->tcp + 14, tb->tcp + 14, 2) ||
      memcmp(ta->tcp + 20, tb->tcp + 20, ta->tcp_len - 20))
    return 0;
  return 1;
}

/* Whether the packet's TCP checksum verifies. A merged super-packet goes up as CHECKSUM_PARTIAL,
 * which the kernel trusts, so a segment with a bad checksum must not be hidden in one: it is
 * written alone and the kernel drops it, as it would have without coalescing. */
static int tcp_csum_ok(const uint8_t *p, size_t len, const tcp_pkt *t) {
  uint64_t acc = t->v6 ? csum_add(p + 8, 32, 0) : csum_add(p + 12, 8, 0);
  acc += csum_be16(6) + csum_be16((uint16_t)(len - t->ip_len));
  acc = csum_add(p + t->ip_len, len - t->ip_len, acc);
  return csum_fold(acc) == 0xffff;
}

int wgts_tcp_coalesce(const uint8_t *slab, const int32_t *offsets, const int32_t *lengths,
                      int first, int count, uint8_t *out, size_t cap, uint8_t vnet[10],
                      size_t *out_len) {
  const uint8_t *p0 = slab + offsets[first];
  size_t len0 = (size_t)lengths[first];
  tcp_pkt t0;
  if (first + 1 >= count || !parse_tcp(p0, len0, &t0) || t0.payload == 0) return 1;
  if ((t0.tcp[13] & TCP_PSH) || !tcp_csum_ok(p0, len0, &t0)) return 1;
  size_t gso = t0.payload, hdr = t0.ip_len + t0.tcp_len, total = len0;
  uint32_t next_seq = rd32(t0.tcp + 4) + (uint32_t)gso;
  int n = 1, psh = 0;
  while (first + n < count && n < COALESCE_MAX_SEGMENTS && !psh) {
    const uint8_t *p = slab + offsets[first + n];
    size_t len = (size_t)lengths[first + n];
    tcp_pkt t;
    if (!parse_tcp(p, len, &t) || t.payload == 0 || t.payload > gso) break;
    if (!same_flow(p0, &t0, p, &t) || rd32(t.tcp + 4) != next_seq) break;
    if (!tcp_csum_ok(p, len, &t)) break;
    if (total + t.payload > 0xffff || total + t.payload > cap) break;
    psh = (t.tcp[13] & TCP_PSH) != 0;
    total += t.payload;
    next_seq += (uint32_t)t.payload;
    n++;
    if (t.payload < gso) break; /* only the last segment may be short */
  }
  if (n == 1) return 1;
  memcpy(out, p0, len0);
  size_t at = len0;
  for (int k = 1; k < n; k++) {
    const uint8_t *p = slab + offsets[first + k];
    size_t len = (size_t)lengths[first + k];
    memcpy(out + at, p + hdr, len - hdr);
    at += len - hdr;
  }
  uint8_t *tcp = out + t0.ip_len;
  if (psh) tcp[13] |= TCP_PSH;
  uint64_t pseudo;
  if (!t0.v6) {
    wr16(out + 2, (uint16_t)total);
    out[10] = out[11] = 0;
    csum_store(out + 10, csum_add(out, 20, 0));
    pseudo = csum_add(out + 12, 8, 0);
  } else {
    wr16(out + 4, (uint16_t)(total - 40));
    pseudo = csum_add(out + 8, 32, 0);
  }
  pseudo += csum_be16(6) + csum_be16((uint16_t)(total - t0.ip_len));
  /* CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not inverted. */
  uint16_t partial = csum_fold(pseudo);
  memcpy(tcp + 16, &partial, 2);
  uint16_t h[5] = {0, (uint16_t)hdr, (uint16_t)gso, (uint16_t)t0.ip_len, 16};
  memcpy(vnet, h, 10);
  vnet[0] = VNET_F_NEEDS_CSUM;
  vnet[1] = t0.v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4;
  *out_len = total;
  return n;
}

/*
 * UDP receive coalescing for TUN writes (what the kernel's udp_gro_receive does for a socket
 * with UDP_GRO, and wireguard-go's udpGRO): packets first.. of a batch that continue one UDP
 * flow, with equal IP fields, all payloads of the first one's size except a shorter last one,
 * become one GSO_UDP_L4 super-packet (kernels >= 6.2 take it from a TUN; a receiving socket
 * without UDP_GRO gets the datagrams split again, each with its own payload and checksum).
 * Returns how many packets were merged (1: not mergeable, `out` unused).
 */
typedef struct {
  int v6;
  size_t ip_len, payload;
} udp_pkt;

static int parse_udp(const uint8_t *p, size_t len, udp_pkt *u) {
  if (len < 28) return 0;
  int version = p[0] >> 4;
  if (version == 4) {
    if ((p[0] & 0x0f) != 5 || p[9] != 17 || rd16(p + 2) != len) return 0;
    if ((rd16(p + 6) & 0x3fff) != 0) return 0; /* a fragment (MF or offset) */
    u->v6 = 0;
    u->ip_len = 20;
  } else if (version == 6) {
    if (len < 48 || p[6] != 17 || (size_t)rd16(p + 4) + 40 != len) return 0;
    u->v6 = 1;
    u->ip_len = 40;
  } else {
    return 0;
  }
  if (rd16(p + u->ip_len + 4) != len - u->ip_len) return 0;
  u->payload = len - u->ip_len - 8;
  return 1;
}

/* Same flow and IP fields that segmentation copies: addresses, ports, ToS/traffic class and flow
 * label, DF, TTL/hop limit. The IPv4 id is not compared: segmentation numbers the datagrams
 * from the first one's id, as the kernel's own GRO does. */
static int same_udp_flow(const uint8_t *a, const udp_pkt *ua, const uint8_t *b,
                         const udp_pkt *ub) {
  if (ua->v6 != ub->v6) return 0;
  if (!ua->v6) {
    if (a[1] != b[1] || (a[6] >> 5) != (b[6] >> 5) || a[8] != b[8] || memcmp(a + 12, b + 12, 8))
      return 0;
  } else {
    if (memcmp(a, b, 4) || a[7] != b[7] || memcmp(a + 8, b + 8, 32)) return 0;
  }
  return memcmp(a + ua->ip_len, b + ub->ip_len, 4) == 0;
}

/* A datagram goes into a CHECKSUM_PARTIAL super-packet only if its own checksum verifies; IPv4
 * datagrams without one (0) are written alone, as the kernel would take them. */
static int udp_csum_ok(const uint8_t *p, size_t len, const udp_pkt *u) {
  if (!u->v6 && rd16(p + u->ip_len + 6) == 0) return 0;
  uint64_t acc = u->v6 ? csum_add(p + 8, 32, 0) : csum_add(p + 12, 8, 0);
  acc += csum_be16(17) + csum_be16((uint16_t)(len - u->ip_len));
  acc = csum_add(p + u->ip_len, len - u->ip_len, acc);
  return csum_fold(acc) == 0xffff;
}

int wgts_udp_coalesce(const uint8_t *slab, const int32_t *offsets, const int32_t *lengths,
                      int first, int count, uint8_t *out, size_t cap, uint8_t vnet[10],
                      size_t *out_len) {
  const uint8_t *p0 = slab + offsets[first];
  size_t len0 = (size_t)lengths[first];
  udp_pkt u0;
  if (first + 1 >= count || !parse_udp(p0, len0, &u0) || u0.payload == 0) return 1;
  if (!udp_csum_ok(p0, len0, &u0)) return 1;
  size_t gso = u0.payload, hdr = u0.ip_len + 8, total = len0;
  int n = 1;
  while (first + n < count && n < COALESCE_MAX_SEGMENTS) {
    const uint8_t *p = slab + offsets[first + n];
    size_t len = (size_t)lengths[first + n];
    udp_pkt u;
    if (!parse_udp(p, len, &u) || u.payload == 0 || u.payload > gso) break;
    if (!same_udp_flow(p0, &u0, p, &u) || !udp_csum_ok(p, len, &u)) break;
    if (total + u.payload > 0xffff || total + u.payload > cap) break;
    total += u.payload;
    n++;
    if (u.payload < gso) break; /* only the last datagram may be short */
  }
  if (n == 1) return 1;
  memcpy(out, p0, len0);
  size_t at = len0;
  for (int k = 1; k < n; k++) {
    const uint8_t *p = slab + offsets[first + k];
    size_t len = (size_t)lengths[first + k];
    memcpy(out + at, p + hdr, len - hdr);
    at += len - hdr;
  }
  uint8_t *udp = out + u0.ip_len;
  uint64_t pseudo;
  if (!u0.v6) {
    wr16(out + 2, (uint16_t)total);
    out[10] = out[11] = 0;
    csum_store(out + 10, csum_add(out, 20, 0));
    pseudo = csum_add(out + 12, 8, 0);
  } else {
    wr16(out + 4, (uint16_t)(total - 40));
    pseudo = csum_add(out + 8, 32, 0);
  }
  wr16(udp + 4, (uint16_t)(total - u0.ip_len));
  pseudo += csum_be16(17) + csum_be16((uint16_t)(total - u0.ip_len));
  /* CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not inverted. */
  uint16_t partial = csum_fold(pseudo);
  memcpy(udp + 6, &partial, 2);
  uint16_t h[5] = {0, (uint16_t)hdr, (uint16_t)gso, (uint16_t)u0.ip_len, 6};
  memcpy(vnet, h, 10);
  vnet[0] = VNET_F_NEEDS_CSUM;
  vnet[1] = VNET_GSO_UDP_L4;
  *out_len = total;
  return n;
}
