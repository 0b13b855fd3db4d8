//! The node agent (`picket agent`, root): kernel programs (src/agent/bpf/*.bpf.c, built by
//! build.rs) that report process, file and network activity and enforce per-container policy
//! with BPF LSM, loaded with aya. If the agent exits, its programs are detached with it: the
//! node fails open.

pub mod alert;
pub mod attribution;
pub mod client;
pub mod cluster_policies;
pub mod deploy;
pub mod detect;
pub mod dns;
pub mod drift;
pub mod enforce;
pub mod events;
pub mod files;
pub mod flow_bytes;
pub mod flows;
pub mod learning;
pub mod manifest;
pub mod mapped;
pub mod names;
pub mod net;
pub mod policy;
pub mod probes;
pub mod processes;
pub mod promotion;
pub mod protocols;
pub mod publish;
pub mod quarantine;
pub mod replay;
pub mod ring;
pub mod runtime;
pub mod sensor;
pub mod stream;
pub mod syscalls;
pub mod wire;

pub use runtime::{RunOptions, run};
