// SPDX-License-Identifier: GPL-2.0
// The absolute path of a `struct path` as a task sees it: built right to left, dentry by dentry
// up to the task's root, crossing mount points (the technique Tracee and Falco use), because
// bpf_d_path is not allowed outside LSM and fentry programs.
#ifndef PICKET_PATH_H
#define PICKET_PATH_H

// The walk builds the path right to left in a PATH_MAX buffer, so the prefix filter sees the
// real beginning of a long path; the event carries its first FILE_PATH_LEN - 1 bytes.
#define BUILD_LEN 4096
#define NAME_MAX 255
#define MAX_COMPONENTS 128
#define UNROLLED_STEPS 8

struct path_scratch {
    // The path ends at build[BUILD_LEN - 1]; the extra NAME_MAX + 1 bytes let the verifier see
    // that a name (at most NAME_MAX bytes) copied at any offset below BUILD_LEN stays inside.
    char build[BUILD_LEN + NAME_MAX + 1];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct path_scratch);
} path_scratch SEC(".maps");

// Where the walk up from a file's dentry is.
struct walk {
    struct dentry *dentry;
    struct mount *mnt;
    struct dentry *mnt_root; // mnt's root dentry
    struct dentry *root_dentry;
    struct vfsmount *root_mnt;
    struct path_scratch *s;
    __u32 pos;    // where the path built so far starts in scratch.build
    int complete; // reached a root (the task's, or the top of the mount tree)
};

// A dentry's parent and name, which sit side by side in struct dentry: one read for both.
struct parent_and_name {
    struct dentry *parent;
    struct qstr name;
};

// One step of the walk: names one component, or crosses from the root of a mount to where it
// is mounted. 1 stops the walk. The walked pointers are plain numbers here, so every read is a
// bpf_probe_read_kernel.
static __always_inline long walk_step_inline(struct walk *w)
{
    struct path_scratch *s = w->s;
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
    // A read that failed leaves no parent: what was built is not the whole path.
    if (!up.parent)
        return 1;
    if (dentry == up.parent && dentry != w->mnt_root) {
        // A pseudo file, its own parent on a kernel-internal mount (memfd_create's files, a
        // pipe, a socket): named as the kernel names it, `/memfd:NAME`.
        __u32 len = up.name.len & NAME_MAX;
        __u32 pos = w->pos;
        if (len + 1 <= pos) {
            pos -= len + 1;
            s->build[pos & (BUILD_LEN - 1)] = '/';
            bpf_probe_read_kernel(&s->build[(pos + 1) & (BUILD_LEN - 1)], len, up.name.name);
            w->pos = pos;
        }
        w->complete = 1;
        return 1;
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

// The steps past the first few run under bpf_loop: a plain loop's states overwhelm the verifier.
static long walk_step(__u32 i, void *ctx)
{
    return walk_step_inline(ctx);
}

// Builds the path of `p` as a task with filesystem root `fs` sees it into s->build, ending at
// build[BUILD_LEN - 1]; returns where it starts. `complete` is 0 when the walk stopped before a
// root (too deep): the path then holds its end only.
static __always_inline __u32 walk_path(struct path_scratch *s, struct path *p, struct fs_struct *fs, int *complete)
{
    struct walk w = {
        .dentry = p->dentry,
        .mnt = container_of(p->mnt, struct mount, mnt),
        .mnt_root = BPF_CORE_READ(p->mnt, mnt_root),
        .root_dentry = BPF_CORE_READ(fs, root.dentry),
        .root_mnt = BPF_CORE_READ(fs, root.mnt),
        .s = s,
        .pos = BUILD_LEN - 1,
        .complete = 0,
    };
    s->build[BUILD_LEN - 1] = 0;
    // Most paths are a few components deep: those steps unrolled save bpf_loop's call per step
    // (about 10 % of the file sensor's cost on a five-component path).
    int stopped = 0;
#pragma unroll
    for (int i = 0; i < UNROLLED_STEPS; i++) {
        if (walk_step_inline(&w)) {
            stopped = 1;
            break;
        }
    }
    if (!stopped)
        bpf_loop(MAX_COMPONENTS - UNROLLED_STEPS, walk_step, &w, 0);
    *complete = w.complete;
    __u32 pos = w.pos;
    if (pos == BUILD_LEN - 1) {
        // The root itself.
        pos--;
        s->build[pos] = '/';
    }
    return pos & (BUILD_LEN - 1);
}

#endif
