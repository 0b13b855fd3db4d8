// SPDX-License-Identifier: GPL-2.0
// The wire layout of kernel events, shared with src/agent/events.rs (which decodes it field by
// field, little-endian). Change both together.
#ifndef PICKET_EVENTS_H
#define PICKET_EVENTS_H

#define EVENT_EXEC 1
#define EVENT_FORK 2
#define EVENT_EXIT 3

#define COMM_LEN 16
#define FILENAME_LEN 256
#define ARGS_MAX 512

struct process_event {
    __u32 kind;
    __u32 pid;
    __u32 tid;
    __u32 ppid;
    __u32 uid;
    __u32 exit_code;
    __u64 cgroup_id;
    __u64 timestamp_ns;
    char comm[COMM_LEN];
    char filename[FILENAME_LEN];
    __u32 args_len;
    char args[ARGS_MAX];
    // The executable's absolute path, resolved from its file (exec only; empty when the walk
    // could not reach a root): `filename` is what exec was given, `/proc/self/exe` included.
    char exe[FILENAME_LEN];
};

#endif
