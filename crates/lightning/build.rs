//! Generates gRPC *server* stubs from LND's own protos (vendored in `proto/lnd`, see its README)
//! for the in-process fake LND of `tests/lnd.rs`. The library does not use them: it talks to LND
//! through `fedimint-tonic-lnd`'s client, generated from the same files. A build script cannot
//! run for test builds only, so this runs on every build (a fraction of a second of `protoc`,
//! which `fedimint-tonic-lnd` needs anyway); the generated code is compiled only into the test.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new("proto/lnd");
    let protos = [
        "lightning.proto",
        "routerrpc/router.proto",
        "invoicesrpc/invoices.proto",
    ]
    .map(|p| dir.join(p));
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // Methods the fake does not implement answer `Unimplemented`, as an LND without that
        // sub-server would.
        .generate_default_stubs(true)
        .compile_protos(&protos, &[dir])?;
    Ok(())
}
