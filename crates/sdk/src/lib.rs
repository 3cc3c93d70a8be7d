//! flash-sdk: the client side of Flash. It talks to any Flash server over the public APIs
//! ([`Client`]: the REST auth routes, the GraphQL app API and the operator API) and keeps the
//! user's own things on the user's machine: the keystore, the NOSTR identity and ecash seed
//! it holds, the tokens of the servers it signed in to ([`CredentialStore`]), and the offline
//! cold-storage cosigner's keys ([`CosignerKey`]: BIP32 keys, PSBT signing, no server).
//! `docs/client.md` says what is stored where.

pub mod backup;
pub mod chat;
mod client;
mod cold;
mod credentials;
pub mod ecash;
mod error;
mod graphql;
pub mod groups;
pub mod identity;
pub mod keystore;
pub mod local;
pub mod ops;
mod types;

pub use backup::{Backup, BackupError};
pub use chat::{latest_payment_request, payment_request_in, ChatError, Messenger, ReadReport};
pub use client::*;
pub use cold::*;
pub use credentials::*;
pub use ecash::{EcashError, EcashWallet, Received};
pub use error::*;
pub use graphql::*;
pub use groups::{GroupError, GroupInvite, GroupRef};
pub use identity::IdentityError;
pub use keystore::{KdfParams, Keystore, KeystoreError, Secrets};
pub use local::{
    LocalContact, LocalError, LocalGroupPost, LocalMessage, LocalStore, LocalTransaction, SyncError, SyncReport,
    TransactionPage,
};
pub use types::*;
