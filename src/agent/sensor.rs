//! Process sensing: loads src/agent/bpf/process.bpf.c (built by build.rs, embedded here),
//! attaches its exec, fork and exit tracepoints, and reads its ring buffer without blocking the
//! runtime. Dropping the sensor detaches everything.

use std::time::Duration;

use aya::Ebpf;

use super::events::{ProcessEvent, decode_process_event};
use super::ring::{AttachError, EventRing, RingError, attach_tracepoints, per_cpu_sum};

static PROCESS_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/process.bpf.o"));

/// (program name in the object, tracepoint it attaches to)
const TRACEPOINTS: [(&str, &str); 3] = [
    ("process_exec", "sched_process_exec"),
    ("process_fork", "sched_process_fork"),
    ("process_exit", "sched_process_exit"),
];

/// The kernel program wakes the reader only when 64 KiB wait; it looks this often anyway.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("loading the kernel programs: {0} (the agent needs root, or CAP_BPF and CAP_PERFMON)")]
    Load(#[source] aya::EbpfError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Ring(#[from] RingError),
}

pub struct ProcessSensor {
    // Holds the programs and their links: dropping it detaches them.
    ebpf: Ebpf,
    ring: EventRing,
    /// Records the ring buffer held that did not decode.
    pub malformed: u64,
}

impl ProcessSensor {
    /// Loads and attaches. Must run inside a tokio runtime (the ring buffer is polled by it).
    pub fn start() -> Result<Self, SensorError> {
        let mut ebpf = Ebpf::load(PROCESS_PROGRAM).map_err(SensorError::Load)?;
        attach_tracepoints(&mut ebpf, &TRACEPOINTS)?;
        let ring = EventRing::take(&mut ebpf, "events", Some(POLL))?;
        Ok(Self { ebpf, ring, malformed: 0 })
    }

    /// Waits for events and returns what the ring buffer holds.
    pub async fn next_batch(&mut self) -> Result<Vec<ProcessEvent>, SensorError> {
        Ok(self.ring.next_batch(|bytes| decode_process_event(bytes).ok(), &mut self.malformed).await?)
    }

    /// The events queued now, without waiting (when stopping).
    pub fn remaining(&mut self) -> Vec<ProcessEvent> {
        self.ring.remaining(|bytes| decode_process_event(bytes).ok(), &mut self.malformed)
    }

    /// Events the kernel could not put in the ring buffer because it was full, since start.
    pub fn dropped(&self) -> Result<u64, SensorError> {
        Ok(per_cpu_sum(&self.ebpf, "drops")?)
    }
}
