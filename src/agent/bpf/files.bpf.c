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

#define O_WRONLY 00000001
#define O_CREAT 00000100
#define O_EXCL 00000200
#define O_TRUNC 00001000

// The walk builds the path right to left in a PATH_MAX buffer, so the prefix filter sees the
// real beginning of a long path; the event carries its first FILE_PATH_LEN - 1 bytes.
#define BUILD_LEN 4096
#define NAME_MAX 255
#define MAX_COMPONENTS 64

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

struct scratch {
    // The path ends at build[BUILD_LEN - 1]; the extra NAME_MAX + 1 bytes let the verifier see
    // that a name (at most NAME_MAX bytes) copied at any offset below BUILD_LEN stays inside.
    char build[BUILD_LEN + NAME_MAX + 1];
    struct prefix_key key;
};

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

// Where the walk up from a file's dentry is.
struct walk {
    struct dentry *dentry;
    struct mount *mnt;
    struct dentry *mnt_root; // mnt's root dentry
    struct dentry *root_dentry;
    struct vfsmount *root_mnt;
    __u32 pos;    // where the path built so far starts in scratch.build
    int complete; // reached a root (the task's, or the top of the mount tree)
};

// A dentry's parent and name, which sit side by side in struct dentry: one read for both.
struct parent_and_name {
    struct dentry *parent;
    struct qstr name;
};

// One step of the walk, under bpf_loop (a plain loop's states overwhelm the verifier): names
// one component, or crosses from the root of a mount to where it is mounted. 1 stops the walk.
// The walked pointers are plain numbers here, so every read is a bpf_probe_read_kernel.
static long walk_step(__u32 i, void *ctx)
{
    struct walk *w = ctx;
    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s)
        return 1;
    // Locals: BPF_CORE_READ would relocate w's own fields against the kernel's BTF.
    struct dentry *dentry = w->dentry;
    struct mount *mnt = w->mnt;
    if (dentry == w->root_dentry && &mnt->mnt == w->root_mnt) {
        w->complete = 1;
        return 1;
    }
    struct parent_and_name up = {};
    if (bpf_core_field_offset(struct dentry, d_name) == bpf_core_field_offset(struct dentry, d_parent) + 8) {
        bpf_probe_read_kernel(&up, sizeof(up), (void *)dentry + bpf_core_field_offset(struct dentry, d_parent));
    } else {
        up.parent = BPF_CORE_READ(dentry, d_parent);
        BPF_CORE_READ_INTO(&up.name, dentry, d_name);
    }
    if (dentry == w->mnt_root || dentry == up.parent) {
        struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
        // The top of the mount tree, or a dentry outside its mount (a detached or lazily
        // unmounted one): nothing above it to name.
        if (dentry != w->mnt_root || mnt == mnt_parent) {
            w->complete = 1;
            return 1;
        }
        w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
        w->mnt = mnt_parent;
        w->mnt_root = BPF_CORE_READ(mnt_parent, mnt.mnt_root);
        return 0;
    }
    __u32 len = up.name.len & NAME_MAX;
    __u32 pos = w->pos;
    if (len + 1 > pos)
        return 1;
    pos -= len + 1;
    s->build[pos & (BUILD_LEN - 1)] = '/';
    bpf_probe_read_kernel(&s->build[(pos + 1) & (BUILD_LEN - 1)], len, up.name.name);
    w->pos = pos;
    w->dentry = up.parent;
    return 0;
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
    if (!s)
        return 0;
    struct fs_struct *fs = task->fs;
    if (!fs)
        return 0;
    struct walk w = {
        .dentry = f_path.dentry,
        .mnt = container_of(f_path.mnt, struct mount, mnt),
        .mnt_root = BPF_CORE_READ(f_path.mnt, mnt_root),
        .root_dentry = fs->root.dentry,
        .root_mnt = fs->root.mnt,
        .pos = BUILD_LEN - 1,
        .complete = 0,
    };
    s->build[BUILD_LEN - 1] = 0;
    bpf_loop(MAX_COMPONENTS, walk_step, &w, 0);
    int complete = w.complete;
    __u32 pos = w.pos;
    if (pos == BUILD_LEN - 1) {
        // The root itself.
        pos--;
        s->build[pos] = '/';
    }
    pos &= BUILD_LEN - 1;
    __u32 len = BUILD_LEN - 1 - pos;

    // A path whose beginning is unknown cannot be matched: it is reported whatever is watched,
    // so nesting directories deeply does not hide an open.
    if (complete) {
        __u32 n = len < FILE_PREFIX_LEN ? len : FILE_PREFIX_LEN;
        n &= 0xff;
        if (n > FILE_PREFIX_LEN)
            n = FILE_PREFIX_LEN;
        s->key.prefixlen = n * 8;
        bpf_probe_read_kernel(s->key.prefix, n, &s->build[pos]);
        if (!bpf_map_lookup_elem(&watched, &s->key))
            return 0;
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
    if (n > FILE_PATH_LEN - 1) {
        n = FILE_PATH_LEN - 1;
        e->status |= FILE_PATH_TRUNCATED;
    }
    n &= FILE_PATH_LEN - 1;
    bpf_probe_read_kernel(e->path, n, &s->build[pos]);
    long flags = bpf_ringbuf_query(&file_events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
    bpf_ringbuf_submit(e, flags);
    return 0;
}
