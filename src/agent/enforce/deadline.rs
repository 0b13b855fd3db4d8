//! A bound on how long a policed open or exec waits for the fanotify rung's verdict. The kernel
//! holds the process until the agent answers; a verdict thread stuck on one event (a file on a
//! hung network or FUSE mount, a /proc read that blocks) would otherwise hang the container. A
//! watchdog answers allow for the event in flight once the bound has passed, and for everything
//! queued behind it while the verdict thread stays stuck, and counts each (fail open, visibly).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::fanotify::{Fanotify, FanotifyResponse, Response};

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(50);

pub struct Deadline {
    within: Duration,
    /// The event the verdict thread is on: its descriptor's number, and since when.
    in_flight: Mutex<Option<(RawFd, Instant)>>,
    /// Events the verdict thread finished.
    finished: AtomicU64,
    /// Events the watchdog allowed because the verdict thread did not answer in time.
    late: AtomicU64,
}

impl Deadline {
    pub fn new(within: Duration) -> Self {
        Self { within, in_flight: Mutex::new(None), finished: AtomicU64::new(0), late: AtomicU64::new(0) }
    }

    /// The verdict thread takes up the event open on `fd`.
    pub fn begin(&self, fd: BorrowedFd) {
        if let Ok(mut slot) = self.in_flight.lock() {
            *slot = Some((fd.as_raw_fd(), Instant::now()));
        }
    }

    /// Answers the event in flight, unless the watchdog has already (then false: the process
    /// went on with an allow).
    pub fn respond(&self, group: &Fanotify, fd: BorrowedFd, response: Response) -> bool {
        let mut slot = match self.in_flight.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.take().is_none() {
            return false;
        }
        let _ = group.write_response(FanotifyResponse::new(fd, response));
        true
    }

    /// The verdict thread is done with the event; called before its descriptor is closed.
    pub fn end(&self) {
        if let Ok(mut slot) = self.in_flight.lock() {
            *slot = None;
        }
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    pub fn late(&self) -> u64 {
        self.late.load(Ordering::Relaxed)
    }

    /// The watchdog: runs until `stop`.
    pub fn watch(&self, group: &Fanotify, stop: &AtomicBool) {
        // The verdict thread's count of finished events when it was found stuck.
        let mut stuck_at: Option<u64> = None;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(TICK);
            if let Ok(mut slot) = self.in_flight.lock()
                && let Some((fd, since)) = *slot
                && since.elapsed() >= self.within
            {
                #[allow(unsafe_code)]
                // SAFETY: the verdict thread closes an event's descriptor only after `end`, which
                // takes this lock; while the slot holds the number, the descriptor is open.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                let _ = group.write_response(FanotifyResponse::new(fd, Response::FAN_ALLOW));
                *slot = None;
                self.late.fetch_add(1, Ordering::Relaxed);
                stuck_at = Some(self.finished.load(Ordering::Relaxed));
            }
            match stuck_at {
                Some(at) if self.finished.load(Ordering::Relaxed) == at => self.allow_queued(group),
                _ => stuck_at = None,
            }
        }
    }

    /// Allows whatever waits in the queue (the verdict thread is stuck behind one event).
    fn allow_queued(&self, group: &Fanotify) {
        let Ok(events) = group.read_events() else { return };
        for event in events {
            if let Some(fd) = event.fd() {
                let _ = group.write_response(FanotifyResponse::new(fd.as_fd(), Response::FAN_ALLOW));
                self.late.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
