//! The TUI loop: select over terminal events, task results and the refresh tick; apply them with
//! `update`; hand effects to `effects`; draw once per batch.

pub mod action;
pub mod effects;
pub mod state;
pub mod terminal;
pub mod update;

#[cfg(test)]
pub mod fixtures;

use std::sync::Arc;

use anyhow::Context as _;
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::store::Store;
use action::{Action, Effect};
use state::{AppState, StoreInfo};

/// Builds the state the first frame shows, before any background result has arrived.
pub fn initial_state(config: &Config, store: &Store) -> anyhow::Result<AppState> {
    let info = StoreInfo { path: store.path().to_path_buf(), size: None, schema: store.schema_version()? };
    let mut state = AppState::new(info, config.context.clone(), config.keymap.clone(), config.plugins.clone());
    state.engine_sockets_searched = crate::engine::candidate_sockets(&config.engines);
    if let Some(socket) = std::env::var_os("PICKET_AGENT_SOCKET") {
        state.agent_socket = socket.into();
    }
    if let Ok(exe) = std::env::current_exe() {
        state.picket_exe = exe.display().to_string();
    }
    state.is_root = {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user.
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    // Accepted findings go next to the project picket was started in, as `picket scan` reads them.
    if let Ok(dir) = std::env::current_dir() {
        state.ignore_path = dir.join(".picketignore");
    }
    Ok(state)
}

/// Draws a frame from the state: `ui::render`, handed in by the caller so that the loop does not
/// depend on the renderer (the renderer reads `app::state`).
pub type Render = fn(&mut ratatui::Frame, &AppState, &crate::config::Theme);

pub async fn run(config: Config, store: Store, render: Render) -> anyhow::Result<()> {
    let mut state = initial_state(&config, &store)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let store = Arc::new(store);
    // Response rules: a broken file is said at start, and the console runs without responses.
    let (responder, response_problem) = start_responder(&config, &store);
    let effects = effects::Effects::new(
        tx,
        Arc::clone(&store),
        state.engine_sockets_searched.clone(),
        config.scan_limits,
        config.config_dir.join("checks"),
    )
    .with_agent_log(config.data_dir.join("agent.log"))
    .with_registries(config.registries.clone())
    .with_admission_rules(config.config_dir.join("admission"))
    .with_rules_dir(config.rules_dir())
    .with_responder(responder);
    if let Some(problem) = response_problem {
        for effect in update::toast(&mut state, problem, true) {
            effects.run(effect);
        }
    }
    let mut terminal = terminal::enter().context("cannot set up the terminal")?;
    let result = event_loop(&mut terminal, &mut state, &effects, &mut rx, &config, render).await;
    terminal::restore().context("cannot restore the terminal")?;
    result
}

/// The response rules of `response/` in the config directory, their sinks' workers started.
fn start_responder(
    config: &Config,
    store: &Arc<Store>,
) -> (Option<Arc<crate::alert::outbox::Responder>>, Option<String>) {
    let dir = config.config_dir.join("response");
    match crate::alert::respond::ResponseConfig::load(&dir, false) {
        Ok(response) if response.sinks.is_empty() && response.rules.is_empty() => (None, None),
        Ok(response) => match crate::alert::outbox::Responder::start(
            Arc::clone(store),
            response,
            Some(crate::alert::actions::ActionContext::local(
                crate::engine::candidate_sockets(&config.engines),
                config.data_dir.join("captures"),
            )),
        ) {
            Ok(responder) => (Some(Arc::new(responder)), None),
            Err(e) => (None, Some(format!("responses are off: {e}"))),
        },
        Err(e) => (None, Some(format!("responses are off: {e}"))),
    }
}

async fn event_loop(
    terminal: &mut terminal::Term,
    state: &mut AppState,
    effects: &effects::Effects,
    rx: &mut mpsc::UnboundedReceiver<Action>,
    config: &Config,
    render: Render,
) -> anyhow::Result<()> {
    let size = terminal.size()?;
    update::update(state, Action::Resize { width: size.width, height: size.height });
    terminal.draw(|frame| render(frame, state, &config.theme))?;
    for effect in update::startup(state) {
        effects.run(effect);
    }
    let mut events = EventStream::new();
    let mut refresh = config.refresh.map(|every| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });

    loop {
        let first = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => match to_action(event) {
                    Some(action) => action,
                    None => continue,
                },
                Some(Err(err)) => return Err(err).context("cannot read terminal input"),
                None => return Ok(()),
            },
            Some(action) = rx.recv() => action,
            _ = async { match refresh.as_mut() { Some(i) => { i.tick().await; } None => std::future::pending().await } } => Action::RefreshTick,
        };
        // Apply everything that is already waiting, then draw once.
        let mut batch = vec![first];
        while let Ok(action) = rx.try_recv() {
            batch.push(action);
        }
        for action in batch {
            if matches!(action, Action::AgentLines { .. }) {
                effects.agent_lines_taken();
            }
            for effect in update::update(state, action) {
                match effect {
                    Effect::RunPlugin(run) if !run.background => {
                        // The child needs the terminal and stdin: stop reading keys meanwhile.
                        drop(events);
                        terminal::suspend()?;
                        let result = effects::run_foreground(&run).await;
                        terminal::resume(terminal)?;
                        events = EventStream::new();
                        let effects_after = update::update(state, Action::PluginFinished { name: run.name, result });
                        effects_after.into_iter().for_each(|e| effects.run(e));
                    }
                    Effect::EditExternally { text } => {
                        drop(events);
                        terminal::suspend()?;
                        let result = effects::policies::edit_externally(&text).await;
                        terminal::resume(terminal)?;
                        events = EventStream::new();
                        update::update(state, Action::EditedExternally(result))
                            .into_iter()
                            .for_each(|e| effects.run(e));
                    }
                    other => effects.run(other),
                }
            }
        }
        if state.should_quit {
            return Ok(());
        }
        terminal.draw(|frame| render(frame, state, &config.theme))?;
    }
}

fn to_action(event: Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => Some(Action::Key(key)),
        Event::Resize(width, height) => Some(Action::Resize { width, height }),
        _ => None,
    }
}
