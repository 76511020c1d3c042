//! One module per subcommand. Stages exchange files (prompts JSONL, image manifests, weights),
//! never each other's internals.

pub mod demo;
pub mod generate;
pub mod init_tiny;
pub mod prompts;
