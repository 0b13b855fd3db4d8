//! Process sensing: loads src/agent/bpf/process.bpf.c (built by build.rs, embedded here),
//! attaches its exec, fork and exit tracepoints, and reads its ring buffer without blocking the
//! runtime. Dropping the sensor detaches everything.

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf};
use tokio::io::unix::AsyncFd;

use super::events::{ProcessEvent, decode_process_event};

static PROCESS_PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/process.bpf.o"));

/// (program name in the object, tracepoint it attaches to)
const TRACEPOINTS: [(&str, &str); 3] = [
    ("process_exec", "sched_process_exec"),
    ("process_fork", "sched_process_fork"),
    ("process_exit", "sched_process_exit"),
];

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("loading the kernel programs: {0} (the agent needs root, or CAP_BPF and CAP_PERFMON)")]
    Load(#[source] aya::EbpfError),
    #[error("reading the kernel's BTF (/sys/kernel/btf/vmlinux): {0}")]
    Btf(#[source] aya::BtfError),
    #[error("program {program} on {hook}: {source}")]
    Attach {
        program: &'static str,
        hook: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("the kernel object has no {0}")]
    Missing(&'static str),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("waiting on the ring buffer: {0}")]
    Io(#[from] std::io::Error),
}

pub struct ProcessSensor {
    // Holds the programs and their links: dropping it detaches them.
    ebpf: Ebpf,
    ring: AsyncFd<RingBuf<MapData>>,
    /// Records the ring buffer held that did not decode.
    pub malformed: u64,
}

impl ProcessSensor {
    /// Loads and attaches. Must run inside a tokio runtime (the ring buffer is polled by it).
    pub fn start() -> Result<Self, SensorError> {
        let mut ebpf = Ebpf::load(PROCESS_PROGRAM).map_err(SensorError::Load)?;
        let btf = Btf::from_sys_fs().map_err(SensorError::Btf)?;
        for (program, hook) in TRACEPOINTS {
            let attach = |source| SensorError::Attach { program, hook, source };
            let tracepoint: &mut BtfTracePoint =
                ebpf.program_mut(program).ok_or(SensorError::Missing(program))?.try_into().map_err(attach)?;
            tracepoint.load(hook, &btf).map_err(attach)?;
            tracepoint.attach().map_err(attach)?;
        }
        let map = ebpf.take_map("events").ok_or(SensorError::Missing("events"))?;
        let ring = RingBuf::try_from(map).map_err(|source| SensorError::Map { name: "events", source })?;
        Ok(Self { ebpf, ring: register_ring(ring)?, malformed: 0 })
    }

    /// Waits for events and returns what the ring buffer holds. The kernel programs wake the
    /// reader only when 64 KiB are waiting, so it also looks every 50 ms.
    pub async fn next_batch(&mut self) -> Result<Vec<ProcessEvent>, SensorError> {
        loop {
            let batch = match tokio::time::timeout(POLL, self.ring.readable_mut()).await {
                Ok(guard) => {
                    let mut guard = guard?;
                    let batch = drain(guard.get_inner_mut(), &mut self.malformed);
                    guard.clear_ready();
                    batch
                }
                Err(_) => drain(self.ring.get_mut(), &mut self.malformed),
            };
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// Events the kernel could not put in the ring buffer because it was full, since start.
    pub fn dropped(&self) -> Result<u64, SensorError> {
        let map = self.ebpf.map("drops").ok_or(SensorError::Missing("drops"))?;
        let drops: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|source| SensorError::Map { name: "drops", source })?;
        let values = drops.get(&0, 0).map_err(|source| SensorError::Map { name: "drops", source })?;
        Ok(values.iter().sum())
    }
}

/// How often the reader looks at the ring buffer without being woken.
const POLL: std::time::Duration = std::time::Duration::from_millis(50);

fn drain(ring: &mut RingBuf<MapData>, malformed: &mut u64) -> Vec<ProcessEvent> {
    let mut batch = Vec::new();
    while let Some(item) = ring.next() {
        match decode_process_event(&item) {
            Ok(event) => batch.push(event),
            Err(_) => *malformed += 1,
        }
    }
    batch
}

/// Registers a ring buffer's fd with the runtime's reactor.
#[allow(unsafe_code)]
pub(crate) fn register_ring(ring: RingBuf<MapData>) -> std::io::Result<AsyncFd<RingBuf<MapData>>> {
    // SAFETY: tokio requires the fd to stay open and not be registered elsewhere while the
    // AsyncFd lives. The RingBuf owns its map's fd (an OwnedFd in MapData) and moves into the
    // AsyncFd, which deregisters before dropping it; nothing else registers that fd.
    unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)
}
