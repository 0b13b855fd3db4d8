//! The Contexts pane: kubeconfig contexts.

use crate::cluster::ContextInfo;

pub fn context_text(c: &ContextInfo) -> String {
    format!("{} {} {} {} {}", c.name, c.cluster, c.server, c.user, c.namespace)
}
