//! One module per subcommand. Stages exchange files (prompts JSONL, image manifests, feedback,
//! embedding caches, weights, scores), never each other's internals.

pub mod compare;
pub mod demo;
pub mod embed;
pub mod eval;
pub mod eval_reward;
pub mod feedback_import;
pub mod finetune;
pub mod generate;
pub mod init_tiny;
pub mod label;
pub mod prompts;
pub mod rejection;
pub mod score;
pub mod train_reward;
