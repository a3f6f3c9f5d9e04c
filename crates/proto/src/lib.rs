//! The gRPC contracts between csp services, generated from `proto/csp/v1`.
//!
//! Owns: generated message types, clients and servers, and the encoded file
//! descriptor set that every server registers for gRPC reflection, and the
//! one mapping of csp-domain's status vocabularies to their proto values
//! (`convert.rs`: `SessionStatus` ⇄ the proto enum; ended reasons and audit
//! results travel as their `as_str` text). Must never hold logic: other
//! conversions live with the services that own the types.

mod convert;

/// `csp.v1`: the session-pool, policy, plugins and tickets APIs.
#[allow(unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("csp.v1");
}

/// Encoded `FileDescriptorSet` of every csp proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/csp_descriptor.bin"));
