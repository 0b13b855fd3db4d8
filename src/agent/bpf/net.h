// SPDX-License-Identifier: GPL-2.0
// The wire layout of network events, shared with src/agent/net.rs. Change both together.
#ifndef PICKET_NET_H
#define PICKET_NET_H

#define NET_CONNECT 1
#define NET_ACCEPT 2

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
};

#endif
