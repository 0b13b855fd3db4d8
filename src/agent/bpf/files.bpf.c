// SPDX-License-Identifier: GPL-2.0
// File-open events for picket's node agent, from the syscall exit tracepoint: as open, openat,
// openat2 and creat return a new fd, its file gives the absolute path (walked dentry by dentry
// up to the task's root, crossing mounts), which is reported only when it starts with one of
// the prefixes userspace put in `watched`. (Not the LSM file_open hook: these machines' kernels
// refuse trampoline-based programs, and bpf_d_path is not allowed from tracepoints.)

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "files.h"
#include "path.h"

#define O_WRONLY 00000001
#define O_CREAT 00000100
#define O_EXCL 00000200
#define O_TRUNC 00001000

// The syscall's arguments are still in the registers saved at entry when it returns (the return
// value goes to ax, x0 on arm64, which no open flag is read from): no entry hook needed.
#if defined(__TARGET_ARCH_x86)
#define SYS_OPEN 2
#define SYS_CREAT 85
#define SYS_OPENAT 257
#define SYS_OPENAT2 437
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#define ARG2(regs) ((regs)->si)
#define ARG3(regs) ((regs)->dx)
#define TS_COMPAT 0x0002
#elif defined(__TARGET_ARCH_arm64)
// No open or creat on arm64. AArch32 tasks' numbers differ; theirs are not matched.
#define SYS_OPENAT 56
#define SYS_OPENAT2 437
#define SYSCALL_NR(regs) ((regs)->syscallno)
#define ARG2(regs) ((regs)->regs[1])
#define ARG3(regs) ((regs)->regs[2])
#endif

char LICENSE[] SEC("license") = "GPL";

// The host's mount namespace (pid 1's), set by the loader: WATCH_CONTAINER_WRITES skips it.
const volatile __u32 host_mnt_ns = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
} file_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} file_drops SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, FILE_MAX_PREFIXES);
    __type(key, struct prefix_key);
    __type(value, __u8);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} watched SEC(".maps");

// The watched-prefix lookup key, built per open; and how many unmatchable (incomplete) paths
// this CPU reported in the current second.
struct scratch {
    struct prefix_key key;
    __u64 incomplete_since_ns;
    __u32 incomplete_count;
};

// Unmatchable paths are reported whatever is watched; so that a container cannot bury the
// watched opens under them (deep trees opened in a loop), at most this many a second per CPU
// go out, and the rest are counted as dropped.
#define INCOMPLETE_PER_SECOND 64

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} scratch SEC(".maps");

#define WAKEUP_BYTES (64 * 1024)

static __always_inline int is_open(long nr)
{
#ifdef SYS_OPEN
    if (nr == SYS_OPEN || nr == SYS_CREAT)
        return 1;
#endif
    return nr == SYS_OPENAT || nr == SYS_OPENAT2;
}

// The flags the open was called with (read after the filter, for watched opens only).
static __always_inline __u32 syscall_flags(struct pt_regs *regs, long nr)
{
    switch (nr) {
#ifdef SYS_OPEN
    case SYS_OPEN:
        return ARG2(regs);
    case SYS_CREAT:
        return O_CREAT | O_WRONLY | O_TRUNC;
#endif
    case SYS_OPENAT:
        return ARG3(regs);
    default: {
        // openat2: the flags are the first field of the caller's struct open_how. If its page
        // is gone the creation flags are lost; the access mode comes from the file anyway.
        __u64 how_flags = 0;
        bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)ARG3(regs));
        return how_flags;
    }
    }
}

SEC("tp_btf/sys_exit")
int BPF_PROG(open_exit, struct pt_regs *regs, long ret)
{
    // Runs on every syscall's exit: this much, with direct loads, is all most of them cost.
    long nr = SYSCALL_NR(regs);
    if (ret < 0 || !is_open(nr))
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
#ifdef TS_COMPAT
    // A 32-bit task's syscall numbers are others (2 is fork there).
    if (task->thread_info.status & TS_COMPAT)
        return 0;
#endif
    struct fdtable *fdt = task->files->fdt;
    if (!fdt || (unsigned long)ret >= fdt->max_fds)
        return 0;
    struct file *file = 0;
    if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[ret]) != 0 || !file)
        return 0;
    struct path f_path = {};
    if (BPF_CORE_READ_INTO(&f_path, file, f_path) != 0)
        return 0;

    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    struct path_scratch *b = bpf_map_lookup_elem(&path_scratch, &zero);
    if (!s || !b)
        return 0;
    struct fs_struct *fs = task->fs;
    if (!fs)
        return 0;
    int complete = 0;
    __u32 pos = walk_path(b, &f_path, fs, &complete);
    __u32 len = BUILD_LEN - 1 - pos;

    // A path whose beginning is unknown cannot be matched: it is reported whatever is watched,
    // so nesting directories deeply does not hide an open.
    if (complete) {
        __u32 n = len < FILE_PREFIX_LEN ? len : FILE_PREFIX_LEN;
        n &= 0xff;
        if (n > FILE_PREFIX_LEN)
            n = FILE_PREFIX_LEN;
        s->key.prefixlen = n * 8;
        bpf_probe_read_kernel(s->key.prefix, n, &b->build[pos]);
        __u8 *watch = bpf_map_lookup_elem(&watched, &s->key);
        if (!watch)
            return 0;
        if (*watch == WATCH_WRITES || *watch == WATCH_CONTAINER_WRITES) {
            __u32 accmode = BPF_CORE_READ(file, f_flags) & 3;
            if (accmode == 0 && !(syscall_flags(regs, nr) & (O_CREAT | O_TRUNC)))
                return 0;
        }
        if (*watch == WATCH_CONTAINER_WRITES && BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum) == host_mnt_ns)
            return 0;
    }

    if (!complete) {
        __u64 now = bpf_ktime_get_boot_ns();
        if (now - s->incomplete_since_ns > 1000000000ULL) {
            s->incomplete_since_ns = now;
            s->incomplete_count = 0;
        }
        if (s->incomplete_count >= INCOMPLETE_PER_SECOND) {
            __u64 *dropped = bpf_map_lookup_elem(&file_drops, &zero);
            if (dropped)
                *dropped += 1;
            return 0;
        }
        s->incomplete_count++;
    }

    struct file_event *e = bpf_ringbuf_reserve(&file_events, sizeof(*e), 0);
    if (!e) {
        __u64 *dropped = bpf_map_lookup_elem(&file_drops, &zero);
        if (dropped)
            *dropped += 1;
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    e->pid = pid_tgid >> 32;
    e->tid = pid_tgid & 0xffffffff;
    e->uid = bpf_get_current_uid_gid() & 0xffffffff;
    // The file's flags hold the access mode as opened; the kernel clears the creation flags
    // from them, so those come from the call.
    e->open_flags = BPF_CORE_READ(file, f_flags) | (syscall_flags(regs, nr) & (O_CREAT | O_EXCL | O_TRUNC));
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->timestamp_ns = bpf_ktime_get_boot_ns();
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    if (!complete)
        e->status |= FILE_PATH_INCOMPLETE;
    __u32 n = len;
    __u32 from = pos;
    if (n > FILE_PATH_LEN - 1) {
        n = FILE_PATH_LEN - 1;
        e->status |= FILE_PATH_TRUNCATED;
        // Of a path whose beginning is unknown, its end (the file) is what tells.
        if (!complete)
            from = pos + (len - n);
    }
    n &= FILE_PATH_LEN - 1;
    bpf_probe_read_kernel(e->path, n, &b->build[from & (BUILD_LEN - 1)]);
    long flags = bpf_ringbuf_query(&file_events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
    bpf_ringbuf_submit(e, flags);
    return 0;
}
