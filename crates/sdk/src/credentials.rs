//! Local storage of session tokens, one per server, in
//! `<config dir>/credentials.json` (mode 0600, directory 0700).
//!
//! The config dir is `$FLASH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/flash`, else
//! `$HOME/.config/flash`. The file holds a JSON array of
//! `{"server": URL, "authToken": TOKEN}` objects; the server logged in to last carries
//! `"default": true` and is the one used when neither `--server` nor `FLASH_SERVER` is given.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// Name of the credentials file inside the config directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// Picks the config directory from environment lookups (injected for tests).
pub fn config_dir_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let non_empty = |key: &str| env(key).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("FLASH_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = non_empty("XDG_CONFIG_HOME").map(PathBuf::from) {
        // The XDG spec says relative values are invalid and must be ignored.
        if xdg.is_absolute() {
            return Some(xdg.join("flash"));
        }
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".config").join("flash"))
}

/// The config directory according to the process environment.
pub fn default_config_dir() -> Result<PathBuf, ClientError> {
    config_dir_from(|k| std::env::var_os(k)).ok_or(ClientError::NoConfigDir)
}

/// Normalises a server URL so that `http://x/` and `http://x` share a token.
pub fn normalize_server(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

/// One stored session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// Normalised server URL.
    pub server: String,
    /// Session token (or API key) for that server.
    pub auth_token: String,
    /// Whether this is the server logged in to last, used when none is named.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("server", &self.server)
            .field("auth_token", &"<redacted>")
            .field("default", &self.default)
            .finish()
    }
}

/// Accepts both the array form and a single object.
#[derive(Deserialize)]
#[serde(untagged)]
enum FileShape {
    Many(Vec<Credential>),
    One(Credential),
}

/// The credentials file: tokens keyed by server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialStore {
    path: PathBuf,
    entries: Vec<Credential>,
}

impl CredentialStore {
    /// Loads `<dir>/credentials.json`; a missing file is an empty store.
    pub fn load(dir: &Path) -> Result<Self, ClientError> {
        let path = dir.join(CREDENTIALS_FILE);
        let entries = match fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Vec::new(),
            Ok(bytes) => match serde_json::from_slice::<FileShape>(&bytes) {
                Ok(FileShape::Many(v)) => v,
                Ok(FileShape::One(c)) => vec![c],
                Err(source) => return Err(ClientError::CredentialsFormat { path, source }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(ClientError::Io { path, source }),
        };
        Ok(CredentialStore { path, entries })
    }

    /// Loads from [`default_config_dir`].
    pub fn load_default() -> Result<Self, ClientError> {
        Self::load(&default_config_dir()?)
    }

    /// Path of the credentials file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The token stored for `server`, if any.
    pub fn token(&self, server: &str) -> Option<&str> {
        let server = normalize_server(server);
        self.entries
            .iter()
            .find(|c| c.server == server)
            .map(|c| c.auth_token.as_str())
    }

    /// Stores (or replaces) the token for `server`, leaving the default server as it is.
    pub fn set_token(&mut self, server: &str, token: &str) {
        let server = normalize_server(server);
        let default = self.entries.iter().any(|c| c.server == server && c.default);
        self.entries.retain(|c| c.server != server);
        self.entries.push(Credential {
            server,
            auth_token: token.to_owned(),
            default,
        });
    }

    /// Stores the token for `server` and makes it the default server (what `flash login` does).
    pub fn log_in(&mut self, server: &str, token: &str) {
        self.set_token(server, token);
        let server = normalize_server(server);
        for c in &mut self.entries {
            c.default = c.server == server;
        }
    }

    /// The server logged in to last, if its token is still stored.
    pub fn default_server(&self) -> Option<&str> {
        self.entries.iter().find(|c| c.default).map(|c| c.server.as_str())
    }

    /// Forgets the token for `server`; returns whether one was stored.
    pub fn remove(&mut self, server: &str) -> bool {
        let server = normalize_server(server);
        let before = self.entries.len();
        self.entries.retain(|c| c.server != server);
        before != self.entries.len()
    }

    /// Writes the file atomically with mode 0600 (directory 0700).
    pub fn save(&self) -> Result<(), ClientError> {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        create_private_dir(&dir)?;
        let json = serde_json::to_vec_pretty(&self.entries)
            .map_err(|e| ClientError::Decode(format!("cannot encode credentials: {e}")))?;
        let tmp = dir.join(format!(".{CREDENTIALS_FILE}.tmp"));
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClientError::Io { path, source }
        };
        // A leftover temp file may have other permissions; start afresh.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ClientError::Io { path: tmp, source }),
        }
        let mut file = private_file_options().open(&tmp).map_err(io_err(&tmp))?;
        file.write_all(&json).map_err(io_err(&tmp))?;
        file.write_all(b"\n").map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        Ok(())
    }
}

/// Options creating a new file readable and writable by the owner only.
fn private_file_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
fn create_private_dir(dir: &Path) -> Result<(), ClientError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| ClientError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, unique directory under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "flash-cli-test-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn config_dir_precedence() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| OsString::from(*v))
            }
        };
        assert_eq!(
            config_dir_from(env(&[
                ("FLASH_CONFIG_DIR", "/a"),
                ("XDG_CONFIG_HOME", "/x"),
                ("HOME", "/h")
            ])),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(
            config_dir_from(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/flash"))
        );
        assert_eq!(
            config_dir_from(env(&[
                ("FLASH_CONFIG_DIR", ""),
                ("XDG_CONFIG_HOME", "rel"),
                ("HOME", "/h")
            ])),
            Some(PathBuf::from("/h/.config/flash"))
        );
        assert_eq!(config_dir_from(env(&[])), None);
    }

    #[test]
    fn round_trip_and_private_mode() -> Result<(), ClientError> {
        let dir = temp_dir("roundtrip").join("nested");
        let mut store = CredentialStore::load(&dir)?;
        assert_eq!(store.token("http://127.0.0.1:8080"), None);

        store.set_token("http://127.0.0.1:8080/", "tok-a");
        store.set_token("https://bank.example", "tok-b");
        store.save()?;
        // Saving twice replaces the file (and the stale temp file logic).
        store.set_token("http://127.0.0.1:8080", "tok-a2");
        store.save()?;

        let loaded = CredentialStore::load(&dir)?;
        assert_eq!(loaded, store);
        assert_eq!(loaded.token("http://127.0.0.1:8080"), Some("tok-a2"));
        assert_eq!(loaded.token("https://bank.example/"), Some("tok-b"));

        let raw = fs::read_to_string(loaded.path()).map_err(|source| ClientError::Io {
            path: loaded.path().to_path_buf(),
            source,
        })?;
        assert!(raw.contains("\"authToken\": \"tok-b\""));
        assert!(raw.contains("\"server\": \"https://bank.example\""));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| {
                fs::metadata(p)
                    .map(|m| m.permissions().mode() & 0o777)
                    .map_err(|source| ClientError::Io {
                        path: p.to_path_buf(),
                        source,
                    })
            };
            assert_eq!(mode(loaded.path())?, 0o600);
            assert_eq!(mode(&dir)?, 0o700);
        }

        let mut store = loaded;
        assert!(store.remove("http://127.0.0.1:8080"));
        assert!(!store.remove("http://127.0.0.1:8080"));
        store.save()?;
        let loaded = CredentialStore::load(&dir)?;
        assert_eq!(loaded.token("http://127.0.0.1:8080"), None);
        assert_eq!(loaded.token("https://bank.example"), Some("tok-b"));

        if let Some(parent) = dir.parent() {
            let _ = fs::remove_dir_all(parent);
        }
        Ok(())
    }

    #[test]
    fn single_object_file_is_accepted_and_garbage_rejected() -> Result<(), ClientError> {
        let dir = temp_dir("shapes");
        create_private_dir(&dir)?;
        let path = dir.join(CREDENTIALS_FILE);
        let write = |text: &str| {
            fs::write(&path, text).map_err(|source| ClientError::Io {
                path: path.clone(),
                source,
            })
        };
        write(r#"{"server": "http://s", "authToken": "t"}"#)?;
        assert_eq!(CredentialStore::load(&dir)?.token("http://s"), Some("t"));
        write("not json")?;
        assert!(matches!(
            CredentialStore::load(&dir),
            Err(ClientError::CredentialsFormat { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = Credential {
            server: "http://s".into(),
            auth_token: "secret-token".into(),
            default: false,
        };
        assert!(!format!("{c:?}").contains("secret-token"));
    }

    #[test]
    fn login_remembers_the_server_until_logout() -> Result<(), ClientError> {
        let dir = temp_dir("default");
        let mut store = CredentialStore::load(&dir)?;
        assert_eq!(store.default_server(), None);
        store.log_in("http://a:1/", "tok-a");
        store.log_in("http://b:2", "tok-b");
        // A token stored without logging in (an older file) does not move the default.
        store.set_token("http://c:3", "tok-c");
        store.save()?;
        let mut loaded = CredentialStore::load(&dir)?;
        assert_eq!(loaded.default_server(), Some("http://b:2"));
        loaded.log_in("http://a:1", "tok-a2");
        assert_eq!(loaded.default_server(), Some("http://a:1"));
        assert!(loaded.remove("http://a:1"));
        assert_eq!(loaded.default_server(), None);
        // A file written before the default existed still loads.
        fs::write(
            dir.join(CREDENTIALS_FILE),
            r#"[{"server": "http://s", "authToken": "t"}]"#,
        )
        .map_err(|source| ClientError::Io {
            path: dir.clone(),
            source,
        })?;
        let old = CredentialStore::load(&dir)?;
        assert_eq!((old.token("http://s"), old.default_server()), (Some("t"), None));
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }
}
