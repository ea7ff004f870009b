//! The balancer's health decisions end to end, against real providers and ZooKeeper: a stall
//! with calls in flight is one ejection of the base length; `UNAVAILABLE` answers eject only in
//! a row, briefly, and name their provider; least-loaded picking gives a paused provider its
//! share back within a second or two, starves no provider at start-up, and honours weights.

#[path = "../common/mod.rs"]
mod common;
mod ejection;
mod least_loaded;
mod traffic;
