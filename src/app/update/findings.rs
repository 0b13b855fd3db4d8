//! Transitions of the findings view: open, load, sort, detail, accept.

use crossterm::event::{KeyCode, KeyEvent};

use super::{LineEdit, edit_line, toast};
use crate::app::action::{Command, Effect};
use crate::app::state::{
    AcceptField, AcceptForm, AppState, FindingSort, FindingsState, Loadable, Mode, PaneId, finding_text,
};

/// `v` on an image (or its packages): the findings of its stored SBOM.
pub fn open(state: &mut AppState) -> Vec<Effect> {
    if !matches!(state.pane(), PaneId::Images | PaneId::Packages) {
        return vec![];
    }
    let Some(image) = state.selected_image().cloned() else { return vec![] };
    let Some(stored) = image.stored else {
        let key = state.keymap.hint(Command::Scan).unwrap_or_else(|| "s".into());
        return toast(state, format!("{} has not been scanned yet: press {key}", image.name), false);
    };
    let request = state.take_id();
    state.findings = Some(FindingsState::new(request, image.name, stored.key.clone()));
    state.nav.push(PaneId::Findings);
    vec![Effect::LoadFindings { request, key: stored.key, ignore_path: state.ignore_path.clone() }]
}

pub fn loaded(
    state: &mut AppState,
    request: u64,
    result: Result<std::sync::Arc<crate::app::state::FindingsData>, String>,
) {
    let Some(findings) = state.findings.as_mut().filter(|f| f.request == request) else { return };
    let selected_id = findings.selected().map(|f| f.id.clone());
    findings.data = match result {
        Ok(data) => Loadable::Ready(data),
        Err(err) => Loadable::Failed(err),
    };
    findings.resort();
    refilter(state);
    if let Some(id) = selected_id {
        select_id(state, &id);
    }
}

pub fn refilter(state: &mut AppState) {
    if let Some(findings) = state.findings.as_mut() {
        let texts: Vec<String> = findings.rows().iter().map(|f| finding_text(f)).collect();
        findings.view.refilter(texts.into_iter());
    }
}

fn select_id(state: &mut AppState, id: &str) {
    if let Some(findings) = state.findings.as_mut()
        && let Some(row) = findings.rows().iter().position(|f| f.id == id)
    {
        findings.view.select_row(row);
    }
}

/// Re-sorts, keeping the selected finding selected.
pub fn sort(state: &mut AppState, sort: FindingSort) -> Vec<Effect> {
    let Some(findings) = state.findings.as_mut() else { return vec![] };
    let selected_id = findings.selected().map(|f| f.id.clone());
    findings.sort = sort;
    findings.resort();
    refilter(state);
    if let Some(id) = selected_id {
        select_id(state, &id);
    }
    vec![]
}

pub fn enter(state: &mut AppState) -> Vec<Effect> {
    if state.findings.as_ref().and_then(|f| f.selected()).is_some() {
        state.nav.push(PaneId::FindingDetail);
    }
    vec![]
}

/// `a`: the accept form for the selected finding.
pub fn accept(state: &mut AppState) -> Vec<Effect> {
    let Some(finding) = state.findings.as_ref().and_then(|f| f.selected()) else { return vec![] };
    state.mode = Mode::Accept(AcceptForm {
        id: finding.id.clone(),
        package: finding.package.as_ref().map(|p| p.name.clone()),
        reason: String::new(),
        expires: String::new(),
        field: AcceptField::Reason,
        error: None,
    });
    vec![]
}

pub fn on_accept_key(state: &mut AppState, mut form: AcceptForm, key: KeyEvent) -> Vec<Effect> {
    if key.code == KeyCode::Tab || key.code == KeyCode::BackTab {
        form.field = match form.field {
            AcceptField::Reason => AcceptField::Expires,
            AcceptField::Expires => AcceptField::Reason,
        };
        state.mode = Mode::Accept(form);
        return vec![];
    }
    let input = match form.field {
        AcceptField::Reason => &mut form.reason,
        AcceptField::Expires => &mut form.expires,
    };
    match edit_line(input, key) {
        LineEdit::Edited | LineEdit::Complete | LineEdit::Ignored => {
            form.error = None;
            state.mode = Mode::Accept(form);
            vec![]
        }
        LineEdit::Cancel => {
            state.mode = Mode::Normal;
            vec![]
        }
        LineEdit::Submit
            if form.field == AcceptField::Reason && form.expires.is_empty() && !form.reason.trim().is_empty() =>
        {
            // Enter on the reason moves on to the expiry, as a form would.
            form.field = AcceptField::Expires;
            state.mode = Mode::Accept(form);
            vec![]
        }
        LineEdit::Submit => submit(state, form),
    }
}

fn submit(state: &mut AppState, mut form: AcceptForm) -> Vec<Effect> {
    if form.reason.trim().is_empty() {
        form.error = Some("say why the finding is accepted".into());
        form.field = AcceptField::Reason;
        state.mode = Mode::Accept(form);
        return vec![];
    }
    let expires = match form.expires.trim() {
        "" => None,
        text => match text.parse::<jiff::civil::Date>() {
            Ok(date) => Some(date),
            Err(_) => {
                form.error = Some(format!("'{text}' is not a date (YYYY-MM-DD)"));
                form.field = AcceptField::Expires;
                state.mode = Mode::Accept(form);
                return vec![];
            }
        },
    };
    state.mode = Mode::Normal;
    vec![Effect::AcceptFinding {
        path: state.ignore_path.clone(),
        id: form.id,
        package: form.package,
        reason: form.reason.trim().to_string(),
        expires,
    }]
}

/// The exception is written: say where, and match again so the finding moves to "accepted".
pub fn accepted(state: &mut AppState, id: String, result: Result<String, String>) -> Vec<Effect> {
    match result {
        Ok(path) => {
            let mut effects = toast(state, format!("{id} accepted in {path}"), false);
            if let Some(findings) = state.findings.as_mut() {
                let request = state.next_id;
                state.next_id += 1;
                findings.request = request;
                effects.push(Effect::LoadFindings {
                    request,
                    key: findings.key.clone(),
                    ignore_path: state.ignore_path.clone(),
                });
            }
            effects
        }
        Err(err) => toast(state, err, true),
    }
}
