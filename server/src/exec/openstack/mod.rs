//! The portal's own OpenStack client (Keystone v3, then Nova, Glance, Heat and
//! Neutron's networks),
//! on `reqwest`: no crate covers Glance data transfer, rebuild and Heat together.
//!
//! - [`cloud`]: which cloud, from `clouds.yaml` or the `OS_*` variables. Pure.
//! - [`catalog`]: a token's service catalog and when to renew it. Pure.
//! - [`session`]: authentication, renewal, and requests to a catalogued service.
//! - [`nova`]: servers by name or id, their state, actions on them, and new ones.
//! - [`boot`]: a `server.create`'s arguments, checked, as Nova's body. Pure.
//! - [`neutron`]: networks by name.
//! - [`glance`]: images by name or id, and downloads that stream, verify and resume.
//! - [`digest`]: the transfer's MD5, SHA-512 and SHA-256, each on its own thread.
//! - [`heat`]: stacks and their resources.
//! - [`actions`]: the runbooks' OpenStack actions, with their output for the step.

pub mod actions;
pub mod boot;
pub mod catalog;
pub mod cloud;
pub mod digest;
pub mod glance;
pub mod heat;
pub mod neutron;
pub mod nova;
pub mod session;
