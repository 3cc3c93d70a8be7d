//! Flash client: an async SDK ([`Client`]) for a Flash server's REST auth
//! routes, GraphQL app API and admin API, plus the argument definitions of the
//! `flash` command-line tool ([`Cli`]) and its local credentials store
//! ([`CredentialStore`]).
//!
//! Offline cold-storage cosigning ([`CosignerKey`]: keys, account keys, PSBT signing) is in
//! the same crate and needs no server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flash_cli::ClientError> {
//! let mut client = flash_cli::Client::new("http://127.0.0.1:8080")?;
//! client.login_email_code("a@b.c").await?;
//! client.login_email("a@b.c", "123456").await?;
//! let me = client.me().await?;
//! println!("{}", me.id);
//! # Ok(())
//! # }
//! ```

mod cli;
mod client;
mod cold;
mod credentials;
mod error;
mod graphql;
mod qr;
mod types;

pub use cli::*;
pub use client::*;
pub use cold::*;
pub use credentials::*;
pub use error::*;
pub use graphql::*;
pub use qr::*;
pub use types::*;
