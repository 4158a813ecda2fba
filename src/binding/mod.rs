//! The Node-API layer: converts arguments, results and errors, and nothing else. All protocol
//! behaviour lives in `crate::protocol`.

mod bridge;
mod channel;
mod convert;
mod extensions;
mod tools;
