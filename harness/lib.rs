//! purplecov: replays atomic attack scenarios as sensor telemetry, evaluates Sigma detection rules on
//! it with a native engine, and reports which detections fire and which stay silent.
//!
//! Data flows one way: `telemetry` (events from recorded or synthetic input) -> `sigma` (rules compiled
//! once into an immutable [`sigma::RuleSet`], evaluated per event) -> `cli`, which wires the stages
//! together and alone maps problems to exit codes. See `DESIGN.md` in the shared docs for the contracts.
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
mod cli_scenarios;
pub mod diag;
pub mod expect;
pub mod report;
pub mod scenario;
pub mod sigma;
pub mod telemetry;

pub use diag::{Diagnostic, Location, Severity};
