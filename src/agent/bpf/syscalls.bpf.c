// SPDX-License-Identifier: GPL-2.0
// Which system calls each cgroup's workload makes, for seccomp profiles learned from what
// containers do: one bit per syscall number in a set per cgroup, set at syscall entry. Counted in
// the kernel, nothing crosses to userspace per call; userspace reads the sets now and then.
//
// Only what a profile must allow: a container's runtime makes its own calls in the container's
// cgroup before the workload runs (mount, pivot_root, sethostname …), which the profile must not
// allow, but the calls it makes after installing the seccomp filter (dropping privileges, closing
// fds, the exec) run under the profile too. So a cgroup is counted from the moment a task that
// is inside its root file system already (its root is not a mount namespace's `/`: after
// pivot_root, in a mount namespace other than the host's) installs a seccomp filter (the
// runtime, when it applies a profile: the default) or execs (the entrypoint, with no profile;
// runtimes re-execute themselves before pivot_root); that exec's own call is carried over.
// Cgroups where neither happened have no set, so the common cost is one hash lookup.

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "syscalls.h"

char LICENSE[] SEC("license") = "GPL";

// The host's mount namespace (pid 1's), set by userspace before loading.
const volatile __u32 host_mnt_ns = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SYSCALL_CGROUPS);
    __type(key, __u64);
    __type(value, struct syscall_set);
} syscall_sets SEC(".maps");

// Cgroups not counted because the map was full (per CPU).
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} syscall_drops SEC(".maps");

#define PR_SET_SECCOMP 22
#define SECCOMP_SET_MODE_FILTER 1
#if defined(__TARGET_ARCH_x86)
#define TS_COMPAT 0x0002
#define SYS_EXECVE 59
#define SYS_EXECVEAT 322
#define SYS_PRCTL 157
#define SYS_SECCOMP 317
#define ARG1(regs) ((regs)->di)
#elif defined(__TARGET_ARCH_arm64)
#define SYS_EXECVE 221
#define SYS_EXECVEAT 281
#define SYS_PRCTL 167
#define SYS_SECCOMP 277
#define ARG1(regs) ((regs)->regs[0])
#endif

static __always_inline void mark(struct syscall_set *set, long id)
{
    __u32 word = (__u32)(id >> 6) & (SYSCALL_WORDS - 1);
    __u64 bit = 1ULL << (id & 63);
    if (!(set->bits[word] & bit))
        __sync_fetch_and_or(&set->bits[word], bit);
}

// Whether `task` runs in a container's root file system: another mount namespace than the
// host's, and a root that is not that namespace's `/` (pivot_root made a directory the root).
static __always_inline int in_container_root(struct task_struct *task)
{
    if (BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum) == host_mnt_ns)
        return 0;
    struct qstr name = BPF_CORE_READ(task, fs, root.dentry, d_name);
    if (name.len != 1)
        return 1;
    char first = 0;
    bpf_probe_read_kernel(&first, 1, name.name);
    return first != '/';
}

static __always_inline struct syscall_set *set_of(__u64 cgroup)
{
    struct syscall_set *set = bpf_map_lookup_elem(&syscall_sets, &cgroup);
    if (set)
        return set;
    struct syscall_set empty = {};
    bpf_map_update_elem(&syscall_sets, &cgroup, &empty, BPF_NOEXIST);
    set = bpf_map_lookup_elem(&syscall_sets, &cgroup);
    if (!set) {
        __u32 zero = 0;
        __u64 *drops = bpf_map_lookup_elem(&syscall_drops, &zero);
        if (drops)
            *drops += 1;
    }
    return set;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(syscall_enter, struct pt_regs *regs, long id)
{
    if (id < 0 || id >= SYSCALL_MAX)
        return 0;
    __u64 cgroup = bpf_get_current_cgroup_id();
    struct syscall_set *set = bpf_map_lookup_elem(&syscall_sets, &cgroup);
    if (set && set->started) {
#ifdef TS_COMPAT
        // A 32-bit task's numbers are another table's.
        struct task_struct *task = bpf_get_current_task_btf();
        if (task->thread_info.status & TS_COMPAT)
            return 0;
#endif
        mark(set, id);
        return 0;
    }
    // Before: a filter being installed starts the count (after this call); an exec call is
    // remembered, to carry over if it is the entrypoint's.
    int exec = id == SYS_EXECVE || id == SYS_EXECVEAT;
    int filter = (id == SYS_SECCOMP && ARG1(regs) == SECCOMP_SET_MODE_FILTER) ||
                 (id == SYS_PRCTL && ARG1(regs) == PR_SET_SECCOMP);
    if (!exec && !filter)
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_container_root(task))
        return 0;
    set = set_of(cgroup);
    if (!set)
        return 0;
    if (exec)
        set->exec_call = id;
    else
        set->started = 1;
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(syscall_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
    __u64 cgroup = bpf_get_current_cgroup_id();
    struct syscall_set *set = bpf_map_lookup_elem(&syscall_sets, &cgroup);
    if (set && set->started)
        return 0;
    if (!in_container_root(task))
        return 0;
    set = set_of(cgroup);
    if (!set)
        return 0;
    mark(set, set->exec_call ? set->exec_call : SYS_EXECVE);
    set->started = 1;
    return 0;
}
