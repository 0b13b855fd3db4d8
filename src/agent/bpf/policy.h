// SPDX-License-Identifier: GPL-2.0
// The layout of the enforcement maps and alerts, shared with src/agent/enforce.rs (which
// encodes and decodes them as little-endian bytes). Change both together.
#ifndef PICKET_POLICY_H
#define PICKET_POLICY_H

#define MODE_NONE 0
#define MODE_DISCOVER 1
#define MODE_MONITOR 2
#define MODE_PROTECT 3

#define ALERT_EXEC 1
#define ALERT_FILE 2

#define ACTION_RECORDED 0
#define ACTION_ALERTED 1
#define ACTION_DENIED 2
// The signal rung: SIGKILL as the new program is loaded, before it runs.
#define ACTION_KILLED 3

#define ACCESS_READ 1
#define ACCESS_WRITE 2

#define PATH_LEN 256
#define PREFIX_LEN 128
#define MAX_FILE_RULES 8

// A container's policy, under (generation, cgroup id).
struct policy_key {
    __u32 generation;
    __u32 pad;
    __u64 cgroup_id;
};

struct file_rule {
    __u32 deny;       // ACCESS_READ | ACCESS_WRITE
    __u32 len;        // bytes of prefix that count
    char prefix[PREFIX_LEN];
};

struct container_policy {
    __u32 mode;
    __u32 exec_allowlist; // 1: executables not in allowed_execs are outside the policy
    __u32 rule_count;
    __u32 pad;
    struct file_rule rules[MAX_FILE_RULES];
};

// An allowed executable path, under (generation, cgroup id).
struct exec_key {
    __u32 generation;
    __u32 pad;
    __u64 cgroup_id;
    char path[PATH_LEN];
};

struct alert {
    __u32 kind;
    __u32 action;
    __u32 pid;
    __u32 uid;
    __u64 cgroup_id;
    __u64 timestamp_ns;
    __u32 access;
    __u32 mode;
    char comm[16];
    char path[PATH_LEN];
};

#endif
