// The first bytes of each TCP connection, in each direction, as the sockets of containers send
// and receive them: cgroup_skb egress and ingress programs on the unified cgroup root copy the
// first payload a socket sends and the first it receives (at most FLOW_MAX - 1 bytes each) to a
// ring buffer, once per socket and direction (an LRU map of socket cookies remembers which went
// out). A client's HTTP/2 preface is often alone in its segment, its first request's headers in
// the next: a socket whose first payload starts with the preface has its next H2_FOLLOW_UPS
// payloads copied too, numbered by `part`. User space says which protocol they speak. A sockops
// program asks for each established socket's state changes and, when one whose first bytes
// went out closes, sends the bytes it sent (acknowledged) and received (a `flow_end`, told apart
// from first bytes by its size). The programs never change a verdict.

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define FLOW_MAX 512
#define IP_OFFSET_MASK 0x1fff
#define H2_FOLLOW_UPS 2

struct flow_event {
    __u64 cgroup_id;
    __u64 cookie;
    __u16 family;    // 2 or 10
    __u16 part;      // 0 for the first payload, then 1.. H2_FOLLOW_UPS
    __u32 direction; // 0 sent, 1 received
    __u32 len;
    __u16 local_port;
    __u16 remote_port;
    __u8 local[16];
    __u8 remote[16];
    __u8 data[FLOW_MAX];
};

struct flow_end {
    __u64 cookie;
    __u64 sent;
    __u64 received;
};

struct flow_key {
    __u64 cookie;
    __u32 direction;
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1024 * 1024);
} flow_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct flow_key);
    // How many more payloads to copy, plus one: 1 once done.
    __type(value, __u8);
} flow_seen SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} flow_drops SEC(".maps");

static __always_inline void count_drop(void)
{
    __u32 zero = 0;
    __u64 *drops = bpf_map_lookup_elem(&flow_drops, &zero);
    if (drops)
        *drops += 1;
}

static __always_inline int first_bytes(struct __sk_buff *skb, __u32 direction)
{
    __u32 family, offset;
    __u8 src[16] = {}, dst[16] = {};
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr ip;
        if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) != 0)
            return 1;
        if (ip.protocol != IPPROTO_TCP || (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK) != 0)
            return 1;
        family = 2;
        offset = ip.ihl * 4;
        __builtin_memcpy(src, &ip.saddr, 4);
        __builtin_memcpy(dst, &ip.daddr, 4);
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr ip6;
        if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) != 0)
            return 1;
        if (ip6.nexthdr != IPPROTO_TCP)
            return 1;
        family = 10;
        offset = sizeof(ip6);
        __builtin_memcpy(src, &ip6.saddr, 16);
        __builtin_memcpy(dst, &ip6.daddr, 16);
    } else {
        return 1;
    }
    struct tcphdr tcp;
    if (bpf_skb_load_bytes(skb, offset, &tcp, sizeof(tcp)) != 0)
        return 1;
    __u32 start = offset + tcp.doff * 4;
    if (skb->len <= start)
        return 1;
    struct flow_key key = { .cookie = bpf_get_socket_cookie(skb), .direction = direction, .pad = 0 };
    __u16 part = 0;
    __u8 *left = bpf_map_lookup_elem(&flow_seen, &key);
    if (left) {
        if (*left <= 1)
            return 1;
        part = H2_FOLLOW_UPS + 2 - *left;
        *left -= 1;
    } else {
        __u8 follow = 1;
        __u32 magic = 0;
        // "PRI " in network order: the start of the HTTP/2 client preface.
        if (bpf_skb_load_bytes(skb, start, &magic, 4) == 0 && magic == bpf_htonl(0x50524920))
            follow = H2_FOLLOW_UPS + 1;
        bpf_map_update_elem(&flow_seen, &key, &follow, BPF_ANY);
    }
    __u32 len = skb->len - start;
    if (len > FLOW_MAX - 1)
        len = FLOW_MAX - 1;
    struct flow_event *e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 1;
    }
    e->cgroup_id = bpf_skb_cgroup_id(skb);
    e->cookie = key.cookie;
    e->family = family;
    e->part = part;
    e->direction = direction;
    // Sent: this end is the source; received: the destination.
    if (direction == 0) {
        __builtin_memcpy(e->local, src, 16);
        __builtin_memcpy(e->remote, dst, 16);
        e->local_port = bpf_ntohs(tcp.source);
        e->remote_port = bpf_ntohs(tcp.dest);
    } else {
        __builtin_memcpy(e->local, dst, 16);
        __builtin_memcpy(e->remote, src, 16);
        e->local_port = bpf_ntohs(tcp.dest);
        e->remote_port = bpf_ntohs(tcp.source);
    }
    // Masked in asm: the compiler drops a mask it can prove changes nothing, and the verifier
    // needs it to see the length fits.
    __u64 size = len;
    asm volatile("%[size] &= %[mask]" : [size] "+r"(size) : [mask] "i"(FLOW_MAX - 1));
    e->len = size;
    if (size < 1 || bpf_skb_load_bytes(skb, start, e->data, size) != 0) {
        bpf_ringbuf_discard(e, 0);
        return 1;
    }
    bpf_ringbuf_submit(e, 0);
    return 1;
}

SEC("cgroup_skb/egress")
int flow_egress(struct __sk_buff *skb)
{
    return first_bytes(skb, 0);
}

SEC("cgroup_skb/ingress")
int flow_ingress(struct __sk_buff *skb)
{
    return first_bytes(skb, 1);
}

SEC("sockops")
int flow_sockops(struct bpf_sock_ops *skops)
{
    if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
        // Other programs' flags are kept: the call sets them all.
        bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
        return 1;
    }
    if (skops->op != BPF_SOCK_OPS_STATE_CB || skops->args[1] != BPF_TCP_CLOSE)
        return 1;
    struct flow_key sent = { .cookie = bpf_get_socket_cookie(skops), .direction = 0, .pad = 0 };
    struct flow_key received = { .cookie = sent.cookie, .direction = 1, .pad = 0 };
    int seen = bpf_map_delete_elem(&flow_seen, &sent) == 0;
    seen |= bpf_map_delete_elem(&flow_seen, &received) == 0;
    if (!seen)
        return 1;
    struct flow_end *e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 1;
    }
    e->cookie = sent.cookie;
    e->sent = skops->bytes_acked;
    e->received = skops->bytes_received;
    bpf_ringbuf_submit(e, 0);
    return 1;
}
