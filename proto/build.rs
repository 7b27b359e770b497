//! Compiles `agentmonitor/v1/*.proto` with protox (a pure-Rust protobuf
//! compiler), so building needs no system `protoc`, and keeps the encoded
//! file-descriptor set for gRPC reflection.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from("agentmonitor/v1");
    let mut files: Vec<PathBuf> = fs::read_dir(&proto_dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    println!("cargo:rerun-if-changed=agentmonitor/v1");

    let descriptors = protox::compile(&files, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("agentmonitor_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The transport helper `XClient::connect(url)` would clash with the
        // WorkerService.Connect RPC; clients build a Channel and call `new`.
        .build_transport(false)
        // Undecodable requests are INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::codec::AmonCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
