// SPDX-License-Identifier: GPL-2.0
// Network events for picket's node agent: outgoing connects (cgroup sock_addr hooks on the
// unified cgroup root, so every container below it is covered; they always allow) and accepted
// connections (accept and accept4 as they return, in the accepting process's context).

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "net.h"

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

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
    struct net_event *e = reserve(NET_CONNECT);
    if (!e)
        return 1;
    e->family = AF_INET;
    e->protocol = ctx->protocol;
    e->remote_port = bpf_ntohs(ctx->user_port);
    __u32 ip = ctx->user_ip4;
    __builtin_memcpy(e->remote_addr, &ip, 4);
    bpf_ringbuf_submit(e, 0);
    return 1;
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
    struct net_event *e = reserve(NET_CONNECT);
    if (!e)
        return 1;
    e->family = AF_INET6;
    e->protocol = ctx->protocol;
    e->remote_port = bpf_ntohs(ctx->user_port);
    // One load per word: the verifier refuses context reads at a computed offset.
    __u32 words[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
    __builtin_memcpy(e->remote_addr, words, 16);
    bpf_ringbuf_submit(e, 0);
    return 1;
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
