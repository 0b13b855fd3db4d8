// SPDX-License-Identifier: GPL-2.0
// Shared with src/agent/syscalls.rs: the per-cgroup syscall sets.
#pragma once

// Syscall numbers below this are counted (x86_64 and arm64 stay under 512).
#define SYSCALL_MAX 512
#define SYSCALL_WORDS (SYSCALL_MAX / 64)
// Cgroups counted at once; userspace forgets those that are gone.
#define SYSCALL_CGROUPS 16384

struct syscall_set {
    // Whether the workload runs: its first exec outside the host's mount namespace was seen.
    __u64 started;
    // The exec call made before that (execve or execveat), carried over when it succeeds.
    __u64 exec_call;
    __u64 bits[SYSCALL_WORDS];
};
