use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    picket::app::terminal::install_panic_hook();
    let cli = picket::cli::Cli::parse();
    match picket::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            picket::say!("picket: {}", picket::cli::error_message(&err));
            ExitCode::from(picket::cli::EXIT_ERROR)
        }
    }
}
