//! The Agent Monitor wire contract (`agentmonitor.v1`): generated messages,
//! tonic clients and servers, and the encoded file-descriptor set that the
//! server registers for reflection.

pub mod client;
pub mod codec;

/// Protobuf package `agentmonitor.v1`.
pub mod v1 {
    #![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
    tonic::include_proto!("agentmonitor.v1");
}

/// Encoded `FileDescriptorSet` of every `agentmonitor.v1` file and its
/// imports, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/agentmonitor_descriptor.bin"));

pub use prost_types;
