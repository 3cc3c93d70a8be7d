//! flashd
fn main() {}
