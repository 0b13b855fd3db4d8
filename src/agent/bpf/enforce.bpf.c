// SPDX-License-Identifier: GPL-2.0
// Per-container enforcement with BPF LSM: an executable allowlist (bprm_check_security) and
// read/write denials under path prefixes (file_open). Where the kernel refuses LSM programs,
// the signal rung holds the allowlist instead: at sched_process_exec a program outside it gets
// SIGKILL before it runs a single instruction of its own (`signal_exec`, loaded alone). Policies live under a generation number;
// userspace writes a whole new generation, then flips `active`, so an update is one atomic
// switch. Containers without a policy, and everything when the agent is gone, are allowed.

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "policy.h"
#include "path.h"

#define EPERM 1
#define FMODE_READ 0x1
#define FMODE_WRITE 0x2

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} active SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct policy_key);
    __type(value, struct container_policy);
} policies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct exec_key);
    __type(value, __u8);
} allowed_execs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct exec_key);
} scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} alerts SEC(".maps");

// Set by the loader for the signal rung, whose protect kills instead of denying.
const volatile __u32 killing = 0;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} alert_drops SEC(".maps");

static __always_inline struct container_policy *policy_of(__u32 *generation, __u64 cgroup_id)
{
    __u32 zero = 0;
    __u32 *gen = bpf_map_lookup_elem(&active, &zero);
    if (!gen)
        return 0;
    *generation = *gen;
    struct policy_key key = { .generation = *gen, .pad = 0, .cgroup_id = cgroup_id };
    return bpf_map_lookup_elem(&policies, &key);
}

static __always_inline __u32 action_of(__u32 mode)
{
    if (mode == MODE_PROTECT && killing)
        return ACTION_KILLED;
    if (mode == MODE_PROTECT)
        return ACTION_DENIED;
    if (mode == MODE_MONITOR)
        return ACTION_ALERTED;
    return ACTION_RECORDED;
}

static __always_inline void raise(__u32 kind, __u32 mode, __u32 access, __u64 cgroup_id, const char *path)
{
    struct alert *a = bpf_ringbuf_reserve(&alerts, sizeof(*a), 0);
    if (!a) {
        __u32 zero = 0;
        __u64 *dropped = bpf_map_lookup_elem(&alert_drops, &zero);
        if (dropped)
            *dropped += 1;
        return;
    }
    a->kind = kind;
    a->action = action_of(mode);
    a->pid = bpf_get_current_pid_tgid() >> 32;
    a->uid = bpf_get_current_uid_gid() & 0xffffffff;
    a->cgroup_id = cgroup_id;
    a->timestamp_ns = bpf_ktime_get_boot_ns();
    a->access = access;
    a->mode = mode;
    bpf_get_current_comm(a->comm, sizeof(a->comm));
    bpf_probe_read_kernel_str(a->path, sizeof(a->path), path);
    bpf_ringbuf_submit(a, 0);
}

SEC("lsm.s/bprm_check_security")
int BPF_PROG(check_exec, struct linux_binprm *bprm, int ret)
{
    if (ret != 0)
        return ret;
    __u64 cgroup_id = bpf_get_current_cgroup_id();
    __u32 generation = 0;
    struct container_policy *policy = policy_of(&generation, cgroup_id);
    if (!policy || policy->mode == MODE_NONE || !policy->exec_allowlist)
        return 0;
    __u32 mode = policy->mode;
    __u32 zero = 0;
    struct exec_key *key = bpf_map_lookup_elem(&scratch, &zero);
    if (!key)
        return 0;
    __builtin_memset(key, 0, sizeof(*key));
    key->generation = generation;
    key->cgroup_id = cgroup_id;
    if (bpf_d_path((struct path *)&bprm->file->f_path, key->path, sizeof(key->path)) < 0)
        return 0;
    if (bpf_map_lookup_elem(&allowed_execs, key))
        return 0;
    raise(ALERT_EXEC, mode, 0, cgroup_id, key->path);
    return mode == MODE_PROTECT ? -EPERM : 0;
}

SEC("lsm.s/file_open")
int BPF_PROG(check_open, struct file *file, int ret)
{
    if (ret != 0)
        return ret;
    __u64 cgroup_id = bpf_get_current_cgroup_id();
    __u32 generation = 0;
    struct container_policy *policy = policy_of(&generation, cgroup_id);
    if (!policy || policy->mode == MODE_NONE || policy->rule_count == 0)
        return 0;
    __u32 mode = policy->mode;
    __u32 access = 0;
    if (file->f_mode & FMODE_READ)
        access |= ACCESS_READ;
    if (file->f_mode & FMODE_WRITE)
        access |= ACCESS_WRITE;
    __u32 zero = 0;
    struct exec_key *buf = bpf_map_lookup_elem(&scratch, &zero);
    if (!buf)
        return 0;
    if (bpf_d_path((struct path *)&file->f_path, buf->path, sizeof(buf->path)) < 0)
        return 0;
    // The longest prefix that matches decides: a rule that denies nothing is an exception
    // carved out of a shorter one (`/` read-only, `/tmp/` writable).
    __u32 best_len = 0;
    __u32 best_deny = 0;
    for (int r = 0; r < MAX_FILE_RULES; r++) {
        if (r >= policy->rule_count)
            break;
        struct file_rule *rule = &policy->rules[r];
        __u32 len = rule->len;
        if (len == 0 || len <= best_len)
            continue;
        int matches = 1;
        for (int i = 0; i < PREFIX_LEN; i++) {
            if (i >= len)
                break;
            if (buf->path[i] != rule->prefix[i]) {
                matches = 0;
                break;
            }
        }
        if (matches) {
            best_len = len;
            best_deny = rule->deny;
        }
    }
    __u32 denied = best_deny & access;
    if (denied) {
        raise(ALERT_FILE, mode, denied, cgroup_id, buf->path);
        return mode == MODE_PROTECT ? -EPERM : 0;
    }
    return 0;
}

#define SIGKILL 9

SEC("tp_btf/sched_process_exec")
int BPF_PROG(signal_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
    __u64 cgroup_id = bpf_get_current_cgroup_id();
    __u32 generation = 0;
    struct container_policy *policy = policy_of(&generation, cgroup_id);
    if (!policy || policy->mode == MODE_NONE || !policy->exec_allowlist)
        return 0;
    __u32 mode = policy->mode;
    __u32 zero = 0;
    struct exec_key *key = bpf_map_lookup_elem(&scratch, &zero);
    struct path_scratch *b = bpf_map_lookup_elem(&path_scratch, &zero);
    if (!key || !b)
        return 0;
    __builtin_memset(key, 0, sizeof(*key));
    key->generation = generation;
    key->cgroup_id = cgroup_id;
    struct file *file = BPF_CORE_READ(bprm, file);
    struct fs_struct *fs = BPF_CORE_READ(task, fs);
    struct path exe_path = {};
    // A path that cannot be walked whole, or is too long for the allowlist, is not on it.
    if (file && fs && BPF_CORE_READ_INTO(&exe_path, file, f_path) == 0) {
        int complete = 0;
        __u32 pos = walk_path(b, &exe_path, fs, &complete);
        __u32 n = BUILD_LEN - 1 - pos;
        if (complete && n < PATH_LEN) {
            bpf_probe_read_kernel_str(key->path, PATH_LEN, &b->build[pos & (BUILD_LEN - 1)]);
            if (bpf_map_lookup_elem(&allowed_execs, key))
                return 0;
        }
    }
    if (!key->path[0])
        bpf_probe_read_kernel_str(key->path, PATH_LEN, BPF_CORE_READ(bprm, filename));
    raise(ALERT_EXEC, mode, 0, cgroup_id, key->path);
    if (mode == MODE_PROTECT)
        bpf_send_signal(SIGKILL);
    return 0;
}
