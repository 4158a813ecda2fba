//! ipckit for Node.js: the ipckit file-channel protocol as a Node-API addon.
//!
//! `protocol` is the protocol core in plain Rust; `binding` is the thin Node-API layer over it.

#![deny(clippy::all)]

mod binding;
pub mod protocol;
