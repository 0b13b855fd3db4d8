// SPDX-License-Identifier: GPL-2.0
// The wire layout of network events, shared with src/agent/net.rs. Change both together.
#ifndef PICKET_NET_H
#define PICKET_NET_H

#define NET_CONNECT 1
#define NET_ACCEPT 2
// An unconnected send (sendmsg with an address) a policy or the guard objected to; allowed
// sends are not reported (there is one per datagram).
#define NET_SEND 3

// What the container's network policy said (the `policy` field).
#define NET_POLICY_NONE 0
#define NET_POLICY_RECORDED 1
#define NET_POLICY_ALERTED 2
#define NET_POLICY_DENIED 3
// `policy_rule` when no rule matched (an allowlist left the destination out).
#define NET_NO_RULE 0xffffffff
// `policy_rule` of what a quarantined container tried (a response action cut its network).
#define NET_QUARANTINE 0xfffffffe

#define MAX_NET_RULES 64
#define MAX_GUARD_RULES 32

// One destination rule: address/prefix (network byte order, masked), protocol, port range.
struct net_rule {
    __u32 net[4];
    __u32 mask[4];
    __u32 family;   // 2, 10, or 0: any address
    __u32 protocol; // 6, 17, or 0: both
    __u16 port_lo;
    __u16 port_hi;
    __u32 deny;     // 1: a deny rule, 0: an allow rule
};

// One cgroup's network policy under one generation (see enforce.bpf.c for generations).
struct net_policy {
    __u32 mode;      // MODE_* of policy.h
    __u32 has_allow; // 1: destinations no allow rule matches are violations
    __u32 count;
    __u32 pad;
    struct net_rule rules[MAX_NET_RULES];
};

// Whether a rule covers an address (network-order words), port and protocol. (AF_INET: 2.)
static __always_inline int net_rule_matches(const struct net_rule *r, __u32 family, const __u32 *addr, __u16 port,
                                            __u32 protocol)
{
    if (r->protocol && r->protocol != protocol)
        return 0;
    if (port < r->port_lo || port > r->port_hi)
        return 0;
    if (r->family == 0)
        return 1;
    if (r->family != family)
        return 0;
    if ((addr[0] & r->mask[0]) != r->net[0])
        return 0;
    if (family == 2)
        return 1;
    return (addr[1] & r->mask[1]) == r->net[1] && (addr[2] & r->mask[2]) == r->net[2] &&
           (addr[3] & r->mask[3]) == r->net[3];
}

struct net_event {
    __u32 kind;
    __u32 pid;
    __u32 uid;
    __u32 family;
    __u32 protocol;
    __u16 local_port;
    __u16 remote_port;
    __u64 cgroup_id;
    __u64 timestamp_ns;
    __u8 local_addr[16];
    __u8 remote_addr[16];
    char comm[16];
    __u32 policy;      // NET_POLICY_*
    __u32 policy_rule; // index into the policy's rules, or NET_NO_RULE
    __u32 guard;       // 0, or 1 + the index of the guard rule that denied it
    __u32 pad;
};

#endif
