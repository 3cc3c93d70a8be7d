//! The GraphQL schema files the client SDK generates its types from
//! (`crates/sdk/schema/*.graphql`) are the server's: `flashd schema` prints each, and CI fails
//! here when a change to the API was not carried into the committed files.

use std::path::PathBuf;
use std::process::Command;

/// The committed schema file `name` of the SDK.
fn committed(name: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sdk/schema")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

#[test]
fn the_sdk_schema_files_are_the_servers() {
    for (args, name) in [
        (&["schema"][..], "public.graphql"),
        (&["schema", "--admin"][..], "admin.graphql"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_flashd"))
            .args(args)
            .output()
            .expect("run flashd schema");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8(out.stdout).expect("UTF-8 schema");
        assert!(printed.contains("schema {"), "{printed}");
        let (path, text) = committed(name);
        assert!(
            printed == text,
            "{} differs from the server's schema: regenerate it with\n  \
             cargo run -p flashd -- {} > crates/sdk/schema/{name}",
            path.display(),
            args.join(" ")
        );
    }
}
