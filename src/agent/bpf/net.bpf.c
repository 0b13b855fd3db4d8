// SPDX-License-Identifier: GPL-2.0
// Network events and network control for picket's node agent: outgoing connects and
// addressed sends (cgroup sock_addr hooks on the unified cgroup root, so every container below
// it is covered) and accepted connections (accept and accept4 as they return, in the accepting
// process's context). The connect and send hooks also decide: a container's network policy
// (allow/deny rules, under a generation flipped atomically like enforce.bpf.c's) and the guard
// (the deniable detection rules protect mode stops, per cgroup) may refuse them with EPERM.
// Each event says what was decided, so one record is both what happened and the verdict.

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "net.h"
#include "policy.h"

#define AF_INET 2
#define AF_INET6 10

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
} net_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} net_drops SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} net_active SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct policy_key);
    __type(value, struct net_policy);
} net_policies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_GUARD_RULES);
    __type(key, __u32);
    __type(value, struct net_rule);
} guard_rules SEC(".maps");

// cgroup id -> bit i set: guard rule i applies to it.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u32);
} guard_cgroups SEC(".maps");

// cgroup id -> 1: the container is quarantined (a response action): every connect and send
// fails with EPERM and every packet to or from its sockets is dropped, until it is released.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, __u32);
} quarantined SEC(".maps");

struct verdict {
    __u32 policy;
    __u32 policy_rule;
    __u32 guard;
};

static __always_inline void decide(struct verdict *v, __u64 cgroup_id, __u32 family, const __u32 *addr, __u16 port,
                                   __u32 protocol)
{
    __u32 zero = 0;
    v->policy = NET_POLICY_NONE;
    v->policy_rule = NET_NO_RULE;
    v->guard = 0;
    if (bpf_map_lookup_elem(&quarantined, &cgroup_id)) {
        v->policy = NET_POLICY_DENIED;
        v->policy_rule = NET_QUARANTINE;
        return;
    }
    __u32 *generation = bpf_map_lookup_elem(&net_active, &zero);
    if (generation) {
        struct policy_key key = { .generation = *generation, .pad = 0, .cgroup_id = cgroup_id };
        struct net_policy *p = bpf_map_lookup_elem(&net_policies, &key);
        if (p) {
            int allowed = !p->has_allow, denied = 0;
            for (__u32 i = 0; i < MAX_NET_RULES; i++) {
                if (i >= p->count)
                    break;
                if (!net_rule_matches(&p->rules[i], family, addr, port, protocol))
                    continue;
                if (p->rules[i].deny) {
                    denied = 1;
                    v->policy_rule = i;
                    break;
                }
                allowed = 1;
            }
            if (denied || !allowed) {
                if (p->mode == MODE_PROTECT)
                    v->policy = NET_POLICY_DENIED;
                else if (p->mode == MODE_MONITOR)
                    v->policy = NET_POLICY_ALERTED;
                else
                    v->policy = NET_POLICY_RECORDED;
            }
        }
    }
    __u32 *mask = bpf_map_lookup_elem(&guard_cgroups, &cgroup_id);
    if (!mask || !*mask)
        return;
    __u32 bits = *mask;
    for (__u32 i = 0; i < MAX_GUARD_RULES; i++) {
        if (!(bits & (1u << i)))
            continue;
        struct net_rule *r = bpf_map_lookup_elem(&guard_rules, &i);
        if (r && net_rule_matches(r, family, addr, port, protocol)) {
            v->guard = i + 1;
            return;
        }
    }
}

static __always_inline struct net_event *reserve(__u32 kind)
{
    struct net_event *e = bpf_ringbuf_reserve(&net_events, sizeof(*e), 0);
    if (!e) {
        __u32 zero = 0;
        __u64 *dropped = bpf_map_lookup_elem(&net_drops, &zero);
        if (dropped)
            *dropped += 1;
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->uid = bpf_get_current_uid_gid() & 0xffffffff;
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->timestamp_ns = bpf_ktime_get_boot_ns();
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    return e;
}

// ::ffff:a.b.c.d is an IPv4 destination: v4 rules see it as one.
static __always_inline int v4_mapped(const __u32 *words)
{
    return words[0] == 0 && words[1] == 0 && words[2] == bpf_htonl(0xffff);
}

static __always_inline int handle(struct bpf_sock_addr *ctx, __u32 kind, __u32 family, __u32 *words)
{
    __u64 cgroup_id = bpf_get_current_cgroup_id();
    __u16 port = bpf_ntohs(ctx->user_port);
    struct verdict v;
    if (family == AF_INET6 && v4_mapped(words)) {
        __u32 v4[4] = { words[3], 0, 0, 0 };
        decide(&v, cgroup_id, AF_INET, v4, port, ctx->protocol);
    } else {
        decide(&v, cgroup_id, family, words, port, ctx->protocol);
    }
    int refuse = v.policy == NET_POLICY_DENIED || v.guard;
    if (kind == NET_SEND && v.policy == NET_POLICY_NONE && !v.guard)
        return 1;
    struct net_event *e = reserve(kind);
    if (!e)
        return refuse ? 0 : 1;
    e->family = family;
    e->protocol = ctx->protocol;
    e->remote_port = port;
    if (family == AF_INET)
        __builtin_memcpy(e->remote_addr, words, 4);
    else
        __builtin_memcpy(e->remote_addr, words, 16);
    e->policy = v.policy;
    e->policy_rule = v.policy_rule;
    e->guard = v.guard;
    bpf_ringbuf_submit(e, 0);
    return refuse ? 0 : 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
    __u32 words[4] = { ctx->user_ip4, 0, 0, 0 };
    return handle(ctx, NET_CONNECT, AF_INET, words);
}

// One load per word: the verifier refuses context reads at a computed offset.
SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
    __u32 words[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
    return handle(ctx, NET_CONNECT, AF_INET6, words);
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
    __u32 words[4] = { ctx->user_ip4, 0, 0, 0 };
    return handle(ctx, NET_SEND, AF_INET, words);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
    __u32 words[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
    return handle(ctx, NET_SEND, AF_INET6, words);
}

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2

// Every packet a socket in a cgroup sends, as it leaves: TCP and UDP sockets were judged at
// their connect and each addressed send, but raw and ICMP sockets (CAP_NET_RAW, which
// containers have by default) pass neither hook, so their packets are judged here by the same
// rules; a refused one never leaves and the send fails with EPERM. (Packet sockets bypass the
// IP stack and this hook too.)
SEC("cgroup_skb/egress")
int raw_egress(struct __sk_buff *skb)
{
    // A quarantined container's packets never leave, whatever socket sends them (connections
    // made before the quarantine included); the connect and send hooks report its attempts.
    __u64 sender = bpf_skb_cgroup_id(skb);
    if (bpf_map_lookup_elem(&quarantined, &sender))
        return 0;
    struct bpf_sock *sk = skb->sk;
    if (!sk)
        return 1;
    sk = bpf_sk_fullsock(sk);
    if (!sk)
        return 1;
    if ((sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP) ||
        (sk->type == SOCK_DGRAM && sk->protocol == IPPROTO_UDP))
        return 1;
    __u32 family, protocol, offset;
    __u32 words[4] = {};
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr ip;
        if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) != 0)
            return 1;
        family = AF_INET;
        protocol = ip.protocol;
        words[0] = ip.daddr;
        offset = ip.ihl * 4;
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr ip6;
        if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) != 0)
            return 1;
        family = AF_INET6;
        protocol = ip6.nexthdr;
        __builtin_memcpy(words, &ip6.daddr, 16);
        offset = sizeof(ip6);
    } else {
        return 1;
    }
    __u16 port = 0;
    if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) {
        __u16 dest = 0;
        if (bpf_skb_load_bytes(skb, offset + 2, &dest, sizeof(dest)) == 0)
            port = bpf_ntohs(dest);
    }
    __u64 cgroup_id = bpf_skb_cgroup_id(skb);
    struct verdict v;
    decide(&v, cgroup_id, family, words, port, protocol);
    if (v.policy == NET_POLICY_NONE && !v.guard)
        return 1;
    int refuse = v.policy == NET_POLICY_DENIED || v.guard;
    struct net_event *e = reserve(NET_SEND);
    if (!e)
        return refuse ? 0 : 1;
    e->cgroup_id = cgroup_id;
    e->family = family;
    e->protocol = protocol;
    e->remote_port = port;
    if (family == AF_INET)
        __builtin_memcpy(e->remote_addr, words, 4);
    else
        __builtin_memcpy(e->remote_addr, words, 16);
    e->policy = v.policy;
    e->policy_rule = v.policy_rule;
    e->guard = v.guard;
    bpf_ringbuf_submit(e, 0);
    return refuse ? 0 : 1;
}

// Nothing reaches a quarantined container's sockets: inbound connections and answers to what
// it had sent are dropped before they are queued.
SEC("cgroup_skb/ingress")
int quarantine_ingress(struct __sk_buff *skb)
{
    __u64 receiver = bpf_skb_cgroup_id(skb);
    return bpf_map_lookup_elem(&quarantined, &receiver) ? 0 : 1;
}

// accept(2) and accept4(2) as they return, in the accepting process: the new fd's socket gives
// both ends. (No kprobes here: some kernels, such as these machines', have no kprobe PMU.)
#if defined(__TARGET_ARCH_x86)
#define SYS_ACCEPT 43
#define SYS_ACCEPT4 288
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define SYS_ACCEPT 202
#define SYS_ACCEPT4 242
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, syscallno)
#endif

SEC("tp_btf/sys_exit")
int BPF_PROG(accepted, struct pt_regs *regs, long ret)
{
    long nr = SYSCALL_NR(regs);
    if ((nr != SYS_ACCEPT && nr != SYS_ACCEPT4) || ret < 0)
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
    struct file *file = 0;
    if (bpf_core_read(&file, sizeof(file), &fds[ret & 0xffff]) != 0 || !file)
        return 0;
    struct socket *sock = (struct socket *)BPF_CORE_READ(file, private_data);
    struct sock *sk = BPF_CORE_READ(sock, sk);
    if (!sk)
        return 0;
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (family != AF_INET && family != AF_INET6)
        return 0;
    struct net_event *e = reserve(NET_ACCEPT);
    if (!e)
        return 0;
    e->family = family;
    e->protocol = BPF_CORE_READ(sk, sk_protocol);
    e->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
    e->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    if (family == AF_INET) {
        __u32 remote = BPF_CORE_READ(sk, __sk_common.skc_daddr);
        __u32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        __builtin_memcpy(e->remote_addr, &remote, 4);
        __builtin_memcpy(e->local_addr, &local, 4);
    } else {
        BPF_CORE_READ_INTO(&e->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
        BPF_CORE_READ_INTO(&e->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}
