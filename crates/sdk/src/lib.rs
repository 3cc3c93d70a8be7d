//! flash-sdk: the client side of Flash. It talks to any Flash server over the public APIs and
//! keeps the user's own things on the user's machine: the keystore, and the NOSTR identity
//! and ecash seed it holds. The API client, the local database, NOSTR messaging, ecash and
//! backups move in next (`docs/client.md`).

pub mod identity;
pub mod keystore;

pub use identity::IdentityError;
pub use keystore::{KdfParams, Keystore, KeystoreError, Secrets};
