//! The enforcement ladder: which mechanism each control uses on this kernel, strongest first,
//! found by trying them (`picket agent probe` prints it without enforcing anything).

use std::path::Path;

use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};
use serde::Serialize;

/// A mechanism of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rung {
    /// BPF LSM programs (`bprm_check_security`, `file_open`): the verdict in the kernel.
    BpfLsm,
    /// fanotify permission events: the verdict in the agent, the block in the kernel.
    Fanotify,
    /// `bpf_send_signal(SIGKILL)` at `sched_process_exec`: the new image never runs.
    Signal,
    /// cgroup hooks (`connect4/6`, `sendmsg4/6`, `cgroup_skb`).
    CgroupHooks,
}

impl Rung {
    /// The rung of its `as_str` name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::BpfLsm, Self::Fanotify, Self::Signal, Self::CgroupHooks].into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BpfLsm => "bpf-lsm",
            Self::Fanotify => "fanotify",
            Self::Signal => "signal",
            Self::CgroupHooks => "cgroup-hooks",
        }
    }
}

/// One rung tried for one control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tried {
    pub rung: Rung,
    /// None: it works here; else why not.
    pub refused: Option<String>,
}

/// One control (exec, file, network): the rungs tried, strongest first, and the one used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    pub control: &'static str,
    pub tried: Vec<Tried>,
}

impl Control {
    /// The strongest rung that works.
    pub fn chosen(&self) -> Option<Rung> {
        self.tried.iter().find(|t| t.refused.is_none()).map(|t| t.rung)
    }
}

/// What this kernel allows, per control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ladder {
    pub controls: Vec<Control>,
}

/// Tries each rung without enforcing anything: LSM programs are loaded and detached at once, a
/// fanotify group marks a temporary directory for permission events and closes.
pub fn probe() -> Ladder {
    let lsm = super::Enforcer::start().err().map(|e| e.to_string());
    let fanotify = probe_fanotify().err();
    let signal = super::Enforcer::start_signal().err().map(|e| e.to_string());
    let rungs = |with_signal: bool| {
        let mut tried = vec![
            Tried { rung: Rung::BpfLsm, refused: lsm.clone() },
            Tried { rung: Rung::Fanotify, refused: fanotify.clone() },
        ];
        if with_signal {
            tried.push(Tried { rung: Rung::Signal, refused: signal.clone() });
        }
        tried
    };
    Ladder {
        controls: vec![
            Control { control: "exec", tried: rungs(true) },
            Control { control: "file", tried: rungs(false) },
            Control {
                control: "network",
                tried: vec![Tried { rung: Rung::CgroupHooks, refused: crate::agent::net::NetSensor::probe().err() }],
            },
        ],
    }
}

/// A fanotify group of the content class with open and exec permission marks.
fn probe_fanotify() -> Result<(), String> {
    let group = Fanotify::init(InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC, EventFFlags::O_RDONLY)
        .map_err(|e| format!("fanotify_init: {e} (needs root and CONFIG_FANOTIFY)"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let mask = MaskFlags::FAN_OPEN_PERM | MaskFlags::FAN_OPEN_EXEC_PERM;
    group
        .mark(MarkFlags::FAN_MARK_ADD, mask, &group, Some::<&Path>(dir.path()))
        .map_err(|e| format!("permission events: {e} (needs CONFIG_FANOTIFY_ACCESS_PERMISSIONS)"))?;
    Ok(())
}

impl Ladder {
    /// `exec fanotify, file fanotify, network none`: what is used, one word per control.
    pub fn summary(&self) -> String {
        let words: Vec<String> = self
            .controls
            .iter()
            .map(|c| format!("{} {}", c.control, c.chosen().map_or("none", Rung::as_str)))
            .collect();
        words.join(", ")
    }

    /// The table `picket agent probe` prints.
    pub fn table(&self) -> String {
        let mut out = String::from("CONTROL  MECHANISM     STATE\n");
        for control in &self.controls {
            let chosen = control.chosen();
            for tried in &control.tried {
                let state = match (&tried.refused, Some(tried.rung) == chosen) {
                    (None, true) => "works: used".to_string(),
                    (None, false) => "works".to_string(),
                    (Some(why), _) => format!("refused: {why}"),
                };
                out.push_str(&format!("{:<8} {:<13} {state}\n", control.control, tried.rung.as_str()));
            }
            if chosen.is_none() {
                out.push_str(&format!(
                    "{:<8} {:<13} nothing enforces {} here: it is only watched\n",
                    control.control, "-", control.control
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_working_rung_is_chosen_and_the_table_says_why() {
        let ladder = Ladder {
            controls: vec![
                Control {
                    control: "exec",
                    tried: vec![
                        Tried { rung: Rung::BpfLsm, refused: Some("EPERM".into()) },
                        Tried { rung: Rung::Fanotify, refused: None },
                        Tried { rung: Rung::Signal, refused: None },
                    ],
                },
                Control {
                    control: "network",
                    tried: vec![Tried { rung: Rung::CgroupHooks, refused: Some("x".into()) }],
                },
            ],
        };
        assert_eq!(ladder.controls[0].chosen(), Some(Rung::Fanotify));
        assert_eq!(ladder.summary(), "exec fanotify, network none");
        let table = ladder.table();
        assert!(table.contains("exec     bpf-lsm       refused: EPERM"), "{table}");
        assert!(table.contains("exec     fanotify      works: used"), "{table}");
        assert!(table.contains("exec     signal        works\n"), "{table}");
        assert!(table.contains("nothing enforces network here"), "{table}");
    }
}
