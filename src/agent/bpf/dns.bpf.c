// DNS answers as containers receive them: a cgroup_skb ingress program on the unified cgroup
// root copies the payload (at most DNS_MAX - 1 bytes) of every UDP datagram from port 53 to a ring
// buffer, with the receiving socket's cgroup. Parsing happens in user space (bounds-checked);
// the program never changes a verdict (it always passes the packet).

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP 17
#define DNS_PORT 53
#define DNS_MAX 512
#define DNS_HEADER 12
#define IP_OFFSET_MASK 0x1fff

struct dns_event {
    __u64 cgroup_id;
    __u32 family; // 2 or 10
    __u32 len;    // bytes of data (the datagram's payload, cut at DNS_MAX - 1)
    __u8 server[16];
    __u8 data[DNS_MAX];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} dns_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} dns_drops SEC(".maps");

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
    __u32 family, offset;
    __u8 server[16] = {};
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr ip;
        if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) != 0)
            return 1;
        // A later fragment has no UDP header to read.
        if (ip.protocol != IPPROTO_UDP || (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK) != 0)
            return 1;
        family = 2;
        offset = ip.ihl * 4;
        __builtin_memcpy(server, &ip.saddr, 4);
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr ip6;
        if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) != 0)
            return 1;
        if (ip6.nexthdr != IPPROTO_UDP)
            return 1;
        family = 10;
        offset = sizeof(ip6);
        __builtin_memcpy(server, &ip6.saddr, 16);
    } else {
        return 1;
    }
    struct udphdr udp;
    if (bpf_skb_load_bytes(skb, offset, &udp, sizeof(udp)) != 0 || udp.source != bpf_htons(DNS_PORT))
        return 1;
    __u32 start = offset + sizeof(udp);
    if (skb->len <= start + DNS_HEADER)
        return 1;
    __u32 len = skb->len - start;
    if (len > DNS_MAX - 1)
        len = DNS_MAX - 1;
    struct dns_event *e = bpf_ringbuf_reserve(&dns_events, sizeof(*e), 0);
    if (!e) {
        __u32 zero = 0;
        __u64 *drops = bpf_map_lookup_elem(&dns_drops, &zero);
        if (drops)
            *drops += 1;
        return 1;
    }
    e->cgroup_id = bpf_skb_cgroup_id(skb);
    e->family = family;
    __builtin_memcpy(e->server, server, 16);
    // The mask (DNS_MAX is a power of two) is what lets the verifier see the length fits; done
    // in asm, as the compiler drops a mask it can prove changes nothing.
    __u64 size = len;
    asm volatile("%[size] &= %[mask]" : [size] "+r"(size) : [mask] "i"(DNS_MAX - 1));
    len = size;
    e->len = len;
    if (size < DNS_HEADER || bpf_skb_load_bytes(skb, start, e->data, size) != 0) {
        bpf_ringbuf_discard(e, 0);
        return 1;
    }
    bpf_ringbuf_submit(e, 0);
    return 1;
}
