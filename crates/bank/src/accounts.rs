//! Users, accounts, wallets and contacts.

use flash_core::{AccountId, AccountLevel, AccountStatus, Email, LedgerAccountId, Phone, UserId, Username, WalletId};
use flash_store::{AccountRecord, Audit, ContactRecord, NewUser, UserRecord, UsernameUpdate, WalletRecord};

use crate::{Bank, BankError};

/// Longest comment an operator gives with an account's new status, characters.
const STATUS_COMMENT_MAX_CHARS: usize = 1_000;

/// Who proved what at login. New users are created on first login: phone users at level 1
/// (a verified phone, as in Galoy), email-only and device users at level 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A verified phone number.
    Phone(Phone),
    /// A verified email address.
    Email(Email),
    /// A device account's id.
    Device(String),
}

/// A wallet with its balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletView {
    /// The wallet.
    pub wallet: WalletRecord,
    /// Settled balance, minor units.
    pub balance: i64,
    /// Incoming funds not yet settled: on-chain deposits awaiting their confirmations.
    pub pending_incoming: i64,
}

impl Bank {
    /// Finds the user with this identity, creating user, account and BTC wallet on first
    /// login. Safe under concurrent first logins (the unique constraint decides).
    pub async fn user_for_identity(&self, identity: &Identity) -> Result<(UserRecord, AccountRecord), BankError> {
        if let Some(found) = self.find_identity(identity).await? {
            return Ok(found);
        }
        let new = match identity {
            Identity::Phone(p) => NewUser {
                phone: Some(p.clone()),
                email: None,
                device_id: None,
                level: AccountLevel::One,
            },
            Identity::Email(e) => NewUser {
                phone: None,
                email: Some(e.clone()),
                device_id: None,
                level: AccountLevel::Zero,
            },
            Identity::Device(d) => NewUser {
                phone: None,
                email: None,
                device_id: Some(d.clone()),
                level: AccountLevel::Zero,
            },
        };
        match self.store.create_user(&new).await {
            Ok((user, account, _)) => Ok((user, account)),
            Err(e) if e.is_unique_violation() => self.find_identity(identity).await?.ok_or(BankError::AccountNotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn find_identity(&self, identity: &Identity) -> Result<Option<(UserRecord, AccountRecord)>, BankError> {
        let user = match identity {
            Identity::Phone(p) => self.store.user_by_phone(p).await?,
            Identity::Email(e) => self.store.user_by_email(e).await?,
            Identity::Device(d) => self.store.user_by_device(d).await?,
        };
        let Some(user) = user else { return Ok(None) };
        let account = self
            .store
            .account_of_user(user.id)
            .await?
            .ok_or(BankError::AccountNotFound)?;
        Ok(Some((user, account)))
    }

    /// A user.
    pub async fn user(&self, id: UserId) -> Result<UserRecord, BankError> {
        self.store.user(id).await?.ok_or(BankError::AccountNotFound)
    }

    /// An account.
    pub async fn account(&self, id: AccountId) -> Result<AccountRecord, BankError> {
        self.store.account(id).await?.ok_or(BankError::AccountNotFound)
    }

    /// A user's account.
    pub async fn account_of_user(&self, user: UserId) -> Result<AccountRecord, BankError> {
        self.store
            .account_of_user(user)
            .await?
            .ok_or(BankError::AccountNotFound)
    }

    /// An account's wallets with balances.
    pub async fn wallets(&self, account: AccountId) -> Result<Vec<WalletView>, BankError> {
        let wallets = self.store.wallets_of(account).await?;
        let ids: Vec<LedgerAccountId> = wallets.iter().map(|w| w.id.into()).collect();
        let balances = self.store.balances(&ids).await?;
        let mut views = Vec::with_capacity(wallets.len());
        for (wallet, id) in wallets.into_iter().zip(ids) {
            views.push(WalletView {
                balance: balances.get(&id).copied().unwrap_or(0),
                pending_incoming: self.store.onchain_pending_incoming(wallet.id).await?,
                wallet,
            });
        }
        Ok(views)
    }

    /// A wallet's settled balance, minor units.
    pub async fn wallet_balance(&self, wallet: WalletId) -> Result<i64, BankError> {
        let id = LedgerAccountId::from(wallet);
        let balances = self.store.balances(std::slice::from_ref(&id)).await?;
        Ok(balances.get(&id).copied().unwrap_or(0))
    }

    /// One of `account`'s wallets; another account's wallet is reported as not found.
    pub async fn own_wallet(&self, account: AccountId, wallet: WalletId) -> Result<WalletRecord, BankError> {
        match self.store.wallet(wallet).await? {
            Some(w) if w.account_id == account => Ok(w),
            _ => Err(BankError::WalletNotFound),
        }
    }

    /// Whether a username is free (invalid names are an error, not "unavailable").
    pub async fn username_available(&self, username: &str) -> Result<bool, BankError> {
        let name = Username::parse(username)?;
        Ok(self.store.username_available(&name).await?
            && self.store.merchant_lightning_address(name.as_str()).await?.is_none())
    }

    /// Sets the user's username (once).
    pub async fn set_username(&self, user: UserId, username: &str) -> Result<UserRecord, BankError> {
        let name = Username::parse(username)?;
        // A store's Lightning address holds its name as a user's would.
        if self.store.merchant_lightning_address(name.as_str()).await?.is_some() {
            return Err(BankError::UsernameTaken);
        }
        match self.store.set_username(user, &name).await? {
            UsernameUpdate::Set => self.user(user).await,
            UsernameUpdate::Taken => Err(BankError::UsernameTaken),
            UsernameUpdate::AlreadySet => Err(BankError::UsernameAlreadySet),
        }
    }

    /// Records a verified email for the user.
    pub async fn set_email(&self, user: UserId, email: &Email) -> Result<UserRecord, BankError> {
        if !self.store.set_email(user, email).await? {
            return Err(BankError::EmailTaken);
        }
        self.user(user).await
    }

    /// The default wallet of the account with this username.
    pub async fn default_wallet_of(&self, username: &str) -> Result<WalletRecord, BankError> {
        let account = self
            .store
            .account_by_username(&Username::parse(username)?)
            .await?
            .ok_or(BankError::RecipientNotFound)?;
        self.store
            .wallet(account.default_wallet_id)
            .await?
            .ok_or(BankError::RecipientNotFound)
    }

    /// Makes one of the account's wallets its default.
    pub async fn set_default_wallet(&self, account: AccountId, wallet: WalletId) -> Result<AccountRecord, BankError> {
        if !self.store.set_default_wallet(account, wallet).await? {
            return Err(BankError::WalletNotFound);
        }
        self.account(account).await
    }

    /// The account's contacts (those with a username).
    pub async fn contacts(&self, account: AccountId) -> Result<Vec<ContactRecord>, BankError> {
        let contacts = self.store.contacts(account).await?;
        Ok(contacts.into_iter().filter(|c| c.username.is_some()).collect())
    }

    /// Sets a contact's alias.
    pub async fn set_contact_alias(
        &self,
        account: AccountId,
        username: &str,
        alias: &str,
    ) -> Result<ContactRecord, BankError> {
        let username = Username::parse(username)?;
        let alias = flash_core::Memo::parse(alias)?;
        if !self.store.set_contact_alias(account, &username, alias.as_str()).await? {
            return Err(BankError::RecipientNotFound);
        }
        let contacts = self.store.contacts(account).await?;
        contacts
            .into_iter()
            .find(|c| c.username.as_deref().map(str::to_ascii_lowercase) == Some(username.key()))
            .ok_or(BankError::RecipientNotFound)
    }

    /// Operator: sets an account's level (audited).
    pub async fn set_account_level(
        &self,
        actor: &str,
        account: AccountId,
        level: AccountLevel,
    ) -> Result<AccountRecord, BankError> {
        let audit = Audit {
            actor: actor.to_string(),
            action: "account.level".into(),
            subject: account.to_string(),
            detail: level.number().to_string(),
        };
        if !self.store.set_account_level(account, level, &audit).await? {
            return Err(BankError::AccountNotFound);
        }
        self.account(account).await
    }

    /// Operator: sets an account's status (audited, with an optional comment).
    pub async fn set_account_status(
        &self,
        actor: &str,
        account: AccountId,
        status: AccountStatus,
        comment: Option<&str>,
    ) -> Result<AccountRecord, BankError> {
        let comment = flash_core::text::multiline(comment.unwrap_or_default(), STATUS_COMMENT_MAX_CHARS)
            .map_err(|e| BankError::InvalidInput(format!("the comment {e}")))?;
        let detail = format!("{} {comment}", status.as_str());
        let audit = Audit {
            actor: actor.to_string(),
            action: "account.status".into(),
            subject: account.to_string(),
            detail: detail.trim().to_string(),
        };
        if !self.store.set_account_status(account, status, &audit).await? {
            return Err(BankError::AccountNotFound);
        }
        self.account(account).await
    }
}
