//! The Policies pane's work: what is in force where, checking an edited policy as the agent
//! would, applying it through the same calls as `picket policy apply`, and `$EDITOR`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::state::{PoliciesData, PolicyRow, PolicyTarget};
use crate::policy::history::{self, PolicyHistory, PolicyVersion};
use crate::store::Store;

/// What an edited policy is called in its problems and in the history.
pub const EDITED: &str = "edited policy";
const SOURCE: &str = "Policies pane";

/// The local agent's policy first (what it answers, or why it does not), then every other
/// target the history holds, each with its last version.
pub async fn load(store: Arc<Store>, socket: PathBuf) -> Result<PoliciesData, String> {
    let in_force = crate::agent::client::policy_in_force(&socket).await;
    let versions = tokio::task::spawn_blocking(move || -> Result<Vec<PolicyVersion>, String> {
        PolicyHistory::open(&store).and_then(|h| h.targets()).map_err(|e| format!("the policy history: {e}"))
    })
    .await
    .map_err(|e| e.to_string())??;
    let agent_label = history::agent_target(&socket);
    let last_of = |label: &str| versions.iter().find(|v| v.target == label);
    let mut rows = vec![row(PolicyTarget::Agent(socket.clone()), last_of(&agent_label), in_force)];
    for version in versions.iter().filter(|v| v.target != agent_label) {
        let Some(target) = target_of(&version.target) else { continue };
        rows.push(row(target, Some(version), Ok((String::new(), version.yaml.clone()))));
    }
    Ok(PoliciesData { rows })
}

fn row(target: PolicyTarget, last: Option<&PolicyVersion>, text: Result<(String, String), String>) -> PolicyRow {
    let (kept_as, text) = match text {
        Ok((file, text)) => ((!file.is_empty()).then_some(file), Ok(text)),
        Err(why) => (None, Err(why)),
    };
    PolicyRow {
        target,
        versions: last.map_or(0, |v| v.version),
        last_applied_ms: last.map(|v| v.at_unix_ms),
        who: last.map(|v| v.who.clone()).unwrap_or_default(),
        source: last.map(|v| v.source.clone()).unwrap_or_default(),
        summary: last.map(|v| v.summary.clone()).unwrap_or_default(),
        text,
        kept_as,
    }
}

/// A history target read back: `agent SOCKET` or `cluster CONTEXT Kind name`.
fn target_of(label: &str) -> Option<PolicyTarget> {
    if let Some(socket) = label.strip_prefix("agent ") {
        return Some(PolicyTarget::Agent(PathBuf::from(socket)));
    }
    let (context, object) = label.strip_prefix("cluster ")?.split_once(' ')?;
    Some(PolicyTarget::Cluster { context: context.into(), object: object.into() })
}

/// Every problem of `text` the agent (or the API server's schema) would refuse.
pub fn check(text: &str) -> Vec<crate::policy::validate::Problem> {
    crate::agent::policy::problems(Path::new(EDITED), text)
}

/// Puts `text` in force on `target` and keeps it in the history: what the target said.
pub async fn apply(store: Arc<Store>, target: PolicyTarget, text: String) -> Result<String, String> {
    let label = target.label();
    let said = match &target {
        PolicyTarget::Agent(socket) => {
            let applied = crate::agent::client::apply_policy(socket, Path::new(EDITED), &text).await?;
            format!("in force on the agent: {}", applied.summary)
        }
        PolicyTarget::Cluster { context, .. } => {
            let (documents, problems) = crate::policy::validate::validate_text(Path::new(EDITED), &text);
            if let Some(problem) = problems.first() {
                return Err(problem.to_string());
            }
            let (name, applied) = crate::policy::apply::to_cluster(Some(context), &documents).await?;
            format!("context {name}: applied {}", applied.join(", "))
        }
    };
    let kept = tokio::task::spawn_blocking(move || {
        PolicyHistory::open(&store).and_then(|h| h.record(&label, SOURCE, &text, "")).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|kept| kept);
    Ok(match kept {
        Ok(version) => format!("{said} (version {version} in the history)"),
        Err(e) => format!("{said} (not kept in the history: {e})"),
    })
}

/// Runs `$VISUAL`, else `$EDITOR`, else `vi` on a copy of `text`, on the real terminal (which
/// the caller has given up); the text as the editor left it.
pub async fn edit_externally(text: &str) -> Result<String, String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    edit_with(&editor, text).await
}

async fn edit_with(editor: &str, text: &str) -> Result<String, String> {
    let file = tempfile::Builder::new()
        .prefix("picket-policy-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| format!("cannot make a file for {editor}: {e}"))?;
    std::fs::write(file.path(), text).map_err(|e| format!("cannot write {}: {e}", file.path().display()))?;
    // Through the shell, as git does, so that `EDITOR="code --wait"` works.
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("picket")
        .arg(file.path())
        .status()
        .await
        .map_err(|e| format!("cannot run {editor}: {e}"))?;
    if !status.success() {
        return Err(format!("{editor} exited with {status}; the text is unchanged"));
    }
    crate::input::read_text(file.path(), crate::input::MAX_TEXT).map_err(|e| format!("cannot read back: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_targets_read_back_as_targets() {
        let agent = PolicyTarget::Agent(PathBuf::from("/run/picket/agent.sock"));
        assert_eq!(target_of(&agent.label()), Some(agent));
        let object = PolicyTarget::Cluster { context: "prod".into(), object: "PicketPolicy shop/web".into() };
        assert_eq!(target_of(&object.label()), Some(object));
        assert_eq!(target_of("elsewhere"), None);
    }

    #[tokio::test]
    async fn an_external_editor_changes_the_text_and_a_failing_one_does_not() {
        let edited = edit_with("sed -i s/monitor/protect/", "mode: monitor\n").await;
        assert_eq!(edited.as_deref(), Ok("mode: protect\n"));
        let refused = edit_with("false", "mode: monitor\n").await.unwrap_err();
        assert!(refused.contains("false exited"), "{refused}");
    }
}
