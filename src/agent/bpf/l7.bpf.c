// SPDX-License-Identifier: GPL-2.0
// Layer-7 verdicts for containers whose policy has HTTP or DNS rules (src/agent/enforce/l7.rs
// writes `l7_policies`, loads this object only then, and reads `l7_events`):
// - HTTP: the connect hooks remember the sockets such containers open (by cookie), a sockops
//   program puts each into `l7_socks` once it is established, and the sk_msg program on that map
//   judges every message the container sends that starts a request (method, path, port). A
//   refused request is dropped before it is queued: the sender's send() fails with EACCES at
//   once and the server never sees it; other requests on the same connection pass untouched.
// - DNS: a cgroup_skb egress program reads the query name of each UDP datagram such containers
//   send to port 53; a refused query never leaves and the sender's send fails with EPERM.
// Every refusal (and, in monitor mode, every request that would have been refused) is an event
// naming the rule; nothing else is reported (the flows sensor already names protocols).

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "l7.h"
#include "policy.h"

char LICENSE[] SEC("license") = "GPL";

#define SK_DROP 0
#define SK_PASS 1
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define AF_INET 2
#define AF_INET6 10
// Bytes of a DNS header; the question's name starts after it.
#define DNS_HEADER 12

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct l7_policy);
} l7_policies SEC(".maps");

// Socket cookie -> the cgroup that connected it (only for cgroups with HTTP rules).
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u64);
} l7_cookies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u32);
} l7_socks SEC(".maps");

// Socket cookie -> the cgroup of a container's accepted socket (containers with inbound HTTP
// rules), and those sockets.
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u64);
} l7_in_cookies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u32);
} l7_in_socks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} l7_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} l7_drops SEC(".maps");

// The request line or query name being judged and its prefix (or suffix) hashes (too big for
// the stack with the event).
struct scratch {
    __u8 text[L7_TEXT_LEN];
    __u8 raw[L7_NAME_LEN]; // a DNS query; an HTTP request's host name
    __u64 hashes[L7_TEXT_LEN];
    __u64 host_hashes[L7_NAME_LEN];
    __u8 hello[L7_TLS_LEN]; // a ClientHello; an HTTP request's head
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} l7_scratch SEC(".maps");

static __always_inline int remember(struct bpf_sock_addr *ctx)
{
    if (ctx->protocol != IPPROTO_TCP)
        return 1;
    __u64 cgroup_id = bpf_get_current_cgroup_id();
    struct l7_policy *p = bpf_map_lookup_elem(&l7_policies, &cgroup_id);
    if (!p)
        return 1;
    // Sockets to port 53 of containers with DNS rules too (DNS over TCP).
    int dns = (p->dns_count || p->dns_allowlist) && bpf_ntohs(ctx->user_port) == 53;
    if (!p->http_count && !p->http_allowlist && !p->tls_count && !p->tls_allowlist && !dns)
        return 1;
    __u64 cookie = bpf_get_socket_cookie(ctx);
    bpf_map_update_elem(&l7_cookies, &cookie, &cgroup_id, BPF_ANY);
    return 1;
}

SEC("cgroup/connect4")
int l7_connect4(struct bpf_sock_addr *ctx)
{
    return remember(ctx);
}

SEC("cgroup/connect6")
int l7_connect6(struct bpf_sock_addr *ctx)
{
    return remember(ctx);
}

// An accepted connection of a container with inbound HTTP rules joins l7_in_socks. Its cgroup is
// the listener's (the process that made it), read from the socket: this runs in softirq, where
// the current task is anyone's.
static __always_inline int remember_accepted(struct bpf_sock_ops *skops)
{
    struct bpf_sock *sk = skops->sk;
    if (!sk)
        return 1;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp)
        return 1;
    struct cgroup *cgrp = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup);
    if (!cgrp)
        return 1;
    __u64 cgroup_id = BPF_CORE_READ(cgrp, kn, id);
    struct l7_policy *p = bpf_map_lookup_elem(&l7_policies, &cgroup_id);
    if (!p || (!p->http_in_count && !p->http_in_allowlist))
        return 1;
    __u64 cookie = bpf_get_socket_cookie(skops);
    bpf_map_update_elem(&l7_in_cookies, &cookie, &cgroup_id, BPF_ANY);
    bpf_sock_hash_update(skops, &l7_in_socks, &cookie, BPF_NOEXIST);
    return 1;
}

SEC("sockops")
int l7_sockops(struct bpf_sock_ops *skops)
{
    if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
        return remember_accepted(skops);
    if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
        return 1;
    __u64 cookie = bpf_get_socket_cookie(skops);
    if (!bpf_map_lookup_elem(&l7_cookies, &cookie))
        return 1;
    bpf_sock_hash_update(skops, &l7_socks, &cookie, BPF_NOEXIST);
    return 1;
}

static __always_inline void count_drop(void)
{
    __u32 zero = 0;
    __u64 *dropped = bpf_map_lookup_elem(&l7_drops, &zero);
    if (dropped)
        *dropped += 1;
}

// Both ends of what is judged.
struct ends {
    __u32 family;
    __u16 local_port;
    __u16 remote_port;
    __u8 local[16];
    __u8 remote[16];
};

static __always_inline void report(__u32 kind, __u32 verdict, __u32 rule, __u64 cgroup_id, const struct ends *ends,
                                   const __u8 *text, __u32 len)
{
    struct l7_event *e = bpf_ringbuf_reserve(&l7_events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return;
    }
    e->kind = kind;
    e->verdict = verdict;
    e->rule = rule;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->uid = bpf_get_current_uid_gid() & 0xffffffff;
    e->port = ends->remote_port;
    e->local_port = ends->local_port;
    e->family = ends->family;
    __builtin_memcpy(e->local, ends->local, 16);
    __builtin_memcpy(e->remote, ends->remote, 16);
    e->cgroup_id = cgroup_id;
    e->timestamp_ns = bpf_ktime_get_boot_ns();
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    e->len = len;
    __builtin_memcpy(e->text, text, L7_TEXT_LEN);
    bpf_ringbuf_submit(e, 0);
}

// What the mode makes of a violation: the verdict to report.
static __always_inline __u32 verdict_of(const struct l7_policy *p)
{
    if (p->mode == MODE_PROTECT)
        return L7_DENIED;
    return p->mode == MODE_MONITOR ? L7_ALERTED : L7_RECORDED;
}

// An index into text (or raw, hashes), masked where the verifier sees it (the compiler would
// drop a mask it can prove redundant, and the verifier cannot follow the proof).
#define AT(x)                                                                                      \
    ({                                                                                             \
        __u32 _at = (x);                                                                           \
        barrier_var(_at);                                                                          \
        _at & (L7_TEXT_LEN - 1);                                                                   \
    })

// Loops over bytes run as bpf_loop callbacks: the verifier checks each body once, not every
// length a request line or name may have.
struct walk {
    struct scratch *s;
    __u32 from;   // where the path starts in text (HTTP)
    __u32 len;    // bytes of text
    __u32 out;    // bytes of path (HTTP) or name (DNS) found
    __u32 left;   // bytes left in the current label (DNS)
    __u32 bad;
    __u64 hash;
    const __u8 *want; // bytes to compare with (a rule's path or name)
};

static long path_byte(__u32 i, struct walk *w)
{
    __u32 at = w->from + i;
    if (at >= w->len || at >= L7_TEXT_LEN)
        return 1;
    __u8 c = w->s->text[AT(at)];
    if (c == ' ' || c == '?' || c == '\r' || c == '\n')
        return 1;
    w->hash = (w->hash ^ c) * FNV_PRIME;
    // (Masked for the verifier: a path ends within L7_PATH_LEN < L7_TEXT_LEN bytes.)
    w->s->hashes[AT(i + 1)] = w->hash;
    w->out = i + 1;
    return 0;
}

static long same_byte(__u32 i, struct walk *w)
{
    __u32 at = w->from + i;
    if (at >= L7_TEXT_LEN || i >= L7_TEXT_LEN) {
        w->bad = 1;
        return 1;
    }
    if (w->s->text[AT(at)] != w->want[AT(i)]) {
        w->bad = 1;
        return 1;
    }
    return 0;
}

// One byte of a DNS question's name (length-prefixed labels) into text as a dotted, lower-case
// name.
static long name_byte(__u32 i, struct walk *w)
{
    __u8 c = w->s->raw[AT(i + DNS_HEADER)];
    if (w->left == 0) {
        if (c == 0) {
            w->from = i; // where the name ends: its type and class follow
            return 1;
        }
        if (c > 63) {
            w->bad = 1; // a compression pointer in a question: not a query picket judges
            return 1;
        }
        w->left = c;
        if (w->out > 0) {
            w->s->text[AT(w->out)] = '.';
            w->out++;
        }
    } else {
        w->s->text[AT(w->out)] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        w->out++;
        w->left--;
    }
    if (w->out >= L7_NAME_LEN - 1) {
        w->bad = 1;
        return 1;
    }
    return 0;
}

// The hash of the name's last i + 1 bytes.
static long suffix_byte(__u32 i, struct walk *w)
{
    __u32 k = i + 1;
    if (k > w->len)
        return 1;
    w->hash = (w->hash ^ w->s->text[AT(w->len - k)]) * FNV_PRIME;
    w->s->hashes[AT(k)] = w->hash;
    return 0;
}

// A byte of the ClientHello or an HTTP request's head (masked for the verifier).
#define HELLO(s, i)                                                                                \
    ({                                                                                             \
        __u32 _i = (i);                                                                            \
        barrier_var(_i);                                                                           \
        (s)->hello[_i & (L7_TLS_LEN - 1)];                                                         \
    })

// The Host header of an HTTP request's head (in hello): found, then its name copied into raw
// (lower case, without a port), then the name's suffix hashes.
struct host_walk {
    struct scratch *s;
    __u32 len;   // bytes of the head read
    __u32 state; // bytes of "\nhost:" matched so far
    __u32 at;    // where the header's value starts (0: no Host header)
    __u32 out;   // bytes of the name
    __u32 bad;
    __u64 hash;
    __u32 from; // (comparing) where the rule's suffix starts in the name
    const __u8 *want;
};

static long host_find(__u32 i, struct host_walk *w)
{
    if (i >= w->len)
        return 1;
    __u8 c = HELLO(w->s, i);
    if (c >= 'A' && c <= 'Z')
        c += 32;
    // An empty line ends the headers: a Host in the body is not the request's.
    if (w->state == 1 && (c == '\r' || c == '\n'))
        return 1;
    __u8 want = 0;
    switch (w->state) {
    case 0:
        want = '\n';
        break;
    case 1:
        want = 'h';
        break;
    case 2:
        want = 'o';
        break;
    case 3:
        want = 's';
        break;
    case 4:
        want = 't';
        break;
    default:
        want = ':';
        break;
    }
    if (c == want) {
        w->state++;
        if (w->state == 6) {
            w->at = i + 1;
            return 1;
        }
    } else {
        w->state = c == '\n' ? 1 : 0;
    }
    return 0;
}

static long host_byte(__u32 i, struct host_walk *w)
{
    __u32 at = w->at + i;
    if (at >= w->len)
        return 1;
    __u8 c = HELLO(w->s, at);
    if (w->out == 0 && (c == ' ' || c == '\t'))
        return 0;
    if (c == ':' || c == '\r' || c == '\n' || c == ' ' || c == '\t')
        return 1;
    if (w->out >= L7_NAME_LEN - 1) {
        w->bad = 1;
        return 1;
    }
    w->s->raw[AT(w->out)] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    w->out++;
    return 0;
}

static long host_suffix(__u32 i, struct host_walk *w)
{
    __u32 k = i + 1;
    if (k > w->out)
        return 1;
    w->hash = (w->hash ^ w->s->raw[AT(w->out - k)]) * FNV_PRIME;
    w->s->host_hashes[AT(k)] = w->hash;
    return 0;
}

static long host_same(__u32 i, struct host_walk *w)
{
    if (w->s->raw[AT(w->from + i)] != w->want[AT(i)]) {
        w->bad = 1;
        return 1;
    }
    return 0;
}

// The request's host name (its head is in hello, n bytes) into raw: its length (0: none, or
// none that fits), with its suffix hashes.
static __always_inline __u32 find_host(struct scratch *s, __u32 n)
{
    struct host_walk w = { .s = s, .len = n };
    bpf_loop(L7_TLS_LEN, host_find, &w, 0);
    if (!w.at)
        return 0;
    bpf_loop(L7_NAME_LEN, host_byte, &w, 0);
    if (w.bad || !w.out)
        return 0;
    w.hash = FNV_BASIS;
    s->host_hashes[0] = FNV_BASIS;
    bpf_loop(w.out, host_suffix, &w, 0);
    return w.out;
}

static __always_inline int http_rule_matches(const struct http_rule *r, const struct scratch *s, __u64 method,
                                             __u32 path_len, __u16 port, __u32 host_len)
{
    if (port < r->port_lo || port > r->port_hi)
        return 0;
    if (r->method && r->method != method)
        return 0;
    if (r->path_len > path_len || (!r->prefix && r->path_len != path_len))
        return 0;
    if (r->host_len) {
        if (r->host_len > host_len || (!r->host_suffix && r->host_len != host_len))
            return 0;
        __u32 h = r->host_len;
        if (h >= L7_NAME_LEN || s->host_hashes[AT(h)] != r->host_hash)
            return 0;
    }
    __u32 at = r->path_len;
    return at <= L7_PATH_LEN && s->hashes[AT(at)] == r->path_hash;
}

// The allow rule's host, byte by byte (hashes chose it).
static __always_inline int http_host_is(const struct http_rule *r, struct scratch *s, __u32 host_len)
{
    __u32 n = r->host_len;
    if (!n)
        return 1;
    if (n > host_len || n >= L7_NAME_LEN)
        return 0;
    struct host_walk w = { .s = s, .from = host_len - n, .want = r->host };
    bpf_loop(n, host_same, &w, 0);
    return !w.bad;
}

// The allow rule that lets a request through, byte by byte (hashes chose it).
static __always_inline int http_path_is(const struct http_rule *r, struct scratch *s, __u32 path_from)
{
    struct walk w = { .s = s, .from = path_from, .want = r->path };
    __u32 n = r->path_len;
    if (n > L7_PATH_LEN)
        return 0;
    bpf_loop(n, same_byte, &w, 0);
    return !w.bad;
}

// One 32-bit context field, loaded at its constant offset: clang would otherwise load an array's
// words through a computed context pointer, which the verifier refuses.
#define MSG_WORD(msg, field)                                                                       \
    ({                                                                                             \
        __u32 _word;                                                                               \
        asm volatile("%0 = *(u32 *)(%1 + %2)"                                                      \
                     : "=r"(_word)                                                                 \
                     : "r"(msg), "i"(__builtin_offsetof(struct sk_msg_md, field)));               \
        _word;                                                                                     \
    })

struct hello_walk {
    struct scratch *s;
    __u32 pos;
    __u32 end;
    __u32 name_at;
    __u32 name_len;
    __u32 found;
};

// One extension of the ClientHello: the server_name one (type 0) gives the first host name.
static long hello_extension(__u32 i, struct hello_walk *w)
{
    if (w->pos + 4 > w->end || w->pos + 4 > L7_TLS_LEN)
        return 1;
    __u32 type = (HELLO(w->s, w->pos) << 8) | HELLO(w->s, w->pos + 1);
    __u32 len = (HELLO(w->s, w->pos + 2) << 8) | HELLO(w->s, w->pos + 3);
    if (type == 0) {
        // list length (2), name type (1, 0: host name), name length (2), the name.
        __u32 at = w->pos + 4;
        if (HELLO(w->s, at + 2) != 0)
            return 1;
        w->name_len = (HELLO(w->s, at + 3) << 8) | HELLO(w->s, at + 4);
        w->name_at = at + 5;
        w->found = 1;
        return 1;
    }
    w->pos += 4 + len;
    return 0;
}

// One byte of the server name into text, lower case.
static long name_copy(__u32 i, struct hello_walk *w)
{
    __u8 c = HELLO(w->s, w->name_at + i);
    w->s->text[AT(i)] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    return 0;
}

// Both ends of an sk_msg's socket.
static __always_inline void msg_ends(struct sk_msg_md *msg, struct ends *ends, __u16 port)
{
    __u32 family = msg->family, local_port = msg->local_port;
    __u32 local4 = msg->local_ip4, remote4 = msg->remote_ip4;
    __u32 local6[4] = { MSG_WORD(msg, local_ip6[0]), MSG_WORD(msg, local_ip6[1]), MSG_WORD(msg, local_ip6[2]),
                        MSG_WORD(msg, local_ip6[3]) };
    __u32 remote6[4] = { MSG_WORD(msg, remote_ip6[0]), MSG_WORD(msg, remote_ip6[1]), MSG_WORD(msg, remote_ip6[2]),
                         MSG_WORD(msg, remote_ip6[3]) };
    ends->family = family;
    ends->local_port = local_port;
    ends->remote_port = port;
    if (family == AF_INET) {
        __builtin_memcpy(ends->local, &local4, 4);
        __builtin_memcpy(ends->remote, &remote4, 4);
    } else {
        __builtin_memcpy(ends->local, local6, 16);
        __builtin_memcpy(ends->remote, remote6, 16);
    }
}

static __always_inline int dns_rule_matches(const struct dns_rule *r, const struct scratch *s, __u32 len);
static __always_inline int dns_name_is(const struct dns_rule *r, struct scratch *s, __u32 len);
static __always_inline __u32 judge_query(struct l7_policy *p, struct scratch *s, __u32 *rule_out, __u32 *query_len);
static __always_inline int name_refused(const struct dns_rule *rules, __u32 count, __u32 allowlist, struct scratch *s,
                                        __u32 len, __u32 *rule_out);

// A TLS ClientHello: its server name judged against the TLS rules (a hello without one, or with
// one past the bytes read, is judged as the empty name: an allowlist refuses it).
static __always_inline int judge_hello(struct sk_msg_md *msg, struct l7_policy *p, struct scratch *s, __u8 *data,
                                       __u32 want, __u64 cgroup_id)
{
    __u32 n = want > L7_TLS_LEN - 1 ? L7_TLS_LEN - 1 : want;
    // (Masked after a barrier: the verifier must see the bound on the register the size is in.)
    barrier_var(n);
    n &= L7_TLS_LEN - 1;
    if (n < 44 || bpf_probe_read_kernel(s->hello, n, data) != 0)
        return SK_PASS;
    // Record (5), handshake header (4), version (2), random (32), then the session id.
    __u32 pos = 43;
    pos += 1 + HELLO(s, pos);
    pos += 2 + ((HELLO(s, pos) << 8) | HELLO(s, pos + 1)); // cipher suites
    pos += 1 + HELLO(s, pos);                              // compression methods
    __u32 total = (HELLO(s, pos) << 8) | HELLO(s, pos + 1);
    struct hello_walk w = { .s = s, .pos = pos + 2, .end = pos + 2 + total };
    if (w.end > n)
        w.end = n;
    bpf_loop(64, hello_extension, &w, 0);
    __u32 len = 0;
    if (w.found && w.name_len > 0 && w.name_len < L7_NAME_LEN && w.name_at + w.name_len <= n) {
        len = w.name_len;
        bpf_loop(len, name_copy, &w, 0);
        struct walk suffix = { .s = s, .len = len, .hash = FNV_BASIS };
        s->hashes[0] = FNV_BASIS;
        bpf_loop(len, suffix_byte, &suffix, 0);
    }
    __u32 rule = L7_NO_RULE;
    if (!name_refused(p->tls, p->tls_count, p->tls_allowlist, s, len, &rule))
        return SK_PASS;
    __u32 verdict = verdict_of(p);
    struct ends ends = {};
    msg_ends(msg, &ends, bpf_ntohl(msg->remote_port));
    report(L7_TLS, verdict, rule, cgroup_id, &ends, s->text, len);
    return verdict == L7_DENIED ? SK_DROP : SK_PASS;
}

// An HTTP request in text (len bytes; its head in hello, head bytes, when rules name hosts)
// judged against rules (the sent or the received ones) on port: 1 when refused, with the deny
// rule (or L7_NO_RULE: the allowlist left it out) and the bytes of its request line to report.
// Not a request (no METHOD SP /path at its start): 0.
static __always_inline int http_refused(const struct http_rule *rules, __u32 count, __u32 allowlist, __u32 hosts,
                                        struct scratch *s, __u32 len, __u32 head, __u16 port, __u32 *rule_out,
                                        __u32 *shown)
{
    // A request line: METHOD (capital letters) SP /path (up to SP, '?' or the line's end).
    __u64 method = 0;
    __u32 method_len = 0;
    for (__u32 i = 0; i < L7_METHOD_LEN + 1; i++) {
        if (i >= len)
            return 0;
        __u8 c = s->text[i];
        if (c == ' ') {
            method_len = i;
            break;
        }
        if (c < 'A' || c > 'Z' || i == L7_METHOD_LEN)
            return 0;
        method |= (__u64)c << (8 * i);
    }
    __u32 path_from = method_len + 1;
    if (method_len == 0 || path_from >= len || s->text[AT(path_from)] != '/')
        return 0;
    struct walk w = { .s = s, .from = path_from, .len = len, .hash = FNV_BASIS };
    s->hashes[0] = FNV_BASIS;
    bpf_loop(L7_PATH_LEN, path_byte, &w, 0);
    __u32 path_len = w.out;
    __u32 host_len = hosts && head ? find_host(s, head) : 0;
    __u32 allowed_by = L7_NO_RULE;
    int denied = 0;
    for (__u32 i = 0; i < L7_MAX_HTTP; i++) {
        if (i >= count)
            break;
        if (!http_rule_matches(&rules[i], s, method, path_len, port, host_len))
            continue;
        if (rules[i].deny) {
            denied = 1;
            *rule_out = i;
            break;
        }
        if (allowed_by == L7_NO_RULE)
            allowed_by = i;
    }
    if (!denied) {
        if (!allowlist)
            return 0;
        if (allowed_by < L7_MAX_HTTP && http_path_is(&rules[allowed_by], s, path_from) &&
            http_host_is(&rules[allowed_by], s, host_len))
            return 0;
    }
    *shown = path_from + path_len;
    return 1;
}

SEC("sk_msg")
int l7_http(struct sk_msg_md *msg)
{
    // Only sockets of containers with HTTP rules are in the map; the sender's cgroup says whose
    // rules (sk_msg programs cannot read a socket's cookie).
    __u64 cgroup_id = bpf_get_current_cgroup_id();
    struct l7_policy *p = bpf_map_lookup_elem(&l7_policies, &cgroup_id);
    if (!p || p->mode == MODE_NONE)
        return SK_PASS;
    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
    if (!s)
        return SK_PASS;
    __u32 size = msg->size;
    int tls = p->tls_count || p->tls_allowlist;
    __u32 limit = tls || p->http_hosts ? L7_TLS_LEN : L7_TEXT_LEN;
    __u32 want = size < limit ? size : limit;
    if (want < 4)
        return SK_PASS;
    if (bpf_msg_pull_data(msg, 0, want, 0) != 0)
        return SK_PASS;
    __u8 *data = msg->data;
    __u8 *end = msg->data_end;
    if (data + 6 > end)
        return SK_PASS;
    // A TLS handshake record holding a ClientHello.
    if (tls && data[0] == 0x16 && data[5] == 0x01)
        return judge_hello(msg, p, s, data, want, cgroup_id);
    __u16 server_port = bpf_ntohl(msg->remote_port);
    if (server_port == 53 && (p->dns_count || p->dns_allowlist)) {
        // DNS over TCP: a two-byte length, then the query as over UDP.
        __u32 n = want > L7_NAME_LEN ? L7_NAME_LEN - 1 : want - 2;
        barrier_var(n);
        n &= L7_NAME_LEN - 1;
        if (n <= DNS_HEADER || bpf_probe_read_kernel(s->raw, n, data + 2) != 0)
            return SK_PASS;
        s->raw[AT(n)] = 0;
        __u32 rule = L7_NO_RULE, query_len = 0;
        __u32 verdict = judge_query(p, s, &rule, &query_len);
        if (!verdict)
            return SK_PASS;
        struct ends ends = {};
        msg_ends(msg, &ends, server_port);
        report(L7_DNS_TCP, verdict, rule, cgroup_id, &ends, s->raw, query_len < L7_NAME_LEN ? query_len : L7_NAME_LEN);
        return verdict == L7_DENIED ? SK_DROP : SK_PASS;
    }
    if (!p->http_count && !p->http_allowlist)
        return SK_PASS;
    __u32 want_head = want; // what the Host header is looked for in
    if (want > L7_TEXT_LEN)
        want = L7_TEXT_LEN;
    if (data + L7_TEXT_LEN <= end) {
        __builtin_memcpy(s->text, data, L7_TEXT_LEN);
    } else {
        __builtin_memset(s->text, 0, L7_TEXT_LEN);
        if (bpf_probe_read_kernel(s->text, want & (L7_TEXT_LEN - 1), data) != 0)
            return SK_PASS;
    }
    __u32 head = 0;
    if (p->http_hosts) {
        __u32 n = want_head > L7_TLS_LEN - 1 ? L7_TLS_LEN - 1 : want_head;
        barrier_var(n);
        n &= L7_TLS_LEN - 1;
        if (n >= 16 && bpf_probe_read_kernel(s->hello, n, data) == 0)
            head = n;
    }
    __u16 port = bpf_ntohl(msg->remote_port);
    __u32 rule = L7_NO_RULE, shown = 0;
    if (!http_refused(p->http, p->http_count, p->http_allowlist, p->http_hosts, s, want, head, port, &rule, &shown))
        return SK_PASS;
    __u32 verdict = verdict_of(p);
    struct ends ends = {};
    msg_ends(msg, &ends, port);
    report(L7_HTTP, verdict, rule, cgroup_id, &ends, s->text, shown < L7_TEXT_LEN ? shown : L7_TEXT_LEN);
    return verdict == L7_DENIED ? SK_DROP : SK_PASS;
}

// Ends of an sk_skb's socket: the container's (local) and its peer's.
static __always_inline void skb_ends(struct __sk_buff *skb, struct ends *ends)
{
    __u32 family = skb->family, local_port = skb->local_port;
    __u32 local4 = skb->local_ip4, remote4 = skb->remote_ip4;
    __u32 local6[4] = { MSG_WORD(skb, local_ip6[0]), MSG_WORD(skb, local_ip6[1]), MSG_WORD(skb, local_ip6[2]),
                        MSG_WORD(skb, local_ip6[3]) };
    __u32 remote6[4] = { MSG_WORD(skb, remote_ip6[0]), MSG_WORD(skb, remote_ip6[1]), MSG_WORD(skb, remote_ip6[2]),
                         MSG_WORD(skb, remote_ip6[3]) };
    ends->family = family;
    ends->local_port = local_port;
    ends->remote_port = bpf_ntohl(skb->remote_port);
    if (family == AF_INET) {
        __builtin_memcpy(ends->local, &local4, 4);
        __builtin_memcpy(ends->remote, &remote4, 4);
    } else {
        __builtin_memcpy(ends->local, local6, 16);
        __builtin_memcpy(ends->remote, remote6, 16);
    }
}

// Requests a container receives: each segment arriving on an accepted socket of a container
// with inbound HTTP rules that starts a request is judged on the container's own port. A refused
// one is dropped before the server reads it; the agent then destroys the connection, so the
// client gets a reset at once.
SEC("sk_skb/stream_verdict")
int l7_http_in(struct __sk_buff *skb)
{
    __u64 cookie = bpf_get_socket_cookie(skb);
    __u64 *owner = bpf_map_lookup_elem(&l7_in_cookies, &cookie);
    if (!owner)
        return SK_PASS;
    __u64 cgroup_id = *owner;
    struct l7_policy *p = bpf_map_lookup_elem(&l7_policies, &cgroup_id);
    if (!p || p->mode == MODE_NONE || (!p->http_in_count && !p->http_in_allowlist))
        return SK_PASS;
    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
    if (!s)
        return SK_PASS;
    __u32 size = skb->len;
    __u32 n = L7_TEXT_LEN;
    __builtin_memset(s->text, 0, L7_TEXT_LEN);
    if (size >= L7_TEXT_LEN) {
        if (bpf_skb_load_bytes(skb, 0, s->text, L7_TEXT_LEN) != 0)
            return SK_PASS;
    } else {
        // (Masked after a barrier, then bounded below on the same register, for the verifier.)
        n = size;
        barrier_var(n);
        n &= L7_TEXT_LEN - 1;
        if (n < 4)
            return SK_PASS;
        if (bpf_skb_load_bytes(skb, 0, s->text, n) != 0)
            return SK_PASS;
    }
    __u32 head = 0;
    if (p->http_in_hosts) {
        __u32 m = size > L7_TLS_LEN - 1 ? L7_TLS_LEN - 1 : size;
        barrier_var(m);
        m &= L7_TLS_LEN - 1;
        if (m >= 16 && bpf_skb_load_bytes(skb, 0, s->hello, m) == 0)
            head = m;
    }
    __u16 port = skb->local_port;
    __u32 rule = L7_NO_RULE, shown = 0;
    if (!http_refused(p->http_in, p->http_in_count, p->http_in_allowlist, p->http_in_hosts, s, n, head, port, &rule,
                      &shown))
        return SK_PASS;
    __u32 verdict = verdict_of(p);
    struct ends ends = {};
    skb_ends(skb, &ends);
    report(L7_HTTP_IN, verdict, rule, cgroup_id, &ends, s->text, shown < L7_TEXT_LEN ? shown : L7_TEXT_LEN);
    return verdict == L7_DENIED ? SK_DROP : SK_PASS;
}

static __always_inline int dns_rule_matches(const struct dns_rule *r, const struct scratch *s, __u32 len)
{
    if (r->len > len || (!r->suffix && r->len != len))
        return 0;
    __u32 at = r->len;
    return at < L7_NAME_LEN && s->hashes[AT(at)] == r->hash;
}

static __always_inline int dns_name_is(const struct dns_rule *r, struct scratch *s, __u32 len)
{
    __u32 n = r->len;
    if (n > len || n >= L7_NAME_LEN)
        return 0;
    struct walk w = { .s = s, .from = len - n, .want = r->name };
    bpf_loop(n, same_byte, &w, 0);
    return !w.bad;
}

// A name (DNS or TLS server name, lower case in s->text, its suffix hashes in s->hashes) judged
// against name rules (L7_MAX_DNS of them; L7_MAX_TLS is the same): 1 when refused, with the deny
// rule in *rule_out (or L7_NO_RULE: the allowlist left it out). The empty name matches no rule.
static __always_inline int name_refused(const struct dns_rule *rules, __u32 count, __u32 allowlist, struct scratch *s,
                                        __u32 len, __u32 *rule_out)
{
    __u32 allowed_by = L7_NO_RULE;
    for (__u32 i = 0; i < L7_MAX_DNS; i++) {
        if (i >= count || len == 0)
            break;
        if (!dns_rule_matches(&rules[i], s, len))
            continue;
        if (rules[i].deny) {
            *rule_out = i;
            return 1;
        }
        if (allowed_by == L7_NO_RULE)
            allowed_by = i;
    }
    if (!allowlist)
        return 0;
    return !(allowed_by < L7_MAX_DNS && dns_name_is(&rules[allowed_by], s, len));
}

// The first question of the DNS query in s->raw (header first) judged against the DNS rules: 0
// lets it go, else the verdict to report (with the rule and the query's length).
static __always_inline __u32 judge_query(struct l7_policy *p, struct scratch *s, __u32 *rule_out, __u32 *query_len)
{
    struct walk w = { .s = s };
    bpf_loop(L7_NAME_LEN - DNS_HEADER, name_byte, &w, 0);
    __u32 len = w.out;
    if (w.bad || len == 0 || len >= L7_NAME_LEN)
        return 0;
    // Header, name (its zero byte included), type and class.
    *query_len = DNS_HEADER + w.from + 1 + 4;
    // Hashes of the name's last 1, 2, … bytes, for suffix rules.
    struct walk suffix = { .s = s, .len = len, .hash = FNV_BASIS };
    s->hashes[0] = FNV_BASIS;
    bpf_loop(len, suffix_byte, &suffix, 0);
    if (!name_refused(p->dns, p->dns_count, p->dns_allowlist, s, len, rule_out))
        return 0;
    return verdict_of(p);
}

SEC("cgroup_skb/egress")
int l7_dns(struct __sk_buff *skb)
{
    __u64 cgroup_id = bpf_skb_cgroup_id(skb);
    struct l7_policy *p = bpf_map_lookup_elem(&l7_policies, &cgroup_id);
    if (!p || p->mode == MODE_NONE || (!p->dns_count && !p->dns_allowlist))
        return 1;
    __u32 offset;
    struct ends ends = {};
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr ip;
        if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) != 0 || ip.protocol != IPPROTO_UDP)
            return 1;
        offset = ip.ihl * 4;
        ends.family = AF_INET;
        __builtin_memcpy(ends.local, &ip.saddr, 4);
        __builtin_memcpy(ends.remote, &ip.daddr, 4);
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr ip6;
        if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) != 0 || ip6.nexthdr != IPPROTO_UDP)
            return 1;
        offset = sizeof(ip6);
        ends.family = AF_INET6;
        __builtin_memcpy(ends.local, &ip6.saddr, 16);
        __builtin_memcpy(ends.remote, &ip6.daddr, 16);
    } else {
        return 1;
    }
    struct udphdr udp;
    if (bpf_skb_load_bytes(skb, offset, &udp, sizeof(udp)) != 0 || udp.dest != bpf_htons(53))
        return 1;
    ends.local_port = bpf_ntohs(udp.source);
    ends.remote_port = 53;
    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&l7_scratch, &zero);
    if (!s)
        return 1;
    // The header and the first question, as sent.
    __u32 at = offset + sizeof(udp);
    if (bpf_skb_load_bytes(skb, at, s->raw, L7_NAME_LEN) != 0) {
        // A short datagram: as much as there is.
        __u32 have = skb->len > at ? skb->len - at : 0;
        __u32 n = have & (L7_NAME_LEN - 1);
        if (n <= DNS_HEADER || have >= L7_NAME_LEN || bpf_skb_load_bytes(skb, at, s->raw, n) != 0)
            return 1;
        s->raw[AT(n)] = 0;
    }
    __u32 rule = L7_NO_RULE, query_len = 0;
    __u32 verdict = judge_query(p, s, &rule, &query_len);
    if (!verdict)
        return 1;
    report(L7_DNS, verdict, rule, cgroup_id, &ends, s->raw, query_len < L7_NAME_LEN ? query_len : L7_NAME_LEN);
    return verdict == L7_DENIED ? 0 : 1;
}
