//! The portal's own OpenStack client (Keystone v3, then Nova, Glance and Heat),
//! on `reqwest`: no crate covers Glance data transfer, rebuild and Heat together.
//!
//! - [`cloud`]: which cloud, from `clouds.yaml` or the `OS_*` variables. Pure.
//! - [`catalog`]: a token's service catalog and when to renew it. Pure.
//! - [`session`]: authentication, renewal, and requests to a catalogued service.
//! - [`nova`]: servers by name or id, their state, and actions on them.
//! - [`glance`]: images by name or id, and downloads that stream, verify and resume.
//! - [`heat`]: stacks and their resources.
//! - [`actions`]: the runbooks' OpenStack actions, with their output for the step.

pub mod actions;
pub mod catalog;
pub mod cloud;
pub mod glance;
pub mod heat;
pub mod nova;
pub mod session;
