// SPDX-License-Identifier: GPL-2.0
// The layout of the layer-7 maps and events, shared with src/agent/enforce/l7.rs (which encodes
// and decodes them as little-endian bytes). Change both together.
#ifndef PICKET_L7_H
#define PICKET_L7_H

#define L7_MAX_HTTP 16
#define L7_MAX_DNS 16
#define L7_MAX_TLS 16
// Bytes of a TLS ClientHello read for its server name, and of an HTTP request read for its Host
// header (a power of two).
#define L7_TLS_LEN 1024
#define L7_METHOD_LEN 8
#define L7_PATH_LEN 96
#define L7_NAME_LEN 128
// Bytes of a request line or query name kept for judging and reporting (a power of two).
#define L7_TEXT_LEN 128

#define L7_HTTP 1
#define L7_DNS 2
#define L7_TLS 3
// A DNS query over TCP (judged on the stream, not answered: the sender's write fails).
#define L7_DNS_TCP 4
// An HTTP request a container receives (judged as it arrives on the accepted socket).
#define L7_HTTP_IN 5

#define L7_RECORDED 1
#define L7_ALERTED 2
#define L7_DENIED 3
// `rule` when none matched (an allowlist left the request out).
#define L7_NO_RULE 0xffffffff

// Paths and names are compared by FNV-1a 64 hashes of every prefix (paths) or suffix (names,
// hashed from the last byte back), then the deciding allow rule byte by byte (a crafted
// collision must not let a request through; one with a deny rule only refuses its sender).
#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct http_rule {
    __u64 method;   // its upper-case bytes, first byte lowest; 0: any method
    __u64 path_hash;
    __u8 path[L7_PATH_LEN];
    __u32 path_len;
    __u32 prefix; // 1: the path is a prefix (`/admin*`), 0: the whole path
    __u32 deny;
    __u16 port_lo;
    __u16 port_hi;
    __u32 pad;
    // The Host header's name (without its port), as DNS names are matched; host_len 0: any.
    __u64 host_hash;
    __u8 host[L7_NAME_LEN];
    __u32 host_len;
    __u32 host_suffix;
};

struct dns_rule {
    __u64 hash;             // of the name's bytes from the last one back
    __u8 name[L7_NAME_LEN]; // lower case, dotted; a suffix rule keeps the leading dot
    __u32 len;
    __u32 suffix;
    __u32 deny;
    __u32 pad;
};

struct l7_policy {
    __u32 mode; // MODE_* of policy.h
    __u32 http_allowlist;
    __u32 http_count;
    __u32 dns_allowlist;
    __u32 dns_count;
    __u32 tls_allowlist;
    __u32 tls_count;
    __u32 http_hosts; // 1: an HTTP rule names a host (the request's headers are read for it)
    struct http_rule http[L7_MAX_HTTP];
    struct dns_rule dns[L7_MAX_DNS];
    struct dns_rule tls[L7_MAX_TLS]; // server names, matched as DNS names are
    // Requests it receives: ports are its own (the server's).
    __u32 http_in_allowlist;
    __u32 http_in_count;
    __u32 http_in_hosts;
    __u32 pad2;
    struct http_rule http_in[L7_MAX_HTTP];
};

// HTTP: text is the request line's start (`DELETE /admin`). TLS: the server name. DNS: text is the query's first bytes,
// header and question as sent, so that user space can answer it (REFUSED) and name it.
struct l7_event {
    __u32 kind;
    __u32 verdict;
    __u32 rule;
    __u32 pid;
    __u32 uid;
    __u16 port; // the server's
    __u16 local_port;
    __u64 cgroup_id;
    __u64 timestamp_ns;
    char comm[16];
    __u32 len;
    __u32 family; // 2 or 10
    __u8 local[16];
    __u8 remote[16];
    __u8 text[L7_TEXT_LEN];
};

#endif
