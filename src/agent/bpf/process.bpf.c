// SPDX-License-Identifier: GPL-2.0
// Process events for picket's node agent: exec, fork and exit, from BTF-enabled tracepoints,
// into one ring buffer. Events the ring buffer cannot take are counted in `drops`, never lost
// silently. Compiled by build.rs with clang -target bpf (CO-RE against this kernel's BTF).

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"
#include "path.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 24);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} drops SEC(".maps");

// Waking the reader for every event costs more than the event: wake it only when this much is
// waiting; it also reads on its own every 50 ms.
#define WAKEUP_BYTES (64 * 1024)

static __always_inline void submit(struct process_event *e)
{
    long flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
    bpf_ringbuf_submit(e, flags);
}

static __always_inline void count_drop(void)
{
    __u32 key = 0;
    __u64 *dropped = bpf_map_lookup_elem(&drops, &key);
    if (dropped)
        *dropped += 1;
}

static __always_inline void fill_common(struct process_event *e, __u32 kind, struct task_struct *task)
{
    e->kind = kind;
    e->pid = BPF_CORE_READ(task, tgid);
    e->tid = BPF_CORE_READ(task, pid);
    e->ppid = BPF_CORE_READ(task, real_parent, tgid);
    e->uid = bpf_get_current_uid_gid() & 0xffffffff;
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->timestamp_ns = bpf_ktime_get_boot_ns();
    bpf_get_current_comm(e->comm, sizeof(e->comm));
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
    struct process_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    fill_common(e, EVENT_EXEC, task);
    e->exit_code = 0;
    bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));

    // argv: the new image's arguments, NUL-separated, bounded by ARGS_MAX.
    struct mm_struct *mm = BPF_CORE_READ(task, mm);
    unsigned long start = BPF_CORE_READ(mm, arg_start);
    unsigned long end = BPF_CORE_READ(mm, arg_end);
    unsigned long len = end > start ? end - start : 0;
    if (len >= ARGS_MAX)
        len = ARGS_MAX - 1;
    // The mask keeps the size provably below ARGS_MAX for the verifier.
    len &= ARGS_MAX - 1;
    e->args_len = len;
    if (bpf_probe_read_user(e->args, len, (void *)start) != 0)
        e->args_len = 0;

    e->exe[0] = 0;
    __u32 zero = 0;
    struct path_scratch *b = bpf_map_lookup_elem(&path_scratch, &zero);
    struct file *file = BPF_CORE_READ(bprm, file);
    struct fs_struct *fs = BPF_CORE_READ(task, fs);
    struct path exe_path = {};
    if (b && file && fs && BPF_CORE_READ_INTO(&exe_path, file, f_path) == 0) {
        int complete = 0;
        __u32 pos = walk_path(b, &exe_path, fs, &complete);
        __u32 n = BUILD_LEN - 1 - pos;
        // A constant size: the copy stops at the path's NUL, which ends the build buffer.
        if (complete && n < FILENAME_LEN)
            bpf_probe_read_kernel_str(e->exe, FILENAME_LEN, &b->build[pos & (BUILD_LEN - 1)]);
    }
    submit(e);
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
    // Threads are not processes.
    if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
        return 0;
    struct process_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    fill_common(e, EVENT_FORK, child);
    e->ppid = BPF_CORE_READ(parent, tgid);
    e->exit_code = 0;
    e->filename[0] = 0;
    e->args_len = 0;
    e->exe[0] = 0;
    submit(e);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *task)
{
    // Only the last thread of a process ends it.
    if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
        return 0;
    struct process_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    fill_common(e, EVENT_EXIT, task);
    e->exit_code = BPF_CORE_READ(task, exit_code);
    e->filename[0] = 0;
    e->args_len = 0;
    e->exe[0] = 0;
    submit(e);
    return 0;
}
