//! Raw mode and the alternate screen: entered once, left on exit and on panic, and suspended
//! while a foreground plugin owns the terminal.

use std::io::{self, Stdout, stdout};
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Whether picket holds the terminal now; restoring is a no-op otherwise, so a panic in a CLI
/// command prints no stray escape codes.
static ACTIVE: AtomicBool = AtomicBool::new(false);

pub fn enter() -> io::Result<Term> {
    ACTIVE.store(true, Ordering::SeqCst);
    enable_raw_mode()?;
    execute!(stdout(), EnterAlternateScreen, Hide)?;
    Terminal::new(CrosstermBackend::new(stdout()))
}

/// Leaves raw mode and the alternate screen. Safe to call more than once.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    execute!(stdout(), LeaveAlternateScreen, Show)?;
    disable_raw_mode()
}

/// Hands the terminal back, then takes it again (for foreground plugins).
pub fn suspend() -> io::Result<()> {
    restore()
}

/// Takes the terminal back after a foreground command. A fresh `Terminal` redraws everything;
/// `Terminal::clear` is avoided because it queries the cursor position through stdin, which
/// races the input reader and can time out.
pub fn resume(terminal: &mut Term) -> io::Result<()> {
    ACTIVE.store(true, Ordering::SeqCst);
    enable_raw_mode()?;
    execute!(stdout(), EnterAlternateScreen, Hide, Clear(ClearType::All))?;
    *terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
    Ok(())
}

/// Restores the terminal before the default hook prints the panic, so the message is readable.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = restore();
        previous(info);
    }));
}
