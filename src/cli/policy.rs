//! `picket policy crd|validate`: the policy format's CRDs, and checking policy files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the PicketPolicy and PicketClusterPolicy CRDs, or --apply them to the cluster
    /// (--context)
    Crd {
        /// Install them with server-side apply instead of printing
        #[arg(long)]
        apply: bool,
    },
    /// Check policy files (PicketPolicy / PicketClusterPolicy YAML, several documents each):
    /// every mistake with file:line:col; exit 2 when there is one
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: &PolicyCommand, context: Option<&str>) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Crd { apply: true } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let (client, name) = crate::cluster::client_for(context).await?;
                for crd in crate::policy::spec::install_crds(&client, &name).await.map_err(anyhow::Error::msg)? {
                    crate::say!("picket: context {name}: applied CustomResourceDefinition {crd}");
                }
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        PolicyCommand::Crd { apply: false } => {
            let text = crate::policy::spec::crds_yaml().map_err(anyhow::Error::msg)?;
            crate::out!("{}", text.trim_end()).context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Validate { files } => {
            let mut bad = 0;
            for file in files {
                let text = crate::yaml::read_file(file)?;
                let (documents, problems) = crate::policy::validate::validate_text(file, &text);
                for problem in &problems {
                    crate::say!("{problem}");
                }
                bad += problems.len();
                if problems.is_empty() {
                    let names: Vec<String> = documents.iter().map(|d| d.name()).collect();
                    crate::say!("{}: {} valid: {}", file.display(), documents.len(), names.join(", "));
                }
            }
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_ERROR) })
        }
    }
}
