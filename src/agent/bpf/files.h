// SPDX-License-Identifier: GPL-2.0
// The layout of file-open events and of the watched-prefix map, shared with src/agent/files.rs
// (which decodes and encodes them as little-endian bytes). Change both together.
#ifndef PICKET_FILES_H
#define PICKET_FILES_H

#define FILE_PATH_LEN 256
#define FILE_PREFIX_LEN 128
#define FILE_MAX_PREFIXES 64

// What a watched prefix reports (the LPM trie's value): every open, or only opens for writing
// (write access, O_CREAT or O_TRUNC) so that rules about writes below busy directories do not
// send every read to userspace.
#define WATCH_ANY 1
#define WATCH_WRITES 2
// Opens for writing by tasks outside the host's mount namespace (containers): what learning
// watches on `/`, so that the host's own writes never reach userspace.
#define WATCH_CONTAINER_WRITES 3

// file_event.status bits
#define FILE_PATH_TRUNCATED 1  // longer than FILE_PATH_LEN - 1 bytes: its end is cut
#define FILE_PATH_INCOMPLETE 2 // deeper than the walk goes: path holds its end only

// A watched prefix in the LPM trie: prefixlen counts bits of prefix.
struct prefix_key {
    __u32 prefixlen;
    char prefix[FILE_PREFIX_LEN];
};

struct file_event {
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __u32 open_flags; // as the syscall was given them (creat: O_CREAT|O_WRONLY|O_TRUNC)
    __u64 cgroup_id;
    __u64 timestamp_ns;
    __u32 status;
    __u32 pad;
    char comm[16];
    char path[FILE_PATH_LEN]; // absolute, NUL-terminated
};

#endif
