//! Bounds on what an image may make picket read: hostile layers (decompression bombs, huge
//! entries, millions of files) stop with an error instead of exhausting memory or disk.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Limits {
    /// Largest single file in a layer.
    pub max_entry_bytes: u64,
    /// Largest expanded (uncompressed) layer.
    pub max_layer_bytes: u64,
    /// Largest expanded image, all layers together.
    pub max_image_bytes: u64,
    /// Most entries in one layer.
    pub max_entries: u64,
    /// Largest file whose contents a cataloger may read into memory; larger ones are skipped
    /// with a warning.
    pub max_read_bytes: u64,
    /// Largest expansion ratio (expanded / compressed) once a layer has expanded past 256 MiB.
    pub max_ratio: u64,
    /// Largest file the secret scanner reads; larger ones are not scanned.
    pub max_secret_file_bytes: u64,
    /// Most bytes of file contents kept in memory for the catalogers at once, over the whole
    /// image or directory (each file is also bounded by `max_read_bytes`).
    pub max_kept_bytes: u64,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entry_bytes: 8 * GIB,
            max_layer_bytes: 32 * GIB,
            max_image_bytes: 128 * GIB,
            max_entries: 2_000_000,
            max_read_bytes: 64 * 1024 * 1024,
            max_ratio: 1000,
            max_secret_file_bytes: 10 * 1024 * 1024,
            max_kept_bytes: 384 * 1024 * 1024,
        }
    }
}

/// Below this many expanded bytes the ratio is not checked (small layers compress very well).
pub const RATIO_FLOOR: u64 = 256 * 1024 * 1024;
