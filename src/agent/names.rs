//! Container names and images for the agent's events: the engines' container lists (Docker,
//! Podman; the same sockets the console finds), refreshed in the background so an event is
//! never held up by an API call. A container the engines do not know keeps its id only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::attribution::ContainerRef;

/// How often the engines are asked again (a container started since shows its name after this).
const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub image: String,
}

pub struct ContainerNames {
    known: Arc<RwLock<HashMap<String, Named>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ContainerNames {
    /// Starts asking the engines behind `sockets` (those that exist now or later). Must run
    /// inside a tokio runtime.
    pub fn start(sockets: Vec<PathBuf>) -> Self {
        let known: Arc<RwLock<HashMap<String, Named>>> = Arc::default();
        let shared = Arc::clone(&known);
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let mut found = HashMap::new();
                for socket in crate::engine::existing_sockets(&sockets) {
                    // An engine that is down now is asked again at the next tick.
                    let Ok(containers) = crate::engine::containers(&socket).await else { continue };
                    for c in containers {
                        found.insert(c.id.clone(), Named { name: c.name, image: c.image });
                    }
                }
                if let Ok(mut known) = shared.write() {
                    *known = found;
                }
            }
        });
        Self { known, task }
    }

    pub fn get(&self, id: &str) -> Option<Named> {
        self.known.read().ok()?.get(id).cloned()
    }

    /// Fills in the name and image of a container the engines know.
    pub fn name(&self, container: Option<ContainerRef>) -> Option<ContainerRef> {
        let mut container = container?;
        if let Some(named) = self.get(&container.id) {
            container.name = Some(named.name);
            container.image = Some(named.image);
        }
        Some(container)
    }

    /// Every container the engines know, by id.
    pub fn all(&self) -> HashMap<String, Named> {
        self.known.read().map(|k| k.clone()).unwrap_or_default()
    }
}

impl Drop for ContainerNames {
    fn drop(&mut self) {
        self.task.abort();
    }
}
