{
  # The native addon: TUN device, UDP sockets, fd readiness and batched ChaCha20-Poly1305 over
  # Node's own OpenSSL (src/tun/native). C over N-API only, built against the headers installed
  # with Node (npm's nodedir), no extra dependency: the node binary exports the EVP symbols.
  "targets": [
    {
      "target_name": "wgts_native",
      "sources": [
        "src/tun/native/addon.c",
        "src/tun/native/aead.c",
        "src/tun/native/aead-slab.c",
        "src/tun/native/gro.c",
        "src/tun/native/gso.c",
        "src/tun/native/gso-js.c",
        "src/tun/native/mac.c",
        "src/tun/native/poll.c",
        "src/tun/native/route.c",
        "src/tun/native/tun.c",
        "src/tun/native/udp.c",
        "src/tun/native/util.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "cflags!": ["-O3"],
      "conditions": [["OS!='linux'", {"sources!": [
        "src/tun/native/addon.c", "src/tun/native/aead.c", "src/tun/native/aead-slab.c",
        "src/tun/native/gro.c", "src/tun/native/gso.c", "src/tun/native/gso-js.c", "src/tun/native/mac.c",
        "src/tun/native/poll.c", "src/tun/native/route.c",
        "src/tun/native/tun.c", "src/tun/native/udp.c", "src/tun/native/util.c"
      ]}]]
    }
  ]
}
