//! Compiles `proto/agora/v1/*.proto` with `protox` (pure Rust), so building
//! needs no system `protoc`. The tonic service stubs are generated only with
//! the `grpc` feature, so that pure crates build without tonic.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/agora/v1/common.proto",
        "proto/agora/v1/scheduler.proto",
        "proto/agora/v1/agent.proto",
        "proto/agora/v1/operator.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(grpc)
        .build_client(grpc)
        .compile_fds(descriptors)?;
    Ok(())
}
