//! Transitions of the Policies pane: loading where policies are in force, the editor (typing,
//! checks as the text changes, the diff preview, `$EDITOR`), and applying after a question.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::action::Effect;
use crate::app::state::editor::{Buffer, Edit};
use crate::app::state::{AppState, Confirmation, Loadable, Mode, PaneId, PoliciesData, PoliciesState, PolicyEditor};

/// The pane came on screen: load it the first time.
pub fn ensure_loaded(state: &mut AppState) -> Vec<Effect> {
    match state.policies {
        Some(_) => vec![],
        None => load(state),
    }
}

pub fn load(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let policies = state.policies.get_or_insert_with(|| PoliciesState::new(request));
    policies.request = request;
    vec![Effect::LoadPolicies { request, socket: state.agent_socket.clone() }]
}

pub fn loaded(state: &mut AppState, request: u64, result: Result<PoliciesData, String>) {
    let Some(policies) = state.policies.as_mut().filter(|p| p.request == request) else { return };
    policies.data = match result {
        Ok(data) => Loadable::Ready(data),
        Err(err) => Loadable::Failed(err),
    };
    policies.refilter();
}

/// Enter on a target: its policy in the editor (the agent's text in force, else the last
/// version applied there).
pub fn enter(state: &mut AppState) -> Vec<Effect> {
    let Some(row) = state.policies.as_ref().and_then(|p| p.selected()).cloned() else { return vec![] };
    // Edits not applied yet are kept while the editor is away.
    if state.policies.as_ref().and_then(|p| p.editor.as_ref()).is_some_and(|e| e.target == row.target && e.modified()) {
        state.nav.push(PaneId::PolicyEditor);
        return vec![];
    }
    let mut effects = Vec::new();
    let text = match &row.text {
        Ok(text) => text.clone(),
        Err(why) => {
            effects.extend(super::toast(state, format!("{}: {why}", row.target.label()), true));
            String::new()
        }
    };
    let Some(policies) = state.policies.as_mut() else { return effects };
    policies.editor = Some(PolicyEditor {
        target: row.target,
        in_force: text.clone(),
        buffer: Buffer::new(&text),
        inserting: false,
        check_request: 0,
        problems: Vec::new(),
        checked: false,
        diff: Vec::new(),
    });
    state.nav.push(PaneId::PolicyEditor);
    effects.extend(check(state));
    effects
}

fn editor(state: &mut AppState) -> Option<&mut PolicyEditor> {
    state.policies.as_mut().and_then(|p| p.editor.as_mut())
}

/// Checks the editor's text as it is now (older checks' answers are dropped).
fn check(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let Some(editor) = editor(state) else { return vec![] };
    editor.check_request = request;
    editor.checked = false;
    vec![Effect::CheckPolicy { request, text: editor.buffer.text() }]
}

pub fn checked(state: &mut AppState, request: u64, problems: Vec<crate::policy::validate::Problem>) {
    if let Some(editor) = editor(state).filter(|e| e.check_request == request) {
        editor.problems = problems;
        editor.checked = true;
    }
}

/// `i` (or enter) in the editor: typing goes into the text until esc.
pub fn start_typing(state: &mut AppState) -> Vec<Effect> {
    if state.pane() == PaneId::PolicyDiff {
        state.nav.pop();
    }
    if let Some(editor) = editor(state) {
        editor.inserting = true;
        state.mode = Mode::Insert;
    }
    vec![]
}

/// A key while typing into the text.
pub fn on_insert_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    let page = state.page_size;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let edit = match key.code {
        KeyCode::Esc => {
            state.mode = Mode::Normal;
            if let Some(editor) = editor(state) {
                editor.inserting = false;
            }
            return vec![];
        }
        KeyCode::Char('c') if ctrl => {
            state.mode = Mode::Normal;
            return vec![];
        }
        KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => Edit::Insert(c),
        KeyCode::Tab => Edit::Insert(' '),
        KeyCode::Enter => Edit::Newline,
        KeyCode::Backspace => Edit::Backspace,
        KeyCode::Delete => Edit::Delete,
        KeyCode::Left => Edit::Left,
        KeyCode::Right => Edit::Right,
        KeyCode::Up => Edit::Up,
        KeyCode::Down => Edit::Down,
        KeyCode::Home => Edit::Home,
        KeyCode::End => Edit::End,
        KeyCode::PageUp => Edit::PageUp(page),
        KeyCode::PageDown => Edit::PageDown(page),
        _ => return vec![],
    };
    let Some(editor) = editor(state) else {
        state.mode = Mode::Normal;
        return vec![];
    };
    // Tab is two spaces: YAML takes no tabs for indentation.
    let changed = editor.buffer.edit(edit) | (key.code == KeyCode::Tab && editor.buffer.edit(Edit::Insert(' ')));
    editor.buffer.follow(page);
    if changed { check(state) } else { vec![] }
}

/// Moves the editor's cursor (the pane's up/down/page keys).
pub fn move_cursor(state: &mut AppState, delta: isize) {
    let page = state.page_size;
    if let Some(editor) = editor(state) {
        let edit = match delta {
            d if d <= -(isize::MAX / 4) => Edit::PageUp(usize::MAX / 2),
            d if d >= isize::MAX / 4 => Edit::PageDown(usize::MAX / 2),
            -1 => Edit::Up,
            1 => Edit::Down,
            d if d < 0 => Edit::PageUp(d.unsigned_abs()),
            d => Edit::PageDown(d.unsigned_abs()),
        };
        editor.buffer.edit(edit);
        editor.buffer.follow(page);
    }
}

/// `n`: the cursor to the next problem's line.
pub fn next_problem(state: &mut AppState) -> Vec<Effect> {
    let page = state.page_size;
    let Some(editor) = editor(state) else { return vec![] };
    let row = editor.buffer.row + 1;
    let lines: Vec<usize> = editor.problems.iter().map(|p| usize::try_from(p.line).unwrap_or(1)).collect();
    let Some(&line) = lines.iter().find(|&&l| l > row).or(lines.first()) else {
        return super::toast(state, "no problems: the agent would take this policy".into(), false);
    };
    editor.buffer.go_to_line(line);
    editor.buffer.follow(page);
    vec![]
}

/// `d`: what applying would change, as a unified diff against what is in force.
pub fn diff(state: &mut AppState) -> Vec<Effect> {
    let Some(editor) = editor(state) else { return vec![] };
    editor.make_diff();
    if state.pane() != PaneId::PolicyDiff {
        state.nav.push(PaneId::PolicyDiff);
    }
    vec![]
}

/// `a`: asks, with the change and the target, before applying; a text with problems, or
/// unchanged, is not applied.
pub fn apply(state: &mut AppState) -> Vec<Effect> {
    let request = state.take_id();
    let Some(editor) = state.policies.as_ref().and_then(|p| p.editor.as_ref()) else { return vec![] };
    let label = editor.target.label();
    if !editor.checked {
        return super::toast(state, "still checking the policy; try again in a moment".into(), false);
    }
    if let Some(problem) = editor.problems.first() {
        let message = format!(
            "not applied: {} problem(s), first at line {}: {}",
            editor.problems.len(),
            problem.line,
            problem.message
        );
        return super::toast(state, message, true);
    }
    if !editor.modified() {
        return super::toast(state, format!("nothing to apply: this is the policy in force on {label}"), false);
    }
    let (added, removed) = editor.change_count();
    let text = editor.buffer.text();
    state.mode = Mode::Confirm(Confirmation {
        question: format!("Apply the edited policy to {label}?"),
        detail: format!("+{added} -{removed} lines (d shows them); kept in the policy history"),
        effect: Effect::ApplyPolicy { request, target: editor.target.clone(), text },
    });
    vec![]
}

pub fn applied(state: &mut AppState, result: Result<String, String>) -> Vec<Effect> {
    let mut effects = Vec::new();
    if result.is_ok()
        && let Some(editor) = editor(state)
    {
        editor.in_force = editor.buffer.text();
        editor.diff.clear();
    }
    if result.is_ok() && state.pane() == PaneId::PolicyDiff {
        state.nav.pop();
    }
    match result {
        Ok(said) => {
            effects.extend(super::toast(state, said, false));
            effects.extend(load(state));
        }
        Err(why) => effects.extend(super::toast(state, format!("not applied: {why}"), true)),
    }
    effects
}

/// `E`: the text to `$EDITOR`.
pub fn external(state: &mut AppState) -> Vec<Effect> {
    match editor(state) {
        Some(editor) => vec![Effect::EditExternally { text: editor.buffer.text() }],
        None => vec![],
    }
}

pub fn edited_externally(state: &mut AppState, result: Result<String, String>) -> Vec<Effect> {
    let text = match result {
        Ok(text) => text,
        Err(why) => return super::toast(state, why, true),
    };
    let page = state.page_size;
    let Some(editor) = editor(state) else { return vec![] };
    let row = editor.buffer.row;
    editor.buffer = Buffer::new(&text);
    editor.buffer.go_to_line(row + 1);
    editor.buffer.follow(page);
    check(state)
}
