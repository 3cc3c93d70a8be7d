//! The `flash` command line: the argument definitions of the tool ([`Cli`]) and terminal QR
//! codes. The API client, the credentials store, the API's types and the cold-storage
//! cosigner are flash-sdk's, re-exported here.
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
mod qr;

pub use cli::*;
pub use flash_sdk::*;
pub use qr::*;
