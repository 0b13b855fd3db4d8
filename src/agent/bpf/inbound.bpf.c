// SPDX-License-Identifier: GPL-2.0
// Inbound refusal for one container's network namespace (src/agent/enforce/inbound.rs loads one
// copy per namespace and attaches it there): an sk_lookup program runs as the kernel looks for
// the listening socket of each new inbound TCP connection and each UDP datagram, and refuses
// those the container's accept rules (protect mode) do not list. A refused TCP connection is
// answered with a reset (the client's connect fails at once: connection refused), a refused
// datagram with ICMP port unreachable. Each refusal is an event.

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "net.h"
#include "policy.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct net_policy);
} inbound_policy SEC(".maps");

struct inbound_event {
    __u32 family;
    __u32 protocol;
    __u16 local_port;
    __u16 remote_port;
    __u32 pad;
    __u8 local[16];
    __u8 remote[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 18);
} inbound_events SEC(".maps");

// One 32-bit context field at its constant offset (clang would otherwise compute a context
// pointer the verifier refuses).
#define CTX_WORD(ctx, field)                                                                       \
    ({                                                                                             \
        __u32 _word;                                                                               \
        asm volatile("%0 = *(u32 *)(%1 + %2)"                                                      \
                     : "=r"(_word)                                                                 \
                     : "r"(ctx), "i"(__builtin_offsetof(struct bpf_sk_lookup, field)));            \
        _word;                                                                                     \
    })

SEC("sk_lookup")
int inbound(struct bpf_sk_lookup *ctx)
{
    __u32 zero = 0;
    struct net_policy *p = bpf_map_lookup_elem(&inbound_policy, &zero);
    if (!p || p->mode != MODE_PROTECT || !p->has_allow)
        return SK_PASS;
    __u32 family = ctx->family, protocol = ctx->protocol, port = ctx->local_port;
    __u32 remote[4] = { CTX_WORD(ctx, remote_ip6[0]), CTX_WORD(ctx, remote_ip6[1]), CTX_WORD(ctx, remote_ip6[2]),
                        CTX_WORD(ctx, remote_ip6[3]) };
    __u32 local[4] = { CTX_WORD(ctx, local_ip6[0]), CTX_WORD(ctx, local_ip6[1]), CTX_WORD(ctx, local_ip6[2]),
                       CTX_WORD(ctx, local_ip6[3]) };
    if (family == AF_INET) {
        remote[0] = CTX_WORD(ctx, remote_ip4);
        local[0] = CTX_WORD(ctx, local_ip4);
        remote[1] = remote[2] = remote[3] = 0;
        local[1] = local[2] = local[3] = 0;
    }
    for (__u32 i = 0; i < MAX_NET_RULES; i++) {
        if (i >= p->count)
            break;
        if (!p->rules[i].deny && net_rule_matches(&p->rules[i], family, remote, (__u16)port, protocol))
            return SK_PASS;
    }
    struct inbound_event *e = bpf_ringbuf_reserve(&inbound_events, sizeof(*e), 0);
    if (e) {
        e->family = family;
        e->protocol = protocol;
        e->local_port = (__u16)port;
        e->remote_port = bpf_ntohs((__u16)CTX_WORD(ctx, remote_port));
        e->pad = 0;
        __builtin_memcpy(e->local, local, 16);
        __builtin_memcpy(e->remote, remote, 16);
        bpf_ringbuf_submit(e, 0);
    }
    return SK_DROP;
}
