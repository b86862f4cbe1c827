//! Runbooks: the recovery procedures as data.
//!
//! A runbook is one TOML file (see `runbooks/` and [`load`] for the format). It is
//! parsed once into the types of [`model`], which make invalid runbooks
//! unrepresentable; every error names the file, line and column.
//!
//! - [`model`]: runbooks, parameters, steps and what each kind of step needs.
//! - [`load`]: reading and checking files into the model ([`load::Diagnostic`]s).
//! - [`template`] and [`quote`]: rendering parameters and captured values into
//!   commands, shell-quoted unless a runbook marks an insertion `raw`.
//! - [`condition`]: the `when` of a step.
//! - [`params`]: checking the values an operator enters for parameters.
//! - [`render`]: a step with its values filled in: the exact action, and its
//!   canonical text (what an approval is tied to).
//! - [`hosts`]: the host names of a CPS site that runbooks may name.
//!
//! Nothing here performs I/O except [`load::load_file`] and [`load::load_dir`]
//! reading the files they are given; rendering never executes anything.

pub mod condition;
pub mod hosts;
pub mod load;
pub mod model;
pub mod params;
pub mod quote;
pub mod render;
pub mod template;

pub use load::{load_dir, load_file, load_str, Diagnostic};
pub use model::{Runbook, Step, StepAction};
