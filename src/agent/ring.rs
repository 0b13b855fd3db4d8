//! What every kernel program of the agent shares: attaching to BTF tracepoints, a ring buffer
//! read on the tokio runtime, and a per-CPU counter of the events it could not queue.

use std::time::Duration;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf};
use tokio::io::unix::AsyncFd;

#[derive(Debug, thiserror::Error)]
pub enum RingError {
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

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("reading the kernel's BTF (/sys/kernel/btf/vmlinux): {0}")]
    Btf(#[source] aya::BtfError),
    #[error("program {program} on {hook}: {source}")]
    Attach {
        program: &'static str,
        hook: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("the kernel object has no program {0}")]
    Missing(&'static str),
}

/// Loads and attaches each (program, BTF tracepoint) of `ebpf`; the links live as long as it.
pub fn attach_tracepoints(ebpf: &mut Ebpf, tracepoints: &[(&'static str, &'static str)]) -> Result<(), AttachError> {
    let btf = Btf::from_sys_fs().map_err(AttachError::Btf)?;
    for &(program, hook) in tracepoints {
        let attach = |source| AttachError::Attach { program, hook, source };
        let tracepoint: &mut BtfTracePoint =
            ebpf.program_mut(program).ok_or(AttachError::Missing(program))?.try_into().map_err(attach)?;
        tracepoint.load(hook, &btf).map_err(attach)?;
        tracepoint.attach().map_err(attach)?;
    }
    Ok(())
}

pub struct EventRing {
    fd: AsyncFd<RingBuf<MapData>>,
    /// Look without being woken this often (for programs that batch their wakeups).
    poll: Option<Duration>,
    /// When to look next without a wakeup. Kept here, not in the future `next_batch` returns:
    /// a caller that selects over several rings drops that future whenever another is ready,
    /// and a timer made afresh each time would never expire while the others are busy.
    next_look: Option<tokio::time::Instant>,
}

impl EventRing {
    /// Takes the ring buffer map `name` out of `ebpf` and registers it with the runtime.
    pub fn take(ebpf: &mut Ebpf, name: &'static str, poll: Option<Duration>) -> Result<Self, RingError> {
        let map = ebpf.take_map(name).ok_or(RingError::Missing(name))?;
        let ring = RingBuf::try_from(map).map_err(|source| RingError::Map { name, source })?;
        Ok(Self { fd: register(ring)?, poll, next_look: None })
    }

    /// Waits for records and returns them decoded; records `decode` refuses are counted in
    /// `refused`.
    pub async fn next_batch<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> Option<T>,
        refused: &mut u64,
    ) -> Result<Vec<T>, RingError> {
        loop {
            let ready = match self.poll {
                Some(poll) => {
                    let at = *self.next_look.get_or_insert_with(|| tokio::time::Instant::now() + poll);
                    let ready = tokio::time::timeout_at(at, self.fd.readable_mut()).await.ok();
                    if ready.is_none() {
                        self.next_look = Some(tokio::time::Instant::now() + poll);
                    }
                    ready
                }
                None => Some(self.fd.readable_mut().await),
            };
            let batch = match ready {
                Some(guard) => {
                    let mut guard = guard?;
                    let batch = drain(guard.get_inner_mut(), &decode, refused);
                    guard.clear_ready();
                    batch
                }
                None => drain(self.fd.get_mut(), &decode, refused),
            };
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }
}

impl EventRing {
    /// What the ring holds now, without waiting (at the end, so nothing queued is lost).
    pub fn remaining<T>(&mut self, decode: impl Fn(&[u8]) -> Option<T>, refused: &mut u64) -> Vec<T> {
        drain(self.fd.get_mut(), &decode, refused)
    }
}

fn drain<T>(ring: &mut RingBuf<MapData>, decode: &impl Fn(&[u8]) -> Option<T>, refused: &mut u64) -> Vec<T> {
    let mut batch = Vec::new();
    while let Some(item) = ring.next() {
        match decode(&item) {
            Some(event) => batch.push(event),
            None => *refused += 1,
        }
    }
    batch
}

/// The sum over CPUs of the first element of a per-CPU array (the drop counters).
pub fn per_cpu_sum(ebpf: &Ebpf, name: &'static str) -> Result<u64, RingError> {
    let map = ebpf.map(name).ok_or(RingError::Missing(name))?;
    let counter: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(map).map_err(|source| RingError::Map { name, source })?;
    let values = counter.get(&0, 0).map_err(|source| RingError::Map { name, source })?;
    Ok(values.iter().sum())
}

/// Registers a ring buffer's fd with the runtime's reactor.
#[allow(unsafe_code)]
fn register(ring: RingBuf<MapData>) -> std::io::Result<AsyncFd<RingBuf<MapData>>> {
    // SAFETY: tokio requires the fd to stay open and not be registered elsewhere while the
    // AsyncFd lives. The RingBuf owns its map's fd (an OwnedFd in MapData) and moves into the
    // AsyncFd, which deregisters before dropping it; nothing else registers that fd.
    unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)
}
