//! The data directory: private to the user running flashd (0700, files 0600), held by one
//! process at a time, and the home of the node's 32-byte keys.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::RngCore;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "flashd.lock";
/// Mode of the data directory: only its owner may list or enter it.
const DIR_MODE: u32 = 0o700;
/// Mode of every file flashd creates there.
const FILE_MODE: u32 = 0o600;

/// The data directory, locked for this process until dropped (or the process ends: the
/// operating system releases the lock of a killed process).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Held open for the lock; never read after start-up.
    _lock: File,
}

impl DataDir {
    /// Creates `path` (0700) if needed, narrows a looser mode to 0700, and takes its exclusive
    /// lock. A second flashd on the same directory gets an error naming the lock and the
    /// process that holds it.
    pub fn lock(path: &Path) -> anyhow::Result<DataDir> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(path)
            .with_context(|| format!("creating data dir {}", path.display()))?;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading data dir {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))
                .with_context(|| format!("making data dir {} private (0700)", path.display()))?;
            tracing::info!(dir = %path.display(), from = format!("{:o}", mode & 0o777), "data dir made private (0700)");
        }
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" by process {pid}"),
                };
                anyhow::bail!(
                    "another flashd is running on data dir {}: its lock {} is held{holder}; \
                     stop it first, or give this one its own --data-dir",
                    path.display(),
                    lock_path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
        lock.set_len(0)?;
        lock.rewind()?;
        writeln!(lock, "{}", std::process::id())?;
        lock.sync_all()?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The 32-byte key in `name` (0600), made on first start: `auth.key` (the login-code HMAC
    /// secret), `master.key` (the key-encryption key of sealed secrets), `node.id`.
    pub fn key(&self, name: &str) -> anyhow::Result<[u8; 32]> {
        key_file(&self.path, name)
    }

    /// This node's name among flashd nodes sharing a database: from `node.id` (random, made on
    /// first start), so that a restarted node is the same node.
    pub fn node_name(&self) -> anyhow::Result<String> {
        let id = self.key("node.id")?;
        Ok(format!(
            "flashd:{}",
            id[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()
        ))
    }
}

/// The 32-byte key in `dir/name`, made (0600) when missing.
pub fn key_file(dir: &Path, name: &str) -> anyhow::Result<[u8; 32]> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} must hold exactly 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&secret)?;
            file.sync_all()?;
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("flashd-datadir-{tag}-{}", std::process::id()))
    }

    #[test]
    fn one_holder_at_a_time() {
        let dir = scratch("lock");
        let first = DataDir::lock(&dir).expect("first lock");
        let second = DataDir::lock(&dir).expect_err("a second holder is refused");
        let text = second.to_string();
        assert!(text.contains(LOCK_FILE), "names the lock: {text}");
        assert!(
            text.contains(&std::process::id().to_string()),
            "names the holder: {text}"
        );
        drop(first);
        let again = DataDir::lock(&dir).expect("free again once released");
        drop(again);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_directory_and_keys_are_private() {
        let dir = scratch("modes");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let data = DataDir::lock(&dir).expect("lock");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "a loose data dir is narrowed");
        let key = data.key("auth.key").expect("key");
        assert_eq!(data.key("auth.key").expect("same key"), key, "made once, then read");
        assert_eq!(mode(&dir.join("auth.key")), 0o600);
        assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
        drop(data);
        let _ = std::fs::remove_dir_all(dir);
    }
}
